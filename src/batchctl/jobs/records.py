"""Job records: `jobs/<name>/job.json`, written by the job's runner (the only writer while it lives)
under a per-job lock, read by everyone. A runner that died leaves its job reading `Failed`."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchctl.errors import ConflictError, NotFoundError
from batchctl.fsutil import atomic_write_json
from batchctl.workspace import Workspace, now

QUEUED, RUNNING, COMPLETED, FAILED, CANCELED = "Queued", "Running", "Completed", "Failed", "Canceled"
TERMINAL = (COMPLETED, FAILED, CANCELED)
STATES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELED)
ALLOWED = {
    QUEUED: {RUNNING, FAILED, CANCELED},
    RUNNING: {COMPLETED, FAILED, CANCELED},
    COMPLETED: set(),
    FAILED: set(),
    CANCELED: set(),
}
RUNNER_DIED = "runner exited unexpectedly"


def job_dir(ws: Workspace, name: str) -> Path:
    from batchctl.specs.load import validate_name

    validate_name("job", name)
    return ws.inside(ws.jobs_dir / name)


def create_job_dir(ws: Workspace, name: str) -> Path:
    folder = job_dir(ws, name)
    ws.jobs_dir.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        raise ConflictError(f"job '{name}' already exists", "choose another --job-name") from None
    return folder


def _path(folder: Path) -> Path:
    return folder / "job.json"


@contextlib.contextmanager
def job_lock(folder: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(folder / "job.lock"), timeout=30):
        yield


def read_raw(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads(_path(folder).read_bytes())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def write(folder: Path, record: dict[str, Any]) -> None:
    atomic_write_json(_path(folder), record)


def update(folder: Path, **changes: Any) -> dict[str, Any]:
    with job_lock(folder):
        record = read_raw(folder) or {}
        status = changes.get("status")
        if status and status != record.get("status"):
            if record.get("status") in TERMINAL:
                return record  # a terminal state is final (e.g. the reconciler got there first)
            if status in (RUNNING, COMPLETED, FAILED, CANCELED) and "end_time" not in changes and status in TERMINAL:
                changes["end_time"] = now()
        record.update(changes)
        write(folder, record)
        return record


def process_start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode(errors="replace")
        return int(raw.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def runner_identity(pid: int | None = None) -> dict[str, Any]:
    pid = pid or os.getpid()
    return {"pid": pid, "start_ticks": process_start_ticks(pid), "host": os.uname().nodename}


def runner_alive(runner: dict[str, Any] | None) -> bool:
    if not runner or not runner.get("pid"):
        return False
    pid = int(runner["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    ticks = runner.get("start_ticks")
    if ticks is not None:
        current = process_start_ticks(pid)
        if current is not None and current != ticks:
            return False  # the pid was reused by another process
        if current is not None:
            try:
                with open(f"/proc/{pid}/stat", "rb") as handle:
                    state = handle.read().decode(errors="replace").rsplit(")", 1)[1].split()[0]
                if state in ("Z", "X"):
                    return False
            except OSError:
                return False
    return True


def reconcile(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    """A Queued/Running job whose runner is gone reads Failed, never Running forever."""
    if record.get("status") not in (QUEUED, RUNNING):
        return record
    if runner_alive(record.get("runner")):
        return record
    with job_lock(folder):
        fresh = read_raw(folder) or record
        if fresh.get("status") in (QUEUED, RUNNING) and not runner_alive(fresh.get("runner")):
            fresh["status"] = FAILED
            fresh["end_time"] = now()
            fresh.setdefault("error", None)
            if not fresh.get("error"):
                fresh["error"] = {"message": RUNNER_DIED}
            write(folder, fresh)
        return fresh


def load(ws: Workspace, name: str) -> dict[str, Any]:
    folder = job_dir(ws, name)
    record = read_raw(folder)
    if record is None:
        raise NotFoundError(f"job '{name}' not found", "list jobs with `batchctl job list`")
    return reconcile(folder, record)


def list_all(ws: Workspace) -> list[dict[str, Any]]:
    if not ws.jobs_dir.is_dir():
        return []
    out = []
    for entry in ws.jobs_dir.iterdir():
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        record = read_raw(entry)
        if record is not None:
            out.append(reconcile(entry, record))
    out.sort(key=lambda r: r.get("created_at", ""))
    return out
