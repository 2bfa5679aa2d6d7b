"""The default executor: a supervised pool of worker processes, never forked from the driver.

A worker of the built-in MLflow scorer, in this interpreter, is forked from a warm process
(multiprocessing's forkserver). That process was spawned once, is single-threaded in Python, and has
imported numpy, pandas, scikit-learn's common modules and nothing of the driver's, so a worker skips those
imports (about a second of CPU each). It lives as long as the driver: a server's jobs, or a test
session's, pay them once.

A worker is spawned from scratch as before:
* for a scoring script: a forkserver's child leaves through os._exit, and a script may rely on a normal
  exit (atexit handlers, buffered files it keeps open); the built-in scorer's workers leave through
  os._exit anyway;
* when a variable that acts at import time (OMP_NUM_THREADS, SKLEARN_*, PYTHON*, LC_*...; see
  IMPORT_TIME_ENV) is set by the deployment, or has changed in the driver since the forkserver started;
* for an isolated environment (another interpreter);
* for every job while `BATCHCTL_WORKER_START=spawn` is set."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import types
from collections.abc import Iterator
from multiprocessing import popen_spawn_posix
from multiprocessing.connection import wait as mp_wait
from typing import Any

from batchctl.errors import BatchctlError
from batchctl.execution.events import BatchTask, InitFailed, WorkerDied, WorkerMessage, WorkerReady, WorkerResult
from batchctl.scoring.base import ScorerRef

# the server starts jobs from several threads: swapping __main__ must not interleave
_MAIN_LOCK = threading.Lock()

# What the forkserver imports once, before it forks any worker: the worker's own modules and the
# libraries every worker of the built-in MLflow scorer imports, with the scikit-learn modules of the
# common models (about 0.25 s more than sklearn.base alone, which imports most of scikit-learn
# and scipy; each worker that unpickles such a model saves them). A module missing here is skipped
# (multiprocessing ignores an ImportError in the preload).
FORKSERVER_PRELOAD = (
    *("batchctl.execution.worker", "batchctl.scoring.mlflow_model", "batchctl.scoring.sklearn_direct"),
    *("batchctl.storage.inputs", "yaml", "numpy", "pandas", "sklearn.base"),
    *("sklearn.linear_model", "sklearn.ensemble", "sklearn.pipeline", "sklearn.compose", "sklearn.preprocessing"),
    "batchctl.scoring.warm",  # a first read_csv and predict: what they import lazily, imported once here
)
# Variables (by prefix) that the interpreter or those libraries read when they start: thread pools, the
# hash seed, paths, locale, scikit-learn's config. A worker is forked only while the forkserver started
# with the values the worker would see, else it is spawned. Other variables (a deployment's STATE_DIR,
# credentials...) are set in the forked worker before init(), as in a spawned one.
IMPORT_TIME_ENV = (
    *("OMP_", "OPENBLAS_", "MKL_", "BLIS_", "GOTO_", "KMP_", "VECLIB_", "NUMEXPR_", "NUMBA_", "TBB_"),
    *("NPY_", "NUMPY_", "PANDAS_", "SKLEARN_", "SCIPY_", "JOBLIB_", "ARROW_", "PYARROW_"),
    *("PYTHON", "LD_", "MALLOC_", "LC_", "LANG", "TZ"),
)
WORKER_START_ENV = "BATCHCTL_WORKER_START"  # "spawn": every worker from scratch


def _import_time_env() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(IMPORT_TIME_ENV)))


_forkserver_env: tuple[tuple[str, str], ...] | None = None  # _import_time_env() when it started


def _model_preload(ref: ScorerRef) -> tuple[str, ...]:
    """What the workers of the job that starts the forkserver will import to load its model, beyond
    FORKSERVER_PRELOAD: `skops.io` for a model saved with skops (mlflow 3's default), which takes seconds
    to import (it lists every scikit-learn estimator). The forkserver starts once per driver, so for the
    CLI, one job per process, this is that job's model; a server's later jobs import what they need."""
    if ref.kind != "mlflow":
        return ()
    from batchctl.scoring.sklearn_direct import serialization_format

    fmt = serialization_format(ref.model_path)
    return {"skops": ("skops.io",), "cloudpickle": ("cloudpickle",)}.get(fmt or "", ())


def worker_context(ref: ScorerRef) -> Any:
    """The forkserver context when this job's workers can be forked from the warm process; else spawn's.
    The first call starts the forkserver, so that its imports overlap the driver's planning."""
    global _forkserver_env
    spawn_ctx = multiprocessing.get_context("spawn")
    if ref.kind != "mlflow" or ref.python or os.environ.get(WORKER_START_ENV, "").lower() == "spawn":
        return spawn_ctx
    if any(name.startswith(IMPORT_TIME_ENV) for name in ref.environment_variables):
        return spawn_ctx
    env = _import_time_env()
    with _MAIN_LOCK:
        if _forkserver_env is None:
            from multiprocessing import forkserver

            preload = [*FORKSERVER_PRELOAD, *_model_preload(ref)]
            multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
            try:
                forkserver.ensure_running()
            except Exception:  # this job's workers are spawned, as before the forkserver; the next job tries again
                return spawn_ctx
            _forkserver_env = env
        elif env != _forkserver_env:  # never restarted: its live workers would die with it
            return spawn_ctx
    return multiprocessing.get_context("forkserver")


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Spawned children re-import the parent's __main__ (the CLI script: typer, rich...) before running
    their target. The worker needs none of it, so hide __main__ while starting the child."""
    with _MAIN_LOCK:
        saved = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if saved is not None:
                sys.modules["__main__"] = saved


def _close_fds(*fds: int) -> None:  # multiprocessing.util.close_fds, which typeshed does not declare
    for fd in fds:
        os.close(fd)


class _EnvPopen(popen_spawn_posix.Popen):
    """multiprocessing's spawn, with another interpreter (an isolated environment's) and that interpreter's
    own sys.path instead of the parent's: the child starts with `-I` (no PYTHONPATH, no user site) and
    `prepare()` then sets sys.path to the environment's paths plus batchctl's package alone."""

    _fds: list[int]  # set by multiprocessing's Popen.__init__ (typeshed does not declare it)

    def _launch(self, process_obj: Any) -> None:
        from multiprocessing import reduction, resource_tracker, spawn, util
        from multiprocessing.context import set_spawning_popen

        tracker_fd = resource_tracker.getfd()  # getfd() starts the tracker first: never None here
        assert tracker_fd is not None
        self._fds.append(tracker_fd)
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data["sys_path"] = list(process_obj.env_sys_path)
        fp = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, fp)
            reduction.dump(process_obj, fp)
        finally:
            set_spawning_popen(None)
        parent_r = child_w = child_r = parent_w = None
        try:
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            prog = (
                "from multiprocessing.spawn import spawn_main; "
                f"spawn_main(tracker_fd={tracker_fd}, pipe_handle={child_r})"
            )
            cmd = [process_obj.env_python, "-I", "-c", prog, "--multiprocessing-fork"]
            self._fds.extend([child_r, child_w])
            self.pid = util.spawnv_passfds(os.fsencode(process_obj.env_python), cmd, self._fds)
            self.sentinel = parent_r
            with open(parent_w, "wb", closefd=False) as f:
                f.write(fp.getbuffer())
        finally:
            self.finalizer = util.Finalize(self, _close_fds, [fd for fd in (parent_r, parent_w) if fd is not None])
            for fd in (child_r, child_w):
                if fd is not None:
                    os.close(fd)


# the spawn context's Process class is chosen at run time, so mypy cannot check it as a base class
class EnvProcess(multiprocessing.get_context("spawn").Process):  # type: ignore[misc]
    """A spawned worker that runs in an isolated environment's interpreter."""

    env_python: str = ""
    env_sys_path: tuple[str, ...] = ()

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
        return _EnvPopen(process_obj)


class LocalHandle:
    def __init__(self, slot: int, process: Any, conn: Any, backend: LocalBackend | None = None) -> None:
        self.slot = slot
        self.process = process
        self.conn = conn
        self.dead = False
        self.backend = backend  # the job this worker serves now (a warm worker changes jobs)
        self.ready = False  # init() done ("ready" seen)
        self.busy = False  # a task was sent and its result not yet received

    def submit(self, task: BatchTask) -> None:
        if self.backend is not None:
            task = self.backend.for_job(task, self.slot)
        self.busy = True
        try:
            self.conn.send(("task", task))
        except (BrokenPipeError, OSError):
            pass  # the sentinel reports the death

    def kill(self) -> None:
        self.dead = True
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


def describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


class LocalBackend:
    name = "local"

    def __init__(self, ref: ScorerRef, logs_dir: str, parts_dir: str) -> None:
        try:
            pickle.dumps(ref)
        except Exception as exc:  # kedro's check: fail before spawning anything
            raise BatchctlError(f"the scorer settings cannot be sent to worker processes: {exc}") from exc
        self.ref = ref
        self.logs_dir = logs_dir
        self.parts_dir = parts_dir
        self.ctx = worker_context(ref)
        self.handles: list[LocalHandle] = []

    def stdout_path(self, slot: int) -> str:
        return os.path.join(self.logs_dir, "user", "stdout", f"worker-{slot}.txt")

    def for_job(self, task: BatchTask, slot: int) -> BatchTask:
        """The task with this job's folders: where the rows, the script's files and its prints go."""
        return dataclasses.replace(
            task, parts_dir=self.parts_dir, output_dir=self.ref.output_dir, stdout_path=self.stdout_path(slot)
        )

    def spawn(self, slot: int, ref: ScorerRef | None = None) -> LocalHandle:
        from batchctl.execution.worker import local_worker_main

        ref = ref or self.ref
        ctx = self.ctx if ref is self.ref else worker_context(ref)
        parent, child = ctx.Pipe(duplex=True)
        # a forked worker takes the driver's environment of now, not the one the forkserver started with
        environ = dict(os.environ) if ctx.get_start_method() == "forkserver" else None
        args = (child, ref, slot, self.stdout_path(slot), self.parts_dir, os.getpid(), environ)
        process: Any
        if ref.python:  # an isolated environment (batchctl.envs): its interpreter, its packages
            process = EnvProcess(target=local_worker_main, args=args, name=f"batchctl-worker-{slot}", daemon=True)
            process.env_python = ref.python
            process.env_sys_path = ref.python_path
        else:
            process = ctx.Process(target=local_worker_main, args=args, name=f"batchctl-worker-{slot}", daemon=True)
        with _without_main_module():
            process.start()
        child.close()
        handle = LocalHandle(slot, process, parent, self)
        self.handles.append(handle)
        return handle

    def wait(self, handles: list[LocalHandle], timeout: float) -> list[tuple[LocalHandle, WorkerMessage]]:
        live = [h for h in handles if not h.dead]
        if not live:
            return []
        waitables: dict[Any, LocalHandle] = {}
        for h in live:
            waitables[h.conn] = h
            waitables[h.process.sentinel] = h
        ready: list[Any] = mp_wait(list(waitables), timeout)  # connections and sentinels (ints)
        out: list[tuple[LocalHandle, WorkerMessage]] = []
        seen_conn = set()
        for obj in ready:
            h = waitables[obj]
            if obj is h.conn:
                seen_conn.add(id(h))
                while True:
                    try:
                        if not h.conn.poll():
                            break
                        message = h.conn.recv()
                    except (EOFError, OSError):
                        break
                    if isinstance(message, WorkerReady):
                        h.ready = True
                    elif isinstance(message, WorkerResult):
                        h.busy = False
                    out.append((h, message))
        for obj in ready:
            h = waitables[obj]
            if obj is h.process.sentinel and not h.dead:
                # drain what it said before dying, then report the death
                if id(h) not in seen_conn:
                    with contextlib.suppress(EOFError, OSError):
                        while h.conn.poll():
                            out.append((h, h.conn.recv()))
                h.process.join(1)
                h.dead = True
                if not any(isinstance(m, InitFailed) for hh, m in out if hh is h):
                    out.append((h, WorkerDied(describe_exit(h.process.exitcode))))
        return out

    def shutdown(self) -> None:
        stop_workers(self.handles)
        self.handles = []


def stop_workers(handles: list[LocalHandle]) -> None:
    """Ask workers to leave, then kill those still there after 2 s."""
    for h in handles:
        if not h.dead:
            with contextlib.suppress(Exception):
                h.conn.send(("stop",))
    for h in handles:
        if not h.dead:
            with contextlib.suppress(Exception):
                h.process.join(2)
            if h.process.is_alive():
                h.kill()
            h.dead = True
            with contextlib.suppress(Exception):
                h.conn.close()
