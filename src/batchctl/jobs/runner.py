"""run_job(): the one writer of a job's state while it runs.

plan.json (the sorted input files) -> mini-batches -> executor -> per-mini-batch parts -> one results
file published create-only -> Completed. Any failure leaves nothing at the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from batchctl import secrets, storage
from batchctl.errors import BatchctlError, InvalidStateError, JobCanceledError, JobFailedError, redact
from batchctl.execution.base import InitFailedError, RunSettings, supervise
from batchctl.execution.partition import plan_batches
from batchctl.jobs import records
from batchctl.jobs.journal import JobJournal, ProgressFn
from batchctl.jobs.logs import JobLogs
from batchctl.jobs.model import JobPlan, JobProgress, JobRecord, JobState
from batchctl.scoring.base import ScorerRef
from batchctl.workspace import Workspace, now

CANCEL_MARKER = "cancel_requested"


def make_backend(record: JobRecord, ref: ScorerRef, folder: Path) -> Any:
    if record.compute_type == "ray":
        from batchctl.execution.ray import RayBackend

        return RayBackend(
            ref, record.compute_address or "local", record.compute_max_workers, logs_dir=str(folder / "logs")
        )
    from batchctl.execution.local import LocalBackend

    return LocalBackend(ref, str(folder / "logs"), str(folder / "parts"))


def scorer_ref(record: JobRecord, bi_output: Path) -> ScorerRef:
    snapshot = record.deployment_snapshot
    return ScorerRef(
        kind="script" if snapshot.code_dir else "mlflow",
        model_dir=snapshot.model_dir,
        model_path=snapshot.model_path,
        code_dir=snapshot.code_dir,
        scoring_script=snapshot.scoring_script,
        output_action=record.settings.output_action,
        output_dir=str(bi_output),
        logging_level=record.settings.logging_level,
        # ${env:NAME} references are resolved here, in memory, when the job starts: never written to a file
        environment_variables=secrets.resolve(snapshot.environment_variables, os.environ),
    )


def run_job(ws: Workspace, name: str, on_progress: ProgressFn | None = None) -> JobRecord:
    """Run a Queued job to a terminal state in this process; returns the final record."""
    folder = records.job_dir(ws, name)
    record = records.read(folder)
    if record is None:
        raise BatchctlError(f"job '{name}' has no record")
    if record.status is not JobState.QUEUED:
        raise BatchctlError(f"job '{name}' is {record.status}, not Queued")
    logs = JobLogs(folder / "logs")
    logs.setup()
    try:
        record = records.update(folder, JobState.RUNNING, start_time=now(), runner=records.runner_identity())
    except InvalidStateError:  # canceled or reconciled while Queued: never run a terminal job
        current = records.read(folder)
        raise BatchctlError(f"job '{name}' is {current.status if current else 'gone'}, not Queued") from None
    plan = JobPlan.model_validate_json((folder / "plan.json").read_bytes())
    settings = record.settings
    parts = folder / "parts"
    bi_output = folder / "output"
    parts.mkdir(exist_ok=True)
    bi_output.mkdir(exist_ok=True)
    journal = JobJournal(folder, record.counts, logs, on_progress)
    status, error = JobState.FAILED, None
    started = time.monotonic()
    try:
        batches = plan_batches(plan.files, settings.mini_batch_size)
        logs.master(
            f"job {name}: {len(plan.files)} files -> {len(batches)} mini-batches of up to "
            f"{settings.mini_batch_size}; {settings.workers} workers on {record.compute}"
        )
        if (folder / CANCEL_MARKER).exists():
            raise JobCanceledError("job canceled")
        if record.output_file_location is not None:
            storage.refuse_existing(record.output_file_location.location())
        ref = scorer_ref(record, bi_output)
        backend = make_backend(record, ref, folder)
        run_settings = RunSettings(
            workers=settings.workers,
            max_retries=settings.retry_settings.max_retries,
            timeout=settings.retry_settings.timeout,
            error_threshold=settings.error_threshold,
        )
        totals = supervise(
            backend, batches, plan.root, run_settings, journal, lambda: (folder / CANCEL_MARKER).exists()
        )
        journal.flush(force=True)
        if totals.succeeded == 0:
            reason = (journal.first_error or {}).get("message")
            raise JobFailedError(
                "There is no succeeded mini batch item returned from run()"
                + (f"; first error: {reason}" if reason else "")
            )
        _publish(folder, record, journal, logs, bi_output)
        status = JobState.COMPLETED
    except (JobCanceledError, KeyboardInterrupt):
        status = JobState.CANCELED
        error = {"message": "job canceled"}
        logs.master("job canceled; workers stopped; nothing published")
    except InitFailedError as exc:
        error = {"message": exc.message}
        if exc.details:
            error["details"] = redact(exc.details)[-4000:]
            logs.user_error(exc.message, 0, exc.details)
        else:
            logs.user_error(exc.message)
        logs.master(f"job failed: {exc.message}")
    except BatchctlError as exc:
        error = {"message": exc.message}
        logs.master(f"job failed: {exc.message}")
    except Exception as exc:  # an unexpected error must still end the job as Failed, never Running
        error = {"message": redact(f"unexpected {type(exc).__name__}: {exc}")}
        logs.master(f"job failed: {error['message']}")
    finally:
        journal.close()
        shutil.rmtree(parts, ignore_errors=True)
        shutil.rmtree(bi_output, ignore_errors=True)
        with contextlib.suppress(OSError):
            shutil.rmtree(folder / "staging")
    if (
        status is JobState.FAILED
        and error is not None
        and journal.first_error
        and "There is no" not in error["message"]
    ):
        error.setdefault("first_item_error", journal.first_error["message"])
    if status is JobState.COMPLETED and journal.first_error:
        error = journal.first_error
    duration = time.monotonic() - started
    c = journal.counts
    logs.progress(journal.overview() + f"Status: {status}\n")
    logs.result(
        f"{status}: {c.items_succeeded} items succeeded, {c.items_failed} failed, "
        f"{c.mini_batches} mini-batches in {duration:.2f}s"
        + (f"\nError: {error['message']}" if error and status is not JobState.COMPLETED else "")
    )
    final = records.try_update(
        folder, status, end_time=now(), counts=c, error=error, duration_seconds=round(duration, 3)
    )
    logs.close()
    if on_progress is not None:
        on_progress(JobProgress(event=None, counts=c, status=final.status))
    return final


def _publish(folder: Path, record: JobRecord, journal: JobJournal, logs: JobLogs, bi_output: Path) -> None:
    output_folder = record.output_location.location()
    extra = [p for p in bi_output.rglob("*") if p.is_file()]
    if extra:
        storage.prepare_output_folder(output_folder)
        names = storage.upload_tree(str(bi_output), output_folder)
        logs.master(f"published {len(names)} files written by the scoring script to {output_folder.url}")
    if record.output_file_location is None or record.settings.output_file_name is None:
        return
    staging = folder / "staging"
    staging.mkdir(exist_ok=True)
    results = staging / record.settings.output_file_name
    with open(results, "wb") as out:
        for batch in sorted(journal.ok_batches):
            part = journal.ok_batches[batch]
            if part:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())
    target = record.output_file_location.location()
    storage.prepare_output_folder(output_folder)
    storage.publish(str(results), target)
    logs.master(f"published {target.url} ({results.stat().st_size} bytes)")
