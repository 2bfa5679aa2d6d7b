"""MLflow no-code deployments: predictions equal the model's own predict, file by file."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from .conftest import heart_frame, ok_json, reference_predictions

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def _by_file(rows: list[list[str]]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for row in rows:
        out.setdefault(row[-1], []).append(row)
    return out


def test_predictions_equal_the_models_own_predict_file_by_file(mlenv, heart_data, reference_model, tmp_path):
    data = heart_data(5, rows=9)
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=2, max_concurrency_per_instance=2)
    out = tmp_path / "out"
    record = ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "j1"))
    assert record["status"] == "Completed"
    assert record["counts"]["files"] == 5
    assert record["counts"]["mini_batches"] == 3
    assert (record["counts"]["items_succeeded"], record["counts"]["items_failed"]) == (5, 0)
    results = out / "predictions.csv"
    text = results.read_text()
    assert not text.startswith("row"), "no header, as Azure writes it"
    rows = _rows(results)
    assert [r[-1] for r in rows] == [f"part-{i:03d}.csv" for i in range(5) for _ in range(9)]
    for name, file_rows in _by_file(rows).items():
        expected = reference_predictions(reference_model, data / name)
        assert [int(r[0]) for r in file_rows] == list(range(9))
        assert [int(r[1]) for r in file_rows] == [int(p) for p in expected]
        assert all(len(r) == 3 for r in file_rows)
    # output is published create-only: no staging leftovers beside it
    assert sorted(os.listdir(out)) == ["predictions.csv"]


def test_signature_types_are_used_to_read_csv(mlenv, reference_model, tmp_path):
    """`cp` holds digits: read untyped it would be int64 and the model's schema check would refuse it."""
    import pandas as pd

    data = tmp_path / "digits"
    data.mkdir()
    frame = heart_frame(6, 7)
    frame.to_csv(data / "only.csv", index=False)
    assert pd.read_csv(data / "only.csv")["cp"].dtype == "int64"
    mlenv.endpoint()
    mlenv.mlflow()
    record = ok_json(mlenv.invoke("heart", "--input", str(data / "only.csv"), "--output-path", str(tmp_path / "o")))
    assert record["inputs"]["input_data"]["type"] == "uri_file"
    assert record["counts"]["items_succeeded"] == 1
    rows = _rows(tmp_path / "o" / "predictions.csv")
    assert [int(r[1]) for r in rows] == [int(p) for p in reference_predictions(reference_model, data / "only.csv")]


def test_unsupported_and_bad_files_fail_as_items(mlenv, heart_data, reference_model, tmp_path):
    data = heart_data(3, rows=4)
    (data / "notes.txt").write_text("not a table\n")
    bad = heart_frame(4, 1)
    bad["age"] = bad["age"].astype(str)
    bad.loc[2, "age"] = "sixty"
    bad.to_csv(data / "part-001b.csv", index=False)
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=10)
    out = tmp_path / "out"
    record = ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "mixed"))
    assert record["status"] == "Completed"
    c = record["counts"]
    assert (c["files"], c["mini_batches"], c["items_succeeded"], c["items_failed"]) == (5, 1, 3, 2)
    assert c["retries"] == 0, "a failed file is a failed item, not a failed mini-batch"
    rows = _rows(out / "predictions.csv")
    assert sorted(_by_file(rows)) == ["part-000.csv", "part-001.csv", "part-002.csv"]
    errors = (mlenv.job_dir("mixed") / "logs" / "user" / "error.txt").read_text()
    assert "File type '.txt' is not supported. Current accepted filetypes are: ['.csv', '.parquet', '.pqt']" in errors
    assert "Error processing input file: 'part-001b.csv'" in errors
    assert "sixty" in errors


def test_parquet_input(mlenv, reference_model, tmp_path):
    data = tmp_path / "pq"
    data.mkdir()
    heart_frame(5, 3).to_parquet(data / "a.parquet")
    heart_frame(3, 4).to_parquet(data / "b.pqt")
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=1)
    out = tmp_path / "out"
    record = ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(out)))
    assert record["counts"]["items_succeeded"] == 2
    rows = _rows(out / "predictions.csv")
    for name, file_rows in _by_file(rows).items():
        expected = reference_predictions(reference_model, data / name)
        assert [int(r[1]) for r in file_rows] == [int(p) for p in expected]
    assert [r[-1] for r in rows] == ["a.parquet"] * 5 + ["b.pqt"] * 3


AZURE_DRIVER = """
import glob
import os

import mlflow
import pandas as pd


def init():
    global model

    # AZUREML_MODEL_DIR is an environment variable created during deployment
    # It is the path to the model folder
    model_path = glob.glob(os.environ["AZUREML_MODEL_DIR"] + "/*/")[0]

    # load the model
    model = mlflow.pyfunc.load_model(model_path)


def run(mini_batch):
    print(f"run method start: {__file__}, run({len(mini_batch)} files)")
    results = []

    for file_path in mini_batch:
        data = pd.read_csv(file_path)
        pred = model.predict(data)

        df = pd.DataFrame(pred, columns=["predictions"])
        df["file"] = os.path.basename(file_path)
        results.append(df[["file", "predictions"]])

    return pd.concat(results)
"""


def test_unmodified_azure_heart_classifier_driver_runs(mlenv, heart_data, reference_model, heart_model, tmp_path):
    """The public heart-classifier batch_driver.py: glob(AZUREML_MODEL_DIR/*/), pyfunc, DataFrame return."""
    import pandas as pd

    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):  # the Azure driver reads untyped: give it data that needs no signature typing
        frame = heart_frame(5, 50 + i)
        frame["cp"] = "c" + frame["cp"]
        frame.to_csv(data / f"heart-{i}.csv", index=False)
    mlenv.endpoint()
    ok_json(mlenv.cli("model", "create", "--name", "heart", "--type", "mlflow_model", "--path", str(heart_model)))
    mlenv.script(
        "azure-driver",
        source=AZURE_DRIVER,
        model="azureml:heart@latest",
        mini_batch_size=2,
        logging_level="info",
    )
    out = tmp_path / "out"
    job = ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "az"))
    assert job["status"] == "Completed"
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (3, 0)
    rows = _rows(out / "predictions.csv")
    assert len(rows) == 15
    for i in range(3):
        name = f"heart-{i}.csv"
        expected = list(reference_model.predict(pd.read_csv(data / name)))
        assert [int(r[1]) for r in rows if r[0] == name] == [int(p) for p in expected]
    stdout = "".join(p.read_text() for p in (mlenv.job_dir("az") / "logs" / "user" / "stdout").iterdir())
    assert "run method start" in stdout


@pytest.fixture(scope="session")
def two_output_model(tmp_path_factory):
    """A pipeline predicting two targets: predict() returns a 2-D array."""
    from sklearn.compose import ColumnTransformer
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    from .conftest import _save

    X = heart_frame(120, 5)
    y = X[["age"]].assign(old=(X["age"] > 55).astype("int64"), fixed=(X["thal"] == "fixed").astype("int64"))
    pipeline = Pipeline(
        [
            ("features", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["cp", "thal"])],
                                           remainder="passthrough")),
            ("clf", MultiOutputClassifier(DecisionTreeClassifier(random_state=0))),
        ]
    )  # fmt: skip
    return _save(pipeline, X, y[["old", "fixed"]], tmp_path_factory.mktemp("two") / "model")


def test_several_outputs_give_one_column_each_before_file_name(mlenv, two_output_model, tmp_path):
    import mlflow.pyfunc
    import pandas as pd

    mlenv.heart_model = two_output_model
    data = tmp_path / "d"
    data.mkdir()
    heart_frame(4, 9).to_csv(data / "x.csv", index=False)
    mlenv.endpoint()
    mlenv.mlflow()
    ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o")))
    rows = _rows(tmp_path / "o" / "predictions.csv")
    frame = pd.read_csv(data / "x.csv", dtype={"cp": "str", "thal": "str"})
    expected = mlflow.pyfunc.load_model(str(two_output_model)).predict(frame)
    assert [[int(r[1]), int(r[2])] for r in rows] == [[int(a), int(b)] for a, b in expected]
    assert [(r[0], r[3]) for r in rows] == [(str(i), "x.csv") for i in range(4)]


def test_tiny_files_scored_together_give_the_bytes_of_one_file_per_mini_batch_and_a_bad_one_fails_alone(
    mlenv, tmp_path
):
    """100 one-row files in one mini-batch are read and predicted in one call each (scoring/mlflow_model.py);
    the same files one per mini-batch never are. Both jobs write the same bytes; the one file whose row
    cannot be predicted (a missing value) is the one failed item of each, with the model's own reason."""
    data = tmp_path / "tiny"
    data.mkdir()
    frame = heart_frame(100, 26)
    for i in range(100):
        frame.iloc[i : i + 1].to_csv(data / f"t{i:03d}.csv", index=False)
    bad = frame.iloc[41:42].copy()
    bad["chol"] = None
    bad.to_csv(data / "t041.csv", index=False)
    mlenv.endpoint()
    mlenv.mlflow(name="together", mini_batch_size=100, error_threshold=-1)
    mlenv.mlflow(name="apart", mini_batch_size=1, error_threshold=-1, max_concurrency_per_instance=2)
    published: dict[str, bytes] = {}
    for deployment in ("together", "apart"):
        out = tmp_path / deployment
        args = ("--input", str(data), "--output-path", str(out), "--job-name", deployment)
        record = ok_json(mlenv.invoke("heart", "--deployment-name", deployment, *args))
        c = record["counts"]
        assert record["status"] == "Completed"
        assert (c["mini_batches"], c["items_succeeded"], c["items_failed"]) == (
            (1, 99, 1) if deployment == "together" else (100, 99, 1)
        )
        failed = [json.loads(line) for line in (mlenv.job_dir(deployment) / "failed_items.jsonl").open()]
        assert [(f["file"], f["type"]) for f in failed] == [("t041.csv", "ValueError")]
        assert failed[0]["message"].startswith("Input X contains NaN"), failed[0]
        published[deployment] = (out / "predictions.csv").read_bytes()
    assert published["together"] == published["apart"]
    rows = published["together"].decode().splitlines()
    assert len(rows) == 99 and "t041.csv" not in {r.rsplit(",", 1)[1] for r in rows}
