"""The server's job queue: jobs accepted over REST (or handed over by the CLI) run in `max_jobs` long-lived
threads through `api.run_job`, the same runner the CLI uses, so records are the same job.json.

Long-lived threads, not one thread per job: a worker process dies with the thread that started it
(PR_SET_PDEATHSIG follows the parent *thread* on Linux), and warm workers outlive the job that started
them. Jobs keep running when the HTTP client goes away: nothing here depends on a request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from batchctl import api
from batchctl.errors import BatchctlError
from batchctl.execution.pool import WarmPools
from batchctl.workspace import Workspace


class QueueClosedError(BatchctlError):
    """The server is shutting down and takes no new job (HTTP 503)."""

    exit_code = 5
    http_status = 503
    http_code = "ServiceUnavailable"


class JobQueue:
    def __init__(self, ws: Workspace, max_jobs: int, pools: WarmPools | None) -> None:
        self.ws = ws
        self.max_jobs = max(1, max_jobs)
        self.pools = pools
        self._cond = threading.Condition()
        self._pending: deque[str] = deque()
        # the `${env:NAME}` values a CLI sent with a job it handed over: memory only, dropped once used
        self._environ: dict[str, dict[str, str]] = {}
        self._running: set[str] = set()
        self._closing = False  # no new job
        self._exit = False  # runner threads leave (only once the pools are closed: see shutdown)
        self._threads: list[threading.Thread] = []
        self.completed = 0
        self.errors: list[str] = []

    def start(self) -> None:
        for i in range(self.max_jobs):
            thread = threading.Thread(target=self._loop, name=f"batchctl-job-runner-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def enqueue(self, name: str, environ: dict[str, str] | None = None) -> None:
        """Queue a job; `environ` (a CLI's hand-over) is where its `${env:NAME}` references are read
        instead of the server's environment."""
        with self._cond:
            if self._closing:
                raise QueueClosedError("the server is shutting down and accepts no new job")
            if environ is not None:
                self._environ[name] = dict(environ)
            self._pending.append(name)
            self._cond.notify()

    def check_accepting(self) -> None:
        """Raise QueueClosedError once the server is shutting down: checked before a job is submitted."""
        with self._cond:
            if self._closing:
                raise QueueClosedError("the server is shutting down and accepts no new job")

    def submit(self, name: str, environ: dict[str, str] | None = None) -> None:
        """Enqueue a job just submitted, or cancel it and re-raise when the server started shutting down in
        between: a job never stays Queued with no runner left to run it."""
        try:
            self.enqueue(name, environ)
        except QueueClosedError:
            with contextlib.suppress(BatchctlError):
                api.cancel_job(self.ws, name)
            raise

    def withdraw(self, name: str) -> bool:
        """Take a job that has not started off the queue; False when it is running or unknown."""
        with self._cond:
            try:
                self._pending.remove(name)
            except ValueError:
                return False
            self._environ.pop(name, None)
            return True

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "max_jobs": self.max_jobs,
                "queued": len(self._pending),
                "running": len(self._running),
                "accepting": not self._closing,
                "completed": self.completed,
            }

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._exit:
                    self._cond.wait()
                if not self._pending:
                    return
                name = self._pending.popleft()
                environ = self._environ.pop(name, None)
                self._running.add(name)
            try:
                api.run_job(self.ws, name, pools=self.pools, environ=environ)
            except BatchctlError as exc:  # canceled before it started, or its record is gone
                self.errors.append(f"{name}: {exc.message}")
            except Exception as exc:  # noqa: BLE001 - one job's surprise must not stop the runner thread
                self.errors.append(f"{name}: unexpected {type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    self._running.discard(name)
                    self.completed += 1
                    self._cond.notify_all()

    def shutdown(self, grace: float, hurry: Callable[[], bool] = lambda: False) -> dict[str, list[str]]:
        """Stop accepting; cancel the jobs that have not started; let running ones finish for `grace`
        seconds (or until `hurry()`, a second Ctrl-C), then cancel them (workers stopped, nothing
        published). Returns what happened."""
        with self._cond:
            self._closing = True
            never_started = list(self._pending)
            self._pending.clear()
            self._environ.clear()
            self._cond.notify_all()
        for name in never_started:
            with contextlib.suppress(BatchctlError):
                api.cancel_job(self.ws, name)
        deadline = time.monotonic() + max(0.0, grace)
        with self._cond:
            while self._running and time.monotonic() < deadline and not hurry():
                self._cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            still = sorted(self._running)
        for name in still:
            with contextlib.suppress(BatchctlError):
                api.cancel_job(self.ws, name)
        with self._cond:
            while self._running:
                self._cond.wait(0.2)
        # warm workers first: a worker is killed when the thread that started it ends
        if self.pools is not None:
            self.pools.close()
        with self._cond:
            self._exit = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)
        return {"canceled_queued": never_started, "canceled_running": still}
