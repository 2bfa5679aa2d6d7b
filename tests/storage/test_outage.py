"""Azurite stopped in the middle of a job: the mini-batch attempts that meet the dead store are retried,
then the job fails with one clear line, and nothing is published."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import deploy_slow_script, wait_for

pytestmark = [pytest.mark.azurite, pytest.mark.slow]


def test_storage_stopped_mid_job_retries_then_fails_and_publishes_nothing(
    bctl: Any, azurite_env: Any, upload: Any, tmp_path: Path
) -> None:
    deploy_slow_script(bctl, tmp_path, sleep=0.5, error_threshold=0, retry_settings={"max_retries": 1, "timeout": 60})
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
        wait_for(one_batch_done, 120, "the first mini-batch")
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
    (line,) = [line for line in err.splitlines() if line.startswith("Error:")]  # one line, then the cause
    assert line.startswith(f"Error: job outage failed: {message}; first error: StorageUnavailableError: "), line
    assert "is unreachable" in line
    assert not output.exists() or list(output.iterdir()) == []  # nothing published
    assert elapsed < 200  # bounded by the retry settings and the storage client's own timeouts
