"""A Ray cluster that is not there, or goes away mid-job: bounded time, one line, a printed record, and
a job that `job resume` finishes once the cluster is back, on its new address."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import Pair, RayHead, ok_json, wait_for, write_inputs

pytestmark = [
    pytest.mark.ray,
    pytest.mark.filterwarnings("ignore::UserWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:ray.*"),
]


def _closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _batchctl(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _job_record(pair: Pair, job: str) -> dict[str, Any] | None:
    try:
        return json.loads((pair.job_dir(job) / "job.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def _ray_compute(pair: Pair, address: str, timeout: float) -> None:
    ok_json(
        pair.cli(
            "compute", "create", "-n", "my-ray", "--type", "ray", "--address", address,
            "--set", f"connect_timeout={timeout:g}", "-o", "json",
        )
    )  # fmt: skip


def test_an_address_with_nothing_behind_it_fails_within_the_connect_timeout(cli: Any, tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    pair = Pair(cli, tmp_path, address)
    _ray_compute(pair, address, 2)
    pair.script()
    data = write_inputs(tmp_path / "data", {"a.txt": "ok a"})
    started = time.monotonic()
    result = pair.invoke("on-ray", data, tmp_path / "out", "--job-name", "nocluster")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    assert elapsed < 20, elapsed
    lines = result.stderr.splitlines()
    assert [line for line in lines if line.startswith(("Error", "Warning", "Traceback"))] == lines[-2:-1]
    assert lines[-2:] == [
        f"Error: job nocluster failed: cannot reach the Ray cluster at '{address}' within 2 s: Connection refused",
        f"Hint: start it (`ray start --head --port={address.split(':')[1]}` on 127.0.0.1) or point the compute "
        "at the cluster's address (`batchctl compute create -n NAME --type ray --address HOST:PORT`); "
        "`connect_timeout` on the compute sets how long to wait; then `batchctl job resume -n nocluster`",
    ]
    record = json.loads(result.stdout)
    assert record["status"] == "Failed"
    assert not (tmp_path / "out" / "predictions.csv").exists()


def test_sigterm_while_connecting_cancels_the_job(cli: Any, tmp_path: Path) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    pair = Pair(cli, tmp_path, address)
    _ray_compute(pair, address, 120)
    pair.script()
    data = write_inputs(tmp_path / "data", {"a.txt": "ok a"})
    proc = _batchctl(
        "endpoint", "invoke", "-n", "rayep", "-d", "on-ray", "--input", str(data),
        "--output-path", str(tmp_path / "out"), "--job-name", "term", "--no-server", "-o", "json",
    )  # fmt: skip
    try:
        master = pair.job_dir("term") / "logs" / "sys" / "master_role.txt"
        wait_for(lambda: master.is_file() and "connecting to the Ray cluster" in master.read_text(), 60, "connect")
        time.sleep(5.0)  # well inside the connect wait (where Ray's own connect would block in C++)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130, (proc.returncode, err)
    assert json.loads(out)["status"] == "Canceled"
    assert pair.show("term")["status"] == "Canceled"


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_lost_cluster_fails_the_job_and_resume_finishes_it_on_the_new_address(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # drivers connecting by explicit address must send the token
    first = RayHead(tmp_path / "head-a.log")
    second: RayHead | None = None
    try:
        pair = Pair(cli, tmp_path, first.address)
        pair.script(mini_batch_size=1, retry_settings={"max_retries": 5, "timeout": 60})
        data = write_inputs(tmp_path / "data", {f"f{i}.txt": "sleep 2" for i in range(10)})
        proc = _batchctl(
            "endpoint", "invoke", "-n", "rayep", "-d", "on-ray", "--input", str(data),
            "--output-path", str(tmp_path / "out"), "--job-name", "lost", "--no-server", "-o", "json",
        )  # fmt: skip
        try:

            def two_committed() -> bool:
                assert proc.poll() is None, proc.communicate()
                return ((_job_record(pair, "lost") or {}).get("counts") or {}).get("items_succeeded", 0) >= 2

            wait_for(two_committed, 150, "two committed mini-batches")
            first.kill()
            killed = time.monotonic()
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        ended_after = time.monotonic() - killed
        assert proc.returncode == 1, (proc.returncode, err[-3000:])
        assert ended_after < 60, ended_after  # before Ray's driver would end the process itself
        errors = [line for line in err.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, err[-3000:]
        assert errors[0].startswith(f"Error: job lost failed: lost the Ray cluster at '{first.address}': its GCS at ")
        assert err.splitlines()[-1] == (
            "Hint: restart the cluster; if it comes back on another address, point the compute at it "
            "(`batchctl compute create -n NAME --type ray --address HOST:PORT`); then `batchctl job resume -n lost`"
        )
        record = json.loads(out)  # the record is printed as for any failed job
        assert record["status"] == "Failed"
        assert record == pair.show("lost")
        done = record["counts"]["items_succeeded"]
        assert 2 <= done < 10
        master = (pair.job_dir("lost") / "logs" / "sys" / "master_role.txt").read_text()
        assert record["counts"]["retries"] == master.count("; retrying")

        for ran in pair.state.glob("ran-*"):
            ran.unlink()
        second = RayHead(tmp_path / "head-b.log")
        assert second.address != first.address
        _ray_compute(pair, second.address, 30)
        # in a process of its own: Ray reads RAY_AUTH_MODE once, when it is first imported
        resume = _batchctl("job", "resume", "-n", "lost", "-o", "json")
        out, err = resume.communicate(timeout=180)
        assert resume.returncode == 0, err[-3000:]
        resumed = json.loads(out)
        assert resumed["status"] == "Completed"
        assert resumed["counts"]["items_succeeded"] == 10
        assert resumed["history"][-1]["resumed_with"] == (
            f"compute 'my-ray' at its current address '{second.address}' (the job ran at '{first.address}')"
        )
        assert len(pair.ran()) == 10 - done  # the committed mini-batches were kept, not scored again
        rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
        assert [sum(f"f{i}.txt" in row for row in rows) for i in range(10)] == [1] * 10
    finally:
        for head in (first, second):
            if head is not None:
                head.stop()
