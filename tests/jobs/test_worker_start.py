"""How local workers start (execution/local.py): a worker of the built-in MLflow scorer is forked from one
warm forkserver that the driver keeps; a worker is spawned from scratch whenever forking could change what
it sees or does: a scoring script (which may rely on a normal exit), a variable that acts at import time
set by the deployment or changed in the driver, an isolated environment, `BATCHCTL_WORKER_START=spawn`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batchctl.execution import local
from batchctl.scoring.base import ScorerRef
from support.scripts import script_text
from support.waiting import wait_for

from .conftest import alive, write_inputs

pytestmark = pytest.mark.timeout(180)


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


def _ref(tmp_path: Path, kind: str = "mlflow", **extra) -> ScorerRef:
    return ScorerRef(
        kind, str(tmp_path), str(tmp_path / "model"), None, None, "append_row", str(tmp_path), "info", **extra
    )


def _method(ref: ScorerRef) -> str:
    return local.worker_context(ref).get_start_method()


def test_mlflow_workers_are_forked_and_the_others_spawned(tmp_path, monkeypatch):
    monkeypatch.delenv("BATCHCTL_WORKER_START", raising=False)
    assert _method(_ref(tmp_path)) == "forkserver"
    assert _method(_ref(tmp_path, environment_variables={"STATE_DIR": "/x", "TOKEN": "t"})) == "forkserver"
    assert _method(_ref(tmp_path, kind="script")) == "spawn"  # a script may rely on a normal exit
    assert _method(_ref(tmp_path, python="/envs/e/bin/python")) == "spawn"  # another interpreter
    for name in ("OMP_NUM_THREADS", "SKLEARN_ASSUME_FINITE", "PYTHONHASHSEED", "LC_ALL", "MKL_NUM_THREADS"):
        assert _method(_ref(tmp_path, environment_variables={name: "1"})) == "spawn", name
    monkeypatch.setenv("BATCHCTL_WORKER_START", "spawn")
    assert _method(_ref(tmp_path)) == "spawn"


def test_an_import_time_variable_changed_in_the_driver_spawns_until_it_is_restored(tmp_path, monkeypatch):
    from multiprocessing import forkserver

    monkeypatch.delenv("BATCHCTL_WORKER_START", raising=False)
    assert _method(_ref(tmp_path)) == "forkserver"
    server = forkserver._forkserver._forkserver_pid
    monkeypatch.setenv("SKLEARN_ASSUME_FINITE", "1")  # read by scikit-learn when it is imported
    assert _method(_ref(tmp_path)) == "spawn"
    monkeypatch.delenv("SKLEARN_ASSUME_FINITE")
    assert _method(_ref(tmp_path)) == "forkserver"
    assert forkserver._forkserver._forkserver_pid == server  # the same forkserver: never restarted


@pytest.mark.mlflow
def test_a_forked_worker_sees_the_drivers_environment_of_now(mlenv, heart_data, tmp_path, monkeypatch):
    """The forkserver started with the first job; a variable set in the driver afterwards must still reach
    the next job's workers. MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false, read by the worker when it loads
    the model, makes mlflow refuse the cloudpickled model: the job fails with mlflow's refusal."""
    monkeypatch.delenv("BATCHCTL_WORKER_START", raising=False)
    mlenv.endpoint()
    mlenv.mlflow()
    data = heart_data(2, rows=3)
    first = mlenv.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o1"), "-o", "json")
    assert first.exit_code == 0, first.stderr
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    second = mlenv.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o2"), "-o", "json")
    assert second.exit_code != 0
    assert "pickle" in second.stderr.lower(), second.stderr
    assert not (tmp_path / "o2" / "predictions.csv").exists()


ORPHAN_DRIVER = """
import multiprocessing, os, sys, time
from batchctl.execution.worker import _die_with_parent, _leave_forkserver

def child():
    _leave_forkserver()
    _die_with_parent(os.getppid())
    time.sleep(120)

if __name__ == "__main__":
    process = multiprocessing.get_context("forkserver").Process(target=child)
    process.start()
    print(process.pid, flush=True)
    time.sleep(120)
"""


def test_a_forked_worker_leaves_with_the_driver(tmp_path):
    """multiprocessing hands each forked child the forkserver's "alive" pipe; a child holding it keeps the
    forkserver, its parent, alive after the driver died, and so itself. A worker lets go of it at once."""
    script = tmp_path / "driver.py"
    script.write_text(ORPHAN_DRIVER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        worker = int(proc.stdout.readline())
        assert alive(worker)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wait_for(lambda: not alive(worker), 15, f"the forked child {worker} to leave with its driver")


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


def test_a_forkserver_that_cannot_start_leaves_the_job_to_spawned_workers(tmp_path, monkeypatch):
    """Its socket lives under multiprocessing's temporary folder (under TMPDIR): a path longer than AF_UNIX
    allows (108 bytes) cannot be bound. That job's workers are spawned; the next job tries again."""
    from multiprocessing import forkserver, process

    monkeypatch.delenv("BATCHCTL_WORKER_START", raising=False)
    if forkserver._forkserver._forkserver_pid is not None:
        forkserver._forkserver._stop()
    local._forkserver_env = None
    deep = tmp_path / ("t" * 60) / ("m" * 60)
    deep.mkdir(parents=True)
    config = process.current_process()._config
    monkeypatch.setitem(config, "tempdir", str(deep))  # where multiprocessing puts its sockets
    assert _method(_ref(tmp_path)) == "spawn"
    assert local._forkserver_env is None  # not started, and not given up on
    monkeypatch.setitem(config, "tempdir", str(tmp_path))
    assert _method(_ref(tmp_path)) == "forkserver"


def test_every_module_the_forkserver_preloads_exists():
    """multiprocessing skips a preload module that fails to import, silently: a misspelt name would only
    make every worker slower."""
    import importlib

    from batchctl.execution.local import FORKSERVER_PRELOAD

    for name in FORKSERVER_PRELOAD:
        importlib.import_module(name)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_script_can_start_its_own_multiprocessing_pool(env, tmp_path, method):
    """As on Azure, run() may start a Pool: a worker is no daemonic process to its own multiprocessing
    (execution/worker._allow_children)."""
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


def test_what_init_loaded_is_frozen_out_of_the_collectors_way(env, tmp_path):
    """A full collection traverses every tracked object: in a worker that holds scikit-learn and a model, 70-130
    ms each time, and in a forked worker it writes to pages shared with the forkserver. The worker freezes what
    it holds once init() has run."""
    env.endpoint()
    env.script(source=script_text("freeze_score"))
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    out = tmp_path / "out"
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out), "-o", "json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert (out / "predictions.csv").read_text().splitlines() == ["a.txt frozen=True"]
