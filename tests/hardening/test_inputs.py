"""Awkward inputs and their documented outcomes (docs/security.md, "Inputs"): fail before any work, or
one failed item with its reason while the other files score (issue 7, "Bad input")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from testkit import model_requirements

from .hardening_helpers import one_line_error, tree, write_inputs

pytestmark = pytest.mark.slow


def _invoke(bench, *args: str):
    return bench.cli("endpoint", "invoke", "-n", "hard", *args)


def _failed_items(bench, job: str) -> dict[str, str]:
    log = bench.home / "jobs" / job / "failed_items.jsonl"
    if not log.exists():
        return {}
    return {e["file"]: e["reason"] for e in map(json.loads, log.read_text().splitlines())}


# ------------------------------------------------------------------------------------ fail before any work


def test_symlink_pointing_out_of_the_input_folder_fails_before_any_work(bench, tmp_path):
    bench.deploy()
    secret = tmp_path / "secret.txt"
    secret.write_text("marker\n")
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    (data / "b.txt").symlink_to(secret)
    before = tree(bench.home)
    result = _invoke(bench, "--input", str(data), "--job-name", "escape")
    assert result.exit_code == 9
    assert one_line_error(result.stderr) == (
        f"input 'b.txt' is a symbolic link that points outside the input folder ({secret})"
    )
    assert tree(bench.home) == before  # no job was even created
    assert not (bench.state / "ran-b.txt").exists()


@pytest.mark.parametrize("kind", ["missing", "empty-folder", "only-hidden", "dangling-file-link", "fifo"])
def test_missing_or_empty_input_fails_before_any_work(bench, tmp_path, kind):
    bench.deploy()
    target = tmp_path / "input"
    if kind == "empty-folder":
        target.mkdir()
    elif kind == "only-hidden":
        target.mkdir()
        (target / ".hidden.csv").write_text("x\n")
    elif kind == "dangling-file-link":
        target.symlink_to(tmp_path / "gone.csv")
    elif kind == "fifo":
        os.mkfifo(target)
    before = tree(bench.home)
    result = _invoke(bench, "--input", str(target))
    assert result.exit_code == 9
    message = one_line_error(result.stderr)
    expected = {
        "missing": f"input '{target}' does not exist",
        "dangling-file-link": f"input '{target}' is a symbolic link to a path that does not exist",
        "fifo": f"input '{target}' is not a regular file or folder (a FIFO, socket or device)",
    }
    if kind in expected:
        assert message == expected[kind]
    else:
        assert "no files" in message
    assert tree(bench.home) == before


# ------------------------------------------------------------------------------------ one failed item


def test_unreadable_entries_are_failed_items_with_their_reason_and_never_block(bench, tmp_path):
    """Tests run as root, so chmod 000 cannot make a file unreadable; a FIFO (opening it would block for ever)
    and a dangling symbolic link inside the folder are the genuinely unreadable entries."""
    bench.deploy(retry_settings={"max_retries": 1, "timeout": 20}, mini_batch_size=10)
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "c.txt": "ok"})
    os.mkfifo(data / "b-fifo.txt")
    (data / "d-link.txt").symlink_to(data / "removed.txt")
    out = tmp_path / "out"
    result = _invoke(bench, "--input", str(data), "--output-path", str(out), "--job-name", "odd")
    assert result.exit_code == 0, result.stderr
    job = json.loads(result.stdout)
    c = job["counts"]
    assert (c["items_succeeded"], c["items_failed"], c["retries"], c["worker_restarts"]) == (2, 2, 0, 0)
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "c.txt,ok"]
    reasons = _failed_items(bench, "odd")
    assert set(reasons) == {"b-fifo.txt", "d-link.txt"}
    assert "not a regular file" in reasons["b-fifo.txt"]
    assert "No such file or directory" in reasons["d-link.txt"]
    errors = (bench.home / "jobs" / "odd" / "logs" / "user" / "error.txt").read_text()
    assert "b-fifo.txt" in errors and "d-link.txt" in errors


def test_zero_byte_file_reaches_the_scoring_script(bench, tmp_path):
    """A custom script decides what an empty file means: here it scores it (an empty command)."""
    bench.deploy()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    (data / "empty.txt").write_bytes(b"")
    out = tmp_path / "out"
    result = _invoke(bench, "--input", str(data), "--output-path", str(out))
    assert result.exit_code == 0, result.stderr
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt,ok", "empty.txt,"]


# ------------------------------------------------------------------------------------ MLflow models


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLflow model with a signature (age: long, chol: double, thal: string)."""
    import logging

    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    X = pd.DataFrame(
        {
            "age": [40, 50, 60, 70] * 5,
            "chol": [200.0, 250.5, 300.0, 350.5] * 5,
            "thal": ["normal", "fixed", "reversible", "normal"] * 5,
        }
    )
    y = (X["age"] > 55).astype("int64")
    encode = ("c", OneHotEncoder(handle_unknown="ignore"), ["thal"])
    features = ColumnTransformer([encode], remainder="passthrough")
    pipe = Pipeline([("f", features), ("m", LogisticRegression())]).fit(X, y)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    target = tmp_path_factory.mktemp("tiny-model") / "model"
    mlflow.sklearn.save_model(
        pipe,
        str(target),
        signature=infer_signature(X, pipe.predict(X)),
        serialization_format="cloudpickle",
        pip_requirements=model_requirements(),
    )
    return target


@pytest.mark.mlflow
def test_mlflow_zero_byte_and_mismatched_csv_are_failed_items_with_their_reason(bench, tmp_path, tiny_model):
    bench.ok("endpoint", "create", "-n", "hard")
    spec = tmp_path / "dep.yml"
    spec.write_text(json.dumps({
        "name": "ml", "endpoint_name": "hard", "type": "model",
        "model": {"path": str(tiny_model), "type": "mlflow_model", "name": "tiny"},
        "settings": {"mini_batch_size": 10, "max_concurrency_per_instance": 1},
    }))  # fmt: skip
    bench.ok("deployment", "create", "-f", str(spec))
    data = tmp_path / "in"
    data.mkdir()
    (data / "a-good.csv").write_text("age,chol,thal\n45,210.0,normal\n65,330.0,fixed\n")
    (data / "b-empty.csv").write_bytes(b"")
    (data / "c-wrong-columns.csv").write_text("height,weight\n180,75\n")
    (data / "d-wrong-types.csv").write_text("age,chol,thal\nold,high,normal\n")
    out = tmp_path / "out"
    result = _invoke(bench, "--input", str(data), "--output-path", str(out), "--job-name", "ml")
    assert result.exit_code == 0, result.stderr
    c = json.loads(result.stdout)["counts"]
    assert (c["items_succeeded"], c["items_failed"]) == (1, 3)
    rows = (out / "predictions.csv").read_text().splitlines()
    assert [r.rsplit(",", 1)[1] for r in rows] == ["a-good.csv", "a-good.csv"]
    reasons = _failed_items(bench, "ml")
    assert set(reasons) == {"b-empty.csv", "c-wrong-columns.csv", "d-wrong-types.csv"}
    entries = {e["item"]: e for e in map(json.loads, (bench.home / "jobs" / "ml" / "failed_items.jsonl").open())}
    for name, reason in reasons.items():  # `ExceptionType: message`, and each part on its own
        entry = entries[name]
        assert entry["type"] and entry["message"] and reason == f"{entry['type']}: {entry['message']}", entry
    assert entries["b-empty.csv"]["type"] == "EmptyDataError"
    assert "No columns to parse" in reasons["b-empty.csv"]
    assert "age" in reasons["c-wrong-columns.csv"]  # names a column the signature wants
