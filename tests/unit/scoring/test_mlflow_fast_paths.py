"""The MLflow scorer's fast paths (one read_csv for small files, one predict per mini-batch, direct
CSV formatting) must give exactly the bytes and counts of the plain file-by-file path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from batchctl.scoring.base import ScorerRef
from batchctl.scoring.failures import ErrorInfo, ItemError
from batchctl.scoring.mlflow_model import MlflowScorer, _format_rows, _results_table
from testkit import model_requirements

pytestmark = pytest.mark.mlflow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "age": rng.integers(30, 80, 300).astype("int64"),
            "chol": rng.normal(240, 40, 300),
            "thal": rng.choice(["normal", "fixed", "reversible"], 300),
        }
    )
    y = ((x.age > 55) & (x.thal != "normal")).astype(int)
    pipe = Pipeline(
        [
            (
                "ct",
                ColumnTransformer(
                    [
                        ("oh", OneHotEncoder(handle_unknown="ignore"), ["thal"]),
                        ("sc", StandardScaler(), ["age", "chol"]),
                    ]
                ),
            ),
            ("lr", LogisticRegression()),
        ]
    ).fit(x, y)
    path = tmp_path_factory.mktemp("model") / "heart"
    mlflow.sklearn.save_model(
        pipe,
        str(path),
        signature=infer_signature(x.astype({"age": "float64"}), pipe.predict(x)),
        serialization_format="cloudpickle",
        pip_requirements=model_requirements(),
    )
    return path


def scorer(model_dir: Path, row_wise: bool, **options) -> MlflowScorer:
    ref = ScorerRef(
        "mlflow", str(model_dir.parent), str(model_dir), None, None, "append_row", "/tmp", "info", **options
    )
    s = MlflowScorer(ref)
    s.init()
    assert s.row_wise  # a scikit-learn flavor
    s.row_wise = row_wise
    return s


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_bytes(text.encode())
    return str(path)


CASES = {
    "plain": "age,chol,thal\n50,200.5,fixed\n61,250.0,normal\n",
    "no-final-newline": "age,chol,thal\n70,180.25,reversible",
    "header-only": "age,chol,thal\n",
    "quoted": 'age,chol,thal\n44,199.0,"fixed"\n',
    "blank-line": "age,chol,thal\n52,230.0,normal\n\n66,240.0,fixed\n",
    "crlf": "age,chol,thal\r\n58,210.0,normal\r\n",
    "other-column-order": "chol,age,thal\n215.0,49,fixed\n",
    "bad-value": "age,chol,thal\nabc,1.0,fixed\n",
    "empty-file": "",
    "bom": "\ufeffage,chol,thal\n45,205.0,normal\n",
    "whitespace-line": "age,chol,thal\n52,230.0,normal\n \t\r\n66,240.0,fixed\n",
    "blank-first-line": "age,chol,thal\n\n66,240.0,fixed\n",
    "only-a-newline": "age,chol,thal\n\n",
    "quoted-newline": 'age,chol,thal\n44,199.0,"fi\nxed"\n',
    "quoted-header": '"age",chol,thal\n47,201.0,normal\n',
    "no-newline-at-all": "age,chol,thal",
}


@pytest.mark.parametrize("extra", sorted(CASES))
def test_batched_paths_give_the_bytes_and_counts_of_file_by_file(model_dir: Path, tmp_path: Path, extra: str) -> None:
    files = [write(tmp_path, f"a{i}.csv", CASES["plain"]) for i in range(3)]
    files.insert(1, write(tmp_path, f"x-{extra}.csv", CASES[extra]))
    names = [os.path.basename(f) for f in files]
    fast = scorer(model_dir, row_wise=True).score(files, names)
    slow = scorer(model_dir, row_wise=False).score(files, names)
    assert fast.data == slow.data
    assert (fast.succeeded, fast.failed, fast.rows) == (slow.succeeded, slow.failed, slow.rows)
    assert fast.item_errors == slow.item_errors
    assert fast.succeeded + fast.failed == 4


def test_a_bad_file_among_small_ones_fails_alone(model_dir: Path, tmp_path: Path) -> None:
    files = [write(tmp_path, f"a{i}.csv", CASES["plain"]) for i in range(4)]
    files[2] = write(tmp_path, "bad.csv", CASES["bad-value"])
    outcome = scorer(model_dir, row_wise=True).score(files, [os.path.basename(f) for f in files])
    assert (outcome.succeeded, outcome.failed, outcome.rows) == (3, 1, 6)
    assert outcome.item_errors == [
        ItemError("bad.csv", ErrorInfo("ValueError", "could not convert string to float: 'abc'"))
    ]
    model = scorer(model_dir, row_wise=False).model
    expected = b"".join(
        _results_table(model.predict(pd.read_csv(f, dtype={"age": "float64"})), os.path.basename(f))
        .to_csv(header=False, index=False, lineterminator="\n")
        .encode()
        for f in files
        if not f.endswith("bad.csv")
    )
    assert outcome.data == expected


@pytest.mark.parametrize(
    "predictions",
    [
        np.array([0, 1, 1]),
        np.array([True, False]),
        np.array([0.1, 1e-7, 123456789.123, np.nan, 1.0, 2.5e20]),
        np.array(["a", "b,c"]),
        pd.Series([1.5, 2.0]),
        np.array([[1, 2], [3, 4]]),
        np.array([], dtype=float),
    ],
)
@pytest.mark.parametrize("name", ["f.csv", 'we,ird "x".csv'])
def test_direct_formatting_equals_pandas_to_csv(predictions: object, name: str) -> None:
    fast, rows = _format_rows(predictions, name)
    table = _results_table(predictions, name)
    assert fast == table.to_csv(header=False, index=False, lineterminator="\n")
    assert rows == len(table)


def _one_row_files(folder: Path, count: int, seed: int = 5) -> list[str]:
    rng = np.random.default_rng(seed)
    files = []
    for i in range(count):
        age, chol, thal = int(rng.integers(30, 80)), round(float(rng.normal(240, 40)), 3), ["normal", "fixed"][i % 2]
        files.append(write(folder, f"t{i:03d}.csv", f"age,chol,thal\n{age},{chol},{thal}\n"))
    return files


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("age,chol,thal\nabc,1.0,fixed\n", ("ValueError", "could not convert string to float: 'abc'")),
        # reads fine (a missing value) and fails in predict: the joint call fails, then file by file
        ("age,chol,thal\n50,,fixed\n", ("ValueError", "Input X contains NaN")),
    ],
    ids=["unreadable", "unpredictable"],
)
def test_one_bad_file_among_100_tiny_ones_fails_alone(model_dir: Path, tmp_path: Path, bad: str, reason) -> None:
    """100 one-row files scored in one call give the bytes of 100 separate calls; the bad file is the one
    failed item, with its own reason, and every other file's row is there, numbered 0 in its file."""
    files = _one_row_files(tmp_path, 100)
    files[57] = write(tmp_path, "t057.csv", bad)
    names = [os.path.basename(f) for f in files]
    fast = scorer(model_dir, row_wise=True).score(files, names)
    slow = scorer(model_dir, row_wise=False).score(files, names)
    assert fast.data == slow.data
    assert (fast.succeeded, fast.failed, fast.rows) == (99, 1, 99)
    assert [e.item for e in fast.item_errors] == ["t057.csv"]
    assert fast.item_errors[0].info.type == reason[0]
    assert fast.item_errors[0].info.message.startswith(reason[1])
    assert fast.item_errors == slow.item_errors
    lines = fast.data.decode().splitlines()
    assert len(lines) == 99
    assert [line.split(",")[-1] for line in lines] == [n for n in names if n != "t057.csv"]
    assert all(line.startswith("0,") for line in lines)


def test_100_tiny_files_are_read_and_predicted_in_one_call_each(model_dir: Path, tmp_path: Path) -> None:
    """The point of it: one read_csv and one predict for the mini-batch, with the bytes of file by file."""
    import pandas

    files = _one_row_files(tmp_path, 100)
    names = [os.path.basename(f) for f in files]
    fast = scorer(model_dir, row_wise=True)
    calls = {"read_csv": 0, "predict": 0}
    real_read, real_predict = pandas.read_csv, fast.model.predict

    def counting_read(*args, **kwargs):
        calls["read_csv"] += 1
        return real_read(*args, **kwargs)

    def counting_predict(frame):
        calls["predict"] += 1
        return real_predict(frame)

    fast.model.predict = counting_predict
    try:
        pandas.read_csv = counting_read
        outcome = fast.score(files, names)
    finally:
        pandas.read_csv = real_read
    assert calls == {"read_csv": 1, "predict": 1}
    assert outcome.data == scorer(model_dir, row_wise=False).score(files, names).data
    assert (outcome.succeeded, outcome.failed, outcome.rows) == (100, 0, 100)


@pytest.mark.parametrize(
    "options",
    [
        {"keep_columns": ("thal", "age")},
        {"output_format": "jsonl"},
        {"output_format": "parquet", "keep_columns": ("chol",)},
    ],
    ids=["csv-kept", "jsonl", "parquet-kept"],
)
@pytest.mark.parametrize("bad", [False, True], ids=["all-good", "one-fails-in-predict"])
def test_tiny_files_with_kept_columns_and_other_formats_give_the_bytes_of_file_by_file(
    model_dir: Path, tmp_path: Path, options, bad: bool
) -> None:
    """Each file's rows are cut from the joined read only when a kept column needs them: the same bytes,
    whether the joint predict succeeds or falls back to file by file."""
    files = _one_row_files(tmp_path, 30)
    if bad:
        files[4] = write(tmp_path, "t004.csv", "age,chol,thal\n50,,fixed\n")
    names = [os.path.basename(f) for f in files]
    fast = scorer(model_dir, row_wise=True, **options).score(files, names)
    slow = scorer(model_dir, row_wise=False, **options).score(files, names)
    assert fast.data == slow.data and fast.data
    expected = (29, 1, 29) if bad else (30, 0, 30)
    assert (fast.succeeded, fast.failed, fast.rows) == (slow.succeeded, slow.failed, slow.rows) == expected
    assert fast.item_errors == slow.item_errors
