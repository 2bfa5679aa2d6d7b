"""Warm worker pools, kept by `batchctl serve`: workers whose init() has run (model loaded) wait between
jobs of the same deployment version and take the next job's mini-batches at once.

A pool is keyed by everything that would change what a worker computes: the scorer settings (model
folder, code snapshot, scoring script, environment variables, logging level, output action), the
deployment's spec hash, and the content hashes of the model and code that the job computes itself
(jobs/runner.make_backend), so files changed in place never meet workers that loaded the old ones. What
is per job (where the rows go, the job's AZUREML_BI_OUTPUT_PATH, its log of the worker's prints) travels
with each task (`BatchTask`), so a warm worker writes into the job it serves now.

`WarmBackend` is the local backend with two changes: `spawn` takes an idle warm worker when there is one
(and reports it ready at once), and `shutdown` gives healthy idle workers back to the pool instead of
stopping them. Everything else, retries, timeouts, replacing a worker that failed, died or was killed, is
the same `supervise()` loop as a cold job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchctl.execution.events import WorkerMessage, WorkerReady
from batchctl.execution.local import LocalBackend, LocalHandle, stop_workers
from batchctl.scoring.base import ScorerRef

DEFAULT_IDLE_TIMEOUT = 600.0


def pool_key(ref: ScorerRef, *extra: Any) -> str:
    """A digest of what a worker computes with: the ScorerRef without its per-job output folder, plus
    `extra` (deployment spec hash, model content hash...)."""
    settings = dataclasses.asdict(dataclasses.replace(ref, output_dir=""))
    blob = json.dumps([settings, [str(x) for x in extra]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass
class _Pool:
    owner: str  # "endpoint/deployment": a deployment that changes drops its older pools
    tag: str | None  # the deployment's spec hash when the pool was made
    idle: list[tuple[LocalHandle, float]] = field(default_factory=list)  # (worker, idle since)
    last_used: float = field(default_factory=time.monotonic)


class WarmPools:
    """The server's pools: at most one per key; idle workers stop after `idle_timeout` seconds."""

    def __init__(self, idle_timeout: float = DEFAULT_IDLE_TIMEOUT, scratch: str | None = None) -> None:
        self.idle_timeout = idle_timeout
        self.scratch = scratch or tempfile.mkdtemp(prefix="batchctl-pools-")
        os.makedirs(self.scratch, exist_ok=True)
        self._lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}
        self._closed = False
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self.reused = 0  # workers handed to a job warm (for /health and tests)
        self.started = 0  # workers a pooled job had to start cold

    @property
    def enabled(self) -> bool:
        return self.idle_timeout > 0 and not self._closed

    def start_reaper(self, every: float | None = None) -> None:
        interval = every if every is not None else max(0.5, min(5.0, self.idle_timeout / 4))
        self._reaper = threading.Thread(target=self._reap_loop, args=(interval,), name="batchctl-pool-reaper")
        self._reaper.daemon = True
        self._reaper.start()

    def _reap_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.reap()

    def backend(
        self, key: str, owner: str, tag: str | None, ref: ScorerRef, logs_dir: str, parts_dir: str
    ) -> WarmBackend:
        """A backend for one job: it takes this key's warm workers first. A new key for an owner drops the
        owner's other pools (the deployment changed)."""
        with self._lock:
            stale = [k for k, p in self._pools.items() if p.owner == owner and k != key]
            dropped = [self._pools.pop(k) for k in stale]
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = _Pool(owner, tag)
            pool.last_used = time.monotonic()
        self._stop_pools(dropped)
        return WarmBackend(self, key, ref, logs_dir, parts_dir)

    def take(self, key: str) -> LocalHandle | None:
        """An idle worker of this key whose process still lives, or None."""
        with self._lock:
            pool = self._pools.get(key)
            while pool is not None and pool.idle:
                handle, _ = pool.idle.pop()
                if not handle.dead and handle.process.is_alive():
                    self.reused += 1
                    return handle
                handle.kill()
        return None

    def give_back(self, key: str, handles: list[LocalHandle], keep: int) -> None:
        """Healthy idle workers return to their pool (at most `keep` idle per key); the rest stop."""
        surplus: list[LocalHandle] = []
        with self._lock:
            pool = self._pools.get(key)
            if pool is None or not self.enabled:
                surplus = handles
            else:
                now = time.monotonic()
                for handle in handles:
                    if len(pool.idle) < keep:
                        handle.backend = None
                        pool.idle.append((handle, now))
                    else:
                        surplus.append(handle)
                pool.last_used = now
        stop_workers(surplus)

    def reap(self) -> int:
        """Stop the workers idle for longer than idle_timeout; returns how many stopped."""
        expired: list[LocalHandle] = []
        with self._lock:
            now = time.monotonic()
            for key in list(self._pools):
                pool = self._pools[key]
                keep = []
                for handle, since in pool.idle:
                    if now - since > self.idle_timeout or handle.dead or not handle.process.is_alive():
                        expired.append(handle)
                    else:
                        keep.append((handle, since))
                pool.idle = keep
                if not keep and now - pool.last_used > self.idle_timeout:
                    del self._pools[key]
        stop_workers(expired)
        return len(expired)

    def drop(self, predicate: Callable[[str, str | None], bool]) -> int:
        """Stop the pools whose (owner, tag) match, e.g. a deployment that changed or was deleted."""
        with self._lock:
            keys = [k for k, p in self._pools.items() if predicate(p.owner, p.tag)]
            dropped = [self._pools.pop(k) for k in keys]
        return self._stop_pools(dropped)

    def owners(self) -> dict[str, set[str | None]]:
        with self._lock:
            out: dict[str, set[str | None]] = {}
            for pool in self._pools.values():
                out.setdefault(pool.owner, set()).add(pool.tag)
            return out

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pools": len(self._pools),
                "idle_workers": sum(len(p.idle) for p in self._pools.values()),
                "workers_reused": self.reused,
                "workers_started": self.started,
                "idle_timeout": self.idle_timeout,
            }

    def close(self) -> None:
        """Stop every idle worker; later give_back() calls stop their workers too."""
        self._stop.set()
        with self._lock:
            self._closed = True
            dropped = list(self._pools.values())
            self._pools.clear()
        self._stop_pools(dropped)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.scratch)

    def _stop_pools(self, pools: list[_Pool]) -> int:
        handles = [h for p in pools for h, _ in p.idle]
        stop_workers(handles)
        return len(handles)

    def worker_output_dir(self) -> str:
        return tempfile.mkdtemp(prefix="w-", dir=self.scratch)


class WarmBackend(LocalBackend):
    """The local backend of one job run by the server: warm workers first, healthy ones kept after."""

    name = "local"

    def __init__(self, pools: WarmPools, key: str, ref: ScorerRef, logs_dir: str, parts_dir: str) -> None:
        super().__init__(ref, logs_dir, parts_dir)
        self.pools = pools
        self.key = key
        self.pending: list[tuple[LocalHandle, WorkerMessage]] = []
        self.peak = 0

    def spawn(self, slot: int, ref: ScorerRef | None = None) -> LocalHandle:
        handle = self.pools.take(self.key)
        if handle is None:
            # a worker of its own AZUREML_BI_OUTPUT_PATH: it may serve other jobs later (worker.py moves the
            # files it writes there into the job's output after each task)
            own = dataclasses.replace(self.ref, output_dir=self.pools.worker_output_dir())
            handle = super().spawn(slot, own)
            self.pools.started += 1
        else:
            handle.slot = slot
            handle.backend = self
            self.handles.append(handle)
            if handle.ready:
                self.pending.append((handle, WorkerReady(handle.process.pid)))
        self.peak = max(self.peak, sum(1 for h in self.handles if not h.dead))
        return handle

    def wait(self, handles: list[LocalHandle], timeout: float) -> list[tuple[LocalHandle, WorkerMessage]]:
        if self.pending:
            out, self.pending = self.pending, []
            return out + super().wait(handles, 0)
        return super().wait(handles, timeout)

    def shutdown(self) -> None:
        healthy = [h for h in self.handles if not h.dead and not h.busy and h.process.is_alive()]
        rest = [h for h in self.handles if h not in healthy]
        stop_workers(rest)
        self.handles = []
        self.pools.give_back(self.key, healthy, keep=max(1, self.peak))
