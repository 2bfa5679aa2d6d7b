"""The ray executor against a real local Ray instance (2 CPUs, one per session): same bytes as the local
pool, retries after an actor dies, timeouts, cancel, shipping the model and code, the missing extra."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ray_helpers import Pair, heart_frame, ok_json, wait_for, write_inputs

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    # Ray's own modules warn about their internals (pydantic v1 shims, pkg_resources, subprocess reaping)
    pytest.mark.filterwarnings("ignore::UserWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:ray.*"),
]


@pytest.fixture
def pair(cli, tmp_path: Path, ray_address: str) -> Pair:
    return Pair(cli, tmp_path, ray_address)


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def _heart_inputs(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        heart_frame(9 + i, 100 + i).to_csv(folder / f"part-{i:03d}.csv", index=False)
    return folder


def test_mlflow_model_gives_the_same_bytes_on_local_and_ray(pair: Pair, tmp_path: Path, ray_heart_model: Path) -> None:
    pair.mlflow(ray_heart_model, mini_batch_size=3)
    data = _heart_inputs(tmp_path / "data", 11)
    local = ok_json(pair.invoke("on-local", data, tmp_path / "out-local"))
    ray = ok_json(pair.invoke("on-ray", data, tmp_path / "out-ray"))
    assert (local["status"], ray["status"]) == ("Completed", "Completed")
    assert ray["compute"] == "my-ray"
    assert ray["counts"]["items_succeeded"] == 11 and ray["counts"]["mini_batches_completed"] == 4
    expected = (tmp_path / "out-local" / "predictions.csv").read_bytes()
    assert len(expected.splitlines()) == sum(9 + i for i in range(11))
    assert (tmp_path / "out-ray" / "predictions.csv").read_bytes() == expected
    master = (pair.job_dir(ray["name"]) / "logs" / "sys" / "master_role.txt").read_text()
    assert "on my-ray" in master and "ready (pid" in master


def test_custom_script_gives_the_same_bytes_and_logs_stdout(pair: Pair, tmp_path: Path):
    pair.script(mini_batch_size=2)
    data = write_inputs(tmp_path / "data", {f"f{i:02d}.txt": f"ok {'x' * i}, {i}" for i in range(9)})
    local = ok_json(pair.invoke("on-local", data, tmp_path / "out-local"))
    ray = ok_json(pair.invoke("on-ray", data, tmp_path / "out-ray"))
    assert (local["status"], ray["status"]) == ("Completed", "Completed")
    expected = (tmp_path / "out-local" / "predictions.csv").read_bytes()
    assert b'"says ""xx, 2"", ok"' in expected  # quoted as CSV needs
    assert (tmp_path / "out-ray" / "predictions.csv").read_bytes() == expected
    stdout = pair.job_dir(ray["name"]) / "logs" / "user" / "stdout"
    text = "".join(p.read_text() for p in stdout.glob("worker-*.txt"))
    assert "init weight=2.5" in text and "scored 2 files" in text


def test_a_mini_batch_is_retried_after_its_actor_dies(pair: Pair, tmp_path: Path):
    pair.script(mini_batch_size=1, retry_settings={"max_retries": 2, "timeout": 60})
    commands = {f"f{i}.txt": "ok" for i in range(4)}
    commands["f2.txt"] = "exitonce"
    data = write_inputs(tmp_path / "data", commands)
    job = ok_json(pair.invoke("on-ray", data, tmp_path / "out"))
    assert job["status"] == "Completed", job
    assert job["counts"]["items_succeeded"] == 4 and job["counts"]["items_failed"] == 0
    assert job["counts"]["retries"] >= 1 and job["counts"]["worker_restarts"] >= 1
    assert [r[0] for r in _rows(tmp_path / "out" / "predictions.csv")] == sorted(commands)
    master = (pair.job_dir(job["name"]) / "logs" / "sys" / "master_role.txt").read_text()
    assert "Ray actor (pid" in master and "died" in master


def test_an_attempt_past_timeout_kills_and_replaces_the_actor(pair: Pair, tmp_path: Path):
    pair.script(mini_batch_size=1, retry_settings={"max_retries": 2, "timeout": 6})
    commands = {"a.txt": "ok", "b.txt": "hangonce", "c.txt": "ok"}
    data = write_inputs(tmp_path / "data", commands)
    started = time.monotonic()
    job = ok_json(pair.invoke("on-ray", data, tmp_path / "out"))
    assert job["status"] == "Completed", job
    assert time.monotonic() - started < 200  # the 300 s sleep was cut short by the kill
    assert job["counts"]["retries"] == 1 and job["counts"]["worker_restarts"] >= 1
    assert [r[0] for r in _rows(tmp_path / "out" / "predictions.csv")] == ["a.txt", "b.txt", "c.txt"]
    logs = pair.job_dir(job["name"]) / "logs"
    assert "timed out; worker" in (logs / "sys" / "master_role.txt").read_text()
    assert "No progress update in 6 seconds" in (logs / "user" / "error.txt").read_text()


def test_cancel_a_no_wait_job_stops_the_actors_and_publishes_nothing(pair: Pair, tmp_path: Path):
    import psutil

    pair.script(mini_batch_size=1)
    data = write_inputs(tmp_path / "data", {f"f{i:02d}.txt": "sleep 1.5" for i in range(24)})
    job = ok_json(pair.invoke("on-ray", data, tmp_path / "out", "--no-wait"))
    name = job["name"]
    wait_for(lambda: pair.show(name)["counts"]["mini_batches_completed"] >= 1, 120, "a first mini-batch")
    ok_json(pair.cli("job", "cancel", "-n", name, "-o", "json"))

    def stopped() -> dict | None:
        record = pair.show(name)
        return record if record["status"] in ("Canceled", "Failed", "Completed") else None

    final = wait_for(stopped, 90, "the job to stop")
    assert final["status"] == "Canceled", final
    assert final["counts"]["mini_batches_completed"] < 24
    assert not (tmp_path / "out" / "predictions.csv").exists()
    pids = pair.pids()
    assert pids

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def gone() -> bool:
        return not any(alive(p) for p in pids)

    wait_for(gone, 60, "the actors to exit")


def test_actors_on_another_machine_get_the_model_and_code_and_refuse_local_inputs(
    pair: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """BATCHCTL_RAY_FORCE_REMOTE makes the driver treat every actor as remote: the model and code are
    shipped through the object store (init() reads the model there), and a local input is refused."""
    monkeypatch.setenv("BATCHCTL_RAY_FORCE_REMOTE", "1")
    pair.script(mini_batch_size=2)
    data = write_inputs(tmp_path / "data", {"a.txt": "ok", "b.txt": "ok"})
    result = pair.invoke("on-ray", data, tmp_path / "out")
    assert result.exit_code != 0
    name = ok_json(pair.cli("job", "list", "-o", "json"))[0]["name"]
    record = pair.show(name)
    assert record["status"] == "Failed"
    message = record["error"]["message"]
    assert f"input {data} is a path on this machine" in message and "runs on another machine" in message
    assert not (tmp_path / "out" / "predictions.csv").exists()
    stdout = pair.job_dir(name) / "logs" / "user" / "stdout"
    text = "".join(p.read_text() for p in stdout.glob("worker-*.txt"))
    assert "init weight=2.5" in text and "batchctl-ray" in text  # AZUREML_MODEL_DIR is the unpacked copy
    assert str(pair.home) not in text


def test_without_the_ray_extra_a_ray_job_fails_with_one_line(pair: Pair, tmp_path: Path):
    pair.script(mini_batch_size=2)
    data = write_inputs(tmp_path / "data", {"a.txt": "ok"})
    program = textwrap.dedent(
        """
        import sys
        sys.modules["ray"] = None  # `import ray` raises ImportError, as when the extra is not installed
        from batchctl.cli import main
        sys.argv = ["batchctl", *sys.argv[1:]]
        main()
        """
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            program,
            "endpoint",
            "invoke",
            "-n",
            "rayep",
            "-d",
            "on-ray",
            "--input",
            str(data),
            "--output-path",
            str(tmp_path / "out"),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert proc.returncode != 0
    assert "Ray is not installed: pip install 'batchctl[ray]'" in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, proc.stderr
    name = ok_json(pair.cli("job", "list", "-o", "json"))[0]["name"]
    assert pair.show(name)["error"]["message"] == "Ray is not installed: pip install 'batchctl[ray]'"
