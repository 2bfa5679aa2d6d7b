"""Resolved `${env:NAME}` values are masked (***) in everything batchctl writes, as CI systems mask secret
variables: a scoring script that prints the value, logs it and raises an exception quoting it leaves it in
no file of the workspace (job.json, failed_items.jsonl, the logs, the worker's captured stdout and
stderr), nor in `job show`, `job errors` or the job's MLflow run (a real sqlite store and its artifacts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchctl.errors import MASK, masking, redact

from .conftest import ok_json, read_job, wait_for, write_inputs

pytestmark = pytest.mark.slow

SECRET = "s3cr3t-VALUE-9f8e7d"

SCRIPT = """
import logging
import os
import sys


def init():
    print("init sees " + os.environ["SECRET_X"], flush=True)


def run(mini_batch):
    s = os.environ["SECRET_X"]
    print("stdout " + s, flush=True)
    sys.stderr.write("stderr " + s + "\\n")
    sys.stderr.flush()
    sys.stdout.write("split " + s[:5])  # the value reaches the pipe in two writes
    sys.stdout.flush()
    sys.stdout.write(s[5:] + "\\n")
    sys.stdout.flush()
    logging.getLogger("score").warning("logged " + s)
    rows = []
    for path in mini_batch:
        if "bad" in os.path.basename(path):
            raise ValueError(f"cannot score with token {s}")
        rows.append(os.path.basename(path))
    return rows
"""


def _files_holding(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_resolved_secret_is_masked_in_everything_batchctl_writes(env: Any, tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "mlflow"
    store.mkdir()
    monkeypatch.chdir(store)  # the sqlite store keeps its artifacts under ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    monkeypatch.setenv("BATCHCTL_TRACKING_DELAY", "0")
    monkeypatch.setenv("MY_SECRET", SECRET)
    env.endpoint()
    env.script(
        source=SCRIPT,
        env={"SECRET_X": "${env:MY_SECRET}"},
        mini_batch_size=1,
        retry_settings={"max_retries": 0, "timeout": 60},
    )
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "bad.txt": "ok"})
    record = ok_json(env.invoke("heart", "-d", "custom", "--input", str(data), "--job-name", "masked"))
    assert record["status"] == "Completed" and record["counts"]["items_failed"] == 1, record
    wait_for(
        lambda: (read_job(env.home, "masked").get("tracking") or {}).get("state") in ("logged", "failed"),
        180,
        "the tracking agent",
    )
    assert read_job(env.home, "masked")["tracking"]["state"] == "logged"

    assert _files_holding(env.home, SECRET.encode()) == []
    assert _files_holding(store, SECRET.encode()) == []  # the run's params, tags and artifacts
    job = env.job_dir("masked")
    stdout = "".join(p.read_text() for p in (job / "logs" / "user" / "stdout").rglob("*.txt"))
    for line in ("init sees ***", "stdout ***", "stderr ***", "split ***", "logged ***"):
        assert line in stdout, stdout
    failed = [json.loads(line) for line in (job / "failed_items.jsonl").read_text().splitlines()]
    assert failed[0]["message"] == f"cannot score with token {MASK}"
    assert f"cannot score with token {MASK}" in read_job(env.home, "masked")["error"]["message"]
    shown = env.cli("job", "show", "-n", "masked")
    errors = env.cli("job", "errors", "-n", "masked")
    for result in (shown, errors):
        assert result.exit_code == 0 and SECRET not in result.output
    assert MASK in errors.output
    # the predictions are the script's own data, not a message: they are left as they are
    assert (env.home / "datastores").exists()


def test_masking_is_counted_and_skips_short_values() -> None:
    with masking(["long-enough-value", "abc"]):
        assert redact("x long-enough-value abc") == "x *** abc"
        with masking(["long-enough-value"]):
            pass
        assert redact("long-enough-value") == "***"  # still masked: the outer job still runs
    assert redact("long-enough-value") == "long-enough-value"
