"""Azurite stopped in the middle of a job: the mini-batch attempts that meet the dead store are retried,
then the job fails with one clear line, and nothing is published."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

SLOW_SCRIPT = """
import os, time

def init():
    pass

def run(mini_batch):
    time.sleep(0.5)
    return [os.path.basename(p) for p in mini_batch]
"""


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_storage_stopped_mid_job_retries_then_fails_and_publishes_nothing(
    bctl: Any, azurite_env: Any, upload: Any, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.txt").write_text("1\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SLOW_SCRIPT)
    bctl.ok("model", "create", "--name", "slow", "--path", str(model))
    bctl.ok("endpoint", "create", "-n", "heart")
    dep = tmp_path / "dep.yml"
    dep.write_text(
        "name: slow\nendpoint_name: heart\ntype: model\nmodel: azureml:slow@latest\n"
        "code_configuration: {code: code, scoring_script: score.py}\n"
        "settings: {mini_batch_size: 1, max_concurrency_per_instance: 1, error_threshold: 0,\n"
        "           retry_settings: {max_retries: 1, timeout: 60}}\n"
    )
    bctl.ok("deployment", "create", "-f", str(dep), "--set-default")
    container = azurite_env.new_container()
    bctl.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    upload(container, {f"f{i:02d}.csv": b"x\n" for i in range(40)}, prefix="in/")
    output = tmp_path / "out"
    proc = bctl.popen("endpoint", "invoke", "-n", "heart", "--input", f"az://{container}/in",
                      "--output-path", str(output), "--job-name", "outage", "-o", "json")  # fmt: skip
    record = bctl.home / "jobs" / "outage" / "job.json"

    def one_batch_done() -> bool:
        try:
            return json.loads(record.read_text())["counts"]["mini_batches_completed"] >= 1
        except (OSError, ValueError, KeyError):
            return False

    try:
        _wait_for(one_batch_done, 120, "the first mini-batch")
        with azurite_env.paused():  # restarted (empty: in-memory) on the same port afterwards
            started = time.monotonic()
            out, err = proc.communicate(timeout=240)
            elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    shown = json.loads(out)
    assert shown["status"] == "Failed"
    assert shown["counts"]["items_succeeded"] >= 1
    assert shown["counts"]["retries"] >= 1  # the attempt that met the dead store was tried again
    message = shown["error"]["message"]
    assert message.startswith("error_threshold exceeded"), message
    master = (bctl.home / "jobs" / "outage" / "logs" / "sys" / "master_role.txt").read_text()
    assert "is unreachable" in master and "retrying" in master
    errors = (bctl.home / "jobs" / "outage" / "logs" / "user" / "error.txt").read_text()
    assert "is unreachable" in errors
    assert azurite_env.account_key not in out + err + master + errors
    assert [line for line in err.splitlines() if line.startswith("Error:")] == [f"Error: job outage failed: {message}"]
    assert not output.exists() or list(output.iterdir()) == []  # nothing published
    assert elapsed < 200  # bounded by the retry settings and the storage client's own timeouts
