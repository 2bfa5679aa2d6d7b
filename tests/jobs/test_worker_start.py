"""How local workers start (execution/local.py): forked from one warm forkserver that the driver keeps,
and spawned from scratch whenever forking could change what the worker sees: a variable that acts at
import time set by the deployment or changed in the driver, or `BATCHCTL_WORKER_START=spawn`.

The jobs run in this process (the CLI in-process), so this process is the driver: a spawned worker's
parent is os.getpid(), a forked one's is the forkserver."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from support.scripts import script_text

from .conftest import write_inputs

pytestmark = pytest.mark.timeout(180)

PROBE = script_text("start_probe_score")


@pytest.fixture(autouse=True)
def usable_forkserver() -> None:
    """Earlier tests in this pytest worker may have left its forkserver unusable for these: started under
    other import-time variables, or unable to start, since multiprocessing keeps the first temporary folder
    it made for its sockets (under a test's long TMPDIR, or removed with that test's tmp_path). No job runs
    between tests: such a forkserver is stopped and forgotten, and the test's first job starts a new one."""
    from multiprocessing import forkserver, process

    from batchctl.execution import local

    config = process.current_process()._config
    folder = config.get("tempdir")
    stale_folder = folder is not None and (not os.path.isdir(folder) or len(folder) > 60)
    if stale_folder:
        config.pop("tempdir")
    if stale_folder or local._forkserver_env not in (None, local._import_time_env()):
        if forkserver._forkserver._forkserver_pid is not None:
            forkserver._forkserver._stop()
        local._forkserver_env = None


def _starts(env: Any) -> list[dict[str, Any]]:
    folder = env.state / "starts"
    records = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []
    for p in folder.glob("*.json") if folder.is_dir() else []:
        p.unlink()
    return records


def _job(env: Any, tmp_path: Path, name: str, files: int = 4) -> list[dict[str, Any]]:
    data = write_inputs(tmp_path / f"in-{name}", {f"f{i}.txt": "ok" for i in range(files)})
    result = env.invoke("heart", "--input", str(data), "--job-name", name, "-o", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["status"] == "Completed"
    records = _starts(env)
    assert records, "no worker ran init()"
    return records


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_workers_of_two_jobs_are_forked_from_one_warm_forkserver_with_numpy_imported(env, tmp_path, monkeypatch):
    monkeypatch.delenv("BATCHCTL_WORKER_START", raising=False)
    env.endpoint()
    env.script(source=PROBE, mini_batch_size=1, max_concurrency_per_instance=2)
    first = _job(env, tmp_path, "first")
    second = _job(env, tmp_path, "second")
    parents = {r["ppid"] for r in first + second}
    assert len(parents) == 1, parents  # one forkserver served both jobs
    (server,) = parents
    assert server != os.getpid()
    assert "multiprocessing.forkserver" in _cmdline(server)
    assert all(r["numpy_before_init"] for r in first + second)
    assert len({r["pid"] for r in first + second}) == len(first + second) >= 2


def test_a_forked_worker_sees_the_drivers_environment_of_now_and_the_deployments(env, tmp_path, monkeypatch):
    env.endpoint()
    env.script(source=PROBE, env={"PROBE_VARS": "PROBE_DRIVER,PROBE_DEPLOYMENT", "PROBE_DEPLOYMENT": "from-yaml"})
    monkeypatch.setenv("PROBE_DRIVER", "before")
    (before,) = _job(env, tmp_path, "before", files=1)
    monkeypatch.setenv("PROBE_DRIVER", "after")  # the forkserver is running: the value must still travel
    (after,) = _job(env, tmp_path, "after", files=1)
    assert before["ppid"] == after["ppid"] != os.getpid()
    assert before["env"] == {"PROBE_DRIVER": "before", "PROBE_DEPLOYMENT": "from-yaml"}
    assert after["env"] == {"PROBE_DRIVER": "after", "PROBE_DEPLOYMENT": "from-yaml"}


def test_a_deployment_that_sets_an_import_time_variable_gets_spawned_workers(env, tmp_path):
    env.endpoint()
    env.script(source=PROBE, env={"PROBE_VARS": "OMP_NUM_THREADS", "OMP_NUM_THREADS": "1"})
    (record,) = _job(env, tmp_path, "omp", files=1)
    assert record["ppid"] == os.getpid()  # spawned by this process, the driver
    assert record["env"] == {"OMP_NUM_THREADS": "1"}
    assert not record["numpy_before_init"]


def test_an_import_time_variable_changed_in_the_driver_gets_spawned_workers(env, tmp_path, monkeypatch):
    env.endpoint()
    env.script(source=PROBE, env={"PROBE_VARS": "SKLEARN_ASSUME_FINITE"})
    (forked,) = _job(env, tmp_path, "warm", files=1)  # starts the forkserver if no test did
    assert forked["ppid"] != os.getpid()
    monkeypatch.setenv("SKLEARN_ASSUME_FINITE", "1")  # read by scikit-learn when it is imported
    (spawned,) = _job(env, tmp_path, "changed", files=1)
    assert spawned["ppid"] == os.getpid()
    assert spawned["env"] == {"SKLEARN_ASSUME_FINITE": "1"}
    monkeypatch.delenv("SKLEARN_ASSUME_FINITE")
    (again,) = _job(env, tmp_path, "restored", files=1)
    assert again["ppid"] == forked["ppid"]  # the same forkserver, never restarted


def test_batchctl_worker_start_spawn_spawns_every_worker(env, tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHCTL_WORKER_START", "spawn")
    env.endpoint()
    env.script(source=PROBE, mini_batch_size=1, max_concurrency_per_instance=2)
    records = _job(env, tmp_path, "spawned")
    assert {r["ppid"] for r in records} == {os.getpid()}


@pytest.mark.mlflow
def test_forked_and_spawned_workers_publish_the_same_bytes(mlenv, heart_data, tmp_path, monkeypatch):
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=2, max_concurrency_per_instance=2)
    data = heart_data(5, rows=9)
    outputs = {}
    for mode in ("fork", "spawn"):
        monkeypatch.setenv("BATCHCTL_WORKER_START", mode)
        out = tmp_path / f"out-{mode}"
        result = mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "-o", "json")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        outputs[mode] = (out / "predictions.csv").read_bytes()
    assert outputs["fork"] == outputs["spawn"]
    assert outputs["fork"].count(b"\n") == 45


def test_a_forkserver_that_cannot_start_leaves_the_job_to_spawned_workers(env, tmp_path):
    """Its socket lives under TMPDIR: a path longer than AF_UNIX allows (108 bytes) cannot be bound."""
    import subprocess
    import sys

    env.endpoint()
    env.script(source=PROBE)
    deep = tmp_path / ("t" * 60) / ("m" * 60)
    deep.mkdir(parents=True)
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", "endpoint", "invoke", "-n", "heart", "--input", str(data),
         "--job-name", "deep", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(deep), "BATCHCTL_WORKER_START": ""},
    )  # fmt: skip
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["status"] == "Completed"
    (record,) = _starts(env)
    assert record["ppid"] == proc.pid  # spawned by the driver


def test_every_module_the_forkserver_preloads_exists():
    """multiprocessing skips a preload module that fails to import, silently: a misspelt name would only
    make every worker slower."""
    import importlib

    from batchctl.execution.local import FORKSERVER_PRELOAD

    for name in FORKSERVER_PRELOAD:
        importlib.import_module(name)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_script_can_start_its_own_multiprocessing_pool(env, tmp_path, monkeypatch, start, method):
    """As on Azure, run() may start a Pool: a worker is no daemonic process to its own multiprocessing
    (execution/worker._allow_children), and a forked one has let go of batchctl's forkserver
    (_leave_forkserver), so a script's forkserver pool starts its own."""
    monkeypatch.setenv("BATCHCTL_WORKER_START", start)
    env.endpoint()
    env.script(source=script_text("pool_score"), env={"POOL_METHOD": method})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok"})
    out = tmp_path / "out"
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out), "-o", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["status"] == "Completed"
    assert sorted((out / "predictions.csv").read_text().splitlines()) == [
        f"a.txt {method} 14",
        f"b.txt {method} 14",
    ]
