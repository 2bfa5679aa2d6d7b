"""Job records: `jobs/<name>/job.json`, written by the job's runner (the only writer while it lives)
under a per-job lock, read by everyone. A runner that died leaves its job reading `Failed`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchctl.errors import BatchctlError, ConflictError, InvalidStateError, NotFoundError, RegistryCorruptError
from batchctl.fsutil import atomic_write_json
from batchctl.jobs.model import JobRecord, JobState, job_error
from batchctl.processes import process_start_ticks as process_start_ticks
from batchctl.processes import runner_alive as runner_alive
from batchctl.processes import runner_identity as runner_identity
from batchctl.workspace import Workspace, now

CANCEL_MARKER = "cancel_requested"  # a file in the job's folder: `job cancel` asks the runner to stop
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


@contextlib.contextmanager
def creating_job_dir(ws: Workspace, name: str) -> Iterator[Path]:
    """A new job folder for the block that fills it; if the workspace cannot be written (disk full,
    permission denied), the folder is removed and the error is one line: no half-made job is left."""
    import shutil

    try:
        folder = create_job_dir(ws, name)
    except OSError as exc:
        raise BatchctlError(f"cannot create job '{name}' in {ws.jobs_dir}: {exc.strerror or exc}") from exc
    try:
        yield folder
    except BaseException as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BatchctlError(
                f"cannot create job '{name}' in {ws.jobs_dir}: {exc.strerror or exc}; nothing was created"
            ) from exc
        raise


def _path(folder: Path) -> Path:
    return folder / "job.json"


@contextlib.contextmanager
def job_lock(folder: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(folder / "job.lock"), timeout=30):
        yield


def read(folder: Path) -> JobRecord | None:
    """The job's record, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(_path(folder).read_bytes())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    from pydantic import ValidationError

    try:
        return JobRecord.model_validate(data)
    except ValidationError:
        return None


def write(folder: Path, record: JobRecord) -> None:
    atomic_write_json(_path(folder), record.dump())


def update(folder: Path, status: JobState | None = None, **changes: Any) -> JobRecord:
    """Change the record under the job's lock. A change of state follows JobState.transition: out of a
    terminal state it raises InvalidStateError. Reaching a terminal state stamps end_time."""
    with job_lock(folder):
        record = read(folder)
        if record is None:
            raise NotFoundError(f"job {folder.name} has no record")
        if status is not None and status != record.status:
            record.status.transition(status)
            if status.terminal and "end_time" not in changes:
                changes["end_time"] = now()
            changes["status"] = status
        fresh = record.model_copy(update=changes)
        fresh = JobRecord.model_validate(fresh.model_dump())
        write(folder, fresh)
        return fresh


def reopen(folder: Path, note: str | None = None, **changes: Any) -> JobRecord:
    """A Failed or Canceled job back to Queued for `job resume`; the attempt that ended goes to history
    (with `note`, what the resume changed, when given)."""
    with job_lock(folder):
        record = read(folder)
        if record is None:
            raise NotFoundError(f"job {folder.name} has no record")
        status = record.status.reopen()
        history = [
            *record.history,
            {
                "attempt": record.attempts,
                "status": record.status.value,
                "start_time": record.start_time,
                "end_time": record.end_time,
                "error": record.error,
                "counts": record.counts.model_dump(),
                **({"resumed_with": note} if note else {}),
            },
        ]
        update = {
            "status": status,
            "attempts": record.attempts + 1,
            "history": history,
            "start_time": None,
            "end_time": None,
            "duration_seconds": None,
            "error": None,
            "published": None,  # the ended attempt's publish intent is not this attempt's
            "publishing": None,
            **changes,
        }
        fresh = JobRecord.model_validate(record.model_copy(update=update).model_dump())
        write(folder, fresh)
        return fresh


def try_update(folder: Path, status: JobState, **changes: Any) -> JobRecord:
    """update(), except that a record already terminal is returned as it is (someone got there first)."""
    try:
        return update(folder, status, **changes)
    except InvalidStateError:
        record = read(folder)
        assert record is not None
        return record


def reconcile(folder: Path, record: JobRecord) -> JobRecord:
    """A Queued/Running job whose runner is gone reads Failed, never Running forever (Completed when the
    runner died after its results were published)."""
    if record.status.terminal or runner_alive(record.runner):
        return record
    with job_lock(folder):
        fresh = read(folder) or record
        if not fresh.status.terminal and not runner_alive(fresh.runner):
            if fresh.published or _own_results_published(folder, fresh):
                # its runner died after publishing: the results are all there
                update = {"status": fresh.status.transition(JobState.COMPLETED), "end_time": now(), "published": True}
            else:
                update = {
                    "status": fresh.status.transition(JobState.FAILED),
                    "end_time": now(),
                    "error": fresh.error or job_error(RUNNER_DIED),
                }
            fresh = fresh.model_copy(update=update)
            write(folder, fresh)
        return fresh


def _own_results_published(folder: Path, record: JobRecord) -> bool:
    """The runner died between creating the results file and recording it: is the file at the final name
    the one it published (the hash it recorded just before)? Hashes the file once; the job is then terminal."""
    intent, location = record.publishing, record.output_file_location
    if not intent or location is None:
        return False
    from batchctl.tracking.lineage import hash_location

    try:
        actual = hash_location(location.location())
    except Exception:  # absent, unreadable or the store is down: not shown to be this job's file
        return False
    if actual != intent.get("sha256"):
        return False
    from batchctl.jobs.logs import JobLogs

    logs = JobLogs(folder / "logs")
    with contextlib.suppress(OSError):
        logs.master(
            f"the runner exited after publishing {intent.get('url')}; the file there has the sha256 recorded "
            f"before the publish ({actual}): the job is Completed"
        )
    logs.close()
    return True


def load(ws: Workspace, name: str) -> JobRecord:
    folder = job_dir(ws, name)
    record = read(folder)
    if record is None:
        if _path(folder).exists():
            raise _corrupt(folder)
        raise NotFoundError(f"job '{name}' not found", "list jobs with `batchctl job list`")
    return reconcile(folder, record)


def _corrupt(folder: Path) -> RegistryCorruptError:
    return RegistryCorruptError(
        f"job '{folder.name}' is corrupt: {_path(folder)} is not a readable job record; it was left as it is",
        f"look at it, then remove the job with `rm -r {folder}`",
    )


def list_all(ws: Workspace) -> list[JobRecord]:
    if not ws.jobs_dir.is_dir():
        return []
    out = []
    for entry in ws.jobs_dir.iterdir():
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        record = read(entry)
        if record is not None:
            out.append(reconcile(entry, record))
        elif _path(entry).exists():
            from batchctl.notices import notify

            notify(f"{_corrupt(entry).message} (remove it with `rm -r {entry}`)")
    out.sort(key=lambda r: r.created_at)
    return out
