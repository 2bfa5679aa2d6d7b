"""The job's journal: while a job runs, the one writer of its counts (job.json), batches.jsonl,
failed_items.jsonl and its logs (Azure's layout, jobs/logs.py). It turns the supervise() loop's
BatchEvents into those files and into JobProgress updates for the front end."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from batchctl.errors import redact
from batchctl.execution.events import BatchEvent, EventKind
from batchctl.execution.worker import part_name
from batchctl.jobs import records
from batchctl.jobs.logs import JobLogs
from batchctl.jobs.model import JobCounts, JobProgress, job_error
from batchctl.jobs.results import Commit, ResultStore
from batchctl.scoring.failures import ErrorInfo

ProgressFn = Callable[[JobProgress], None]
FLUSH_SECONDS = 0.5


def last_line(text: str | None) -> str:
    """The last non-empty line of an error (a traceback's last line names the exception), redacted."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return redact(lines[-1].strip()) if lines else ""


def _system_failure(error: str | None) -> bool:
    """A timeout or a dead worker: the supervisor's finding, not a traceback the worker reported."""
    return "timed out" in (error or "") or "exited unexpectedly" in (error or "")


class OkUnits:
    """The committed units and their part files, one byte per unit (a job of millions of files has
    hundreds of thousands of units): 0 not committed, 1 committed with rows, 2 committed without."""

    def __init__(self, results: ResultStore) -> None:
        self.results = results
        self.state = bytearray()

    def __setitem__(self, unit: int, part: str | None) -> None:
        if unit >= len(self.state):
            self.state.extend(bytes(unit + 1 - len(self.state)))
        self.state[unit] = 1 if part else 2

    def __contains__(self, unit: object) -> bool:
        return isinstance(unit, int) and 0 <= unit < len(self.state) and self.state[unit] != 0

    def __getitem__(self, unit: int) -> str | None:
        if unit not in self:
            raise KeyError(unit)
        return self.results.part_of(unit) if self.state[unit] == 1 else None

    def __iter__(self) -> Iterator[int]:
        return (unit for unit, state in enumerate(self.state) if state)

    def __len__(self) -> int:
        return len(self.state) - self.state.count(0)


class JobJournal:
    def __init__(
        self,
        folder: Path,
        job: str,
        batches: Any,
        counts: JobCounts,
        logs: JobLogs,
        on_progress: ProgressFn | None,
    ):
        self.folder = folder
        self.job = job
        self.batches = batches
        self.counts = counts
        self.logs = logs
        self.on_progress = on_progress
        self.last_write = 0.0
        self.first_error: dict[str, Any] | None = None
        self.results = ResultStore(folder)
        self.ok_batches = OkUnits(self.results)  # committed mini-batch -> its part file (None: no rows)
        self.batch_rows: dict[int, int] = {}  # row range unit -> rows it returned (renumbering split files)
        self.ranges: dict[int, Any] = {}  # the units that are row ranges (the feed's)
        self.failed_log = open(folder / "failed_items.jsonl", "a", encoding="utf-8")  # noqa: SIM115
        self.batch_log = open(folder / "batches.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def begin_attempt(self) -> None:
        """The logs of an attempt describe the mini-batches its result holds: those kept from an earlier
        attempt (`keep`, as the plan is read), then the new ones."""
        self.failed_log.truncate(0)
        self.batch_log.truncate(0)
        c = self.counts
        c.mini_batches_completed = c.mini_batches_failed = 0
        c.items_succeeded = c.rows = c.items_reused = 0
        c.items_failed = c.retries = c.worker_restarts = 0

    def reused(self, rows: int) -> None:
        """A file whose rows an earlier job's result holds (jobs/reuse.py): succeeded, not scored."""
        c = self.counts
        c.items_succeeded += 1
        c.items_reused += 1
        c.rows += rows

    def keep(self, batch: int, commit: Commit, first: int, files: int) -> None:
        """A mini-batch an earlier attempt committed with no failed item: counted, not scored again."""
        self.ok_batches[batch] = self.results.part_path(commit)
        c = self.counts
        c.mini_batches_completed += 1
        c.items_succeeded += commit.succeeded
        c.rows += commit.rows
        self._log_batch(batch, True, commit.attempt, commit.succeeded, commit.failed, first, files)

    def _log_batch(
        self,
        batch: int,
        ok: bool,
        attempts: int,
        succeeded: int,
        failed: int,
        first: int | None = None,
        files: int | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "batch": batch,
            "ok": ok,
            "attempts": attempts,
            "succeeded": succeeded,
            "failed": failed,
        }
        if first is not None:  # the unit's files in the plan: plan entries first .. first + files - 1
            entry.update(first=first, files=files)
        self.batch_log.write(json.dumps(entry) + "\n")
        self.batch_log.flush()

    def close(self) -> None:
        try:
            self.results.close()  # what is staged is committed: those results are whole
        except OSError as exc:  # the job ends anyway; what was not committed is scored again by a resume
            self.logs.master(f"the last results could not be committed ({exc}); a resume scores them again")
        finally:
            self.failed_log.close()
            self.batch_log.close()

    def overview(self) -> str:
        c = self.counts
        return (
            f"Total mini-batches: {c.mini_batches}\n"
            f"Mini-batches processed: {c.mini_batches_completed + c.mini_batches_failed}\n"
            f"Mini-batches succeeded: {c.mini_batches_completed}\n"
            f"Mini-batches failed: {c.mini_batches_failed}\n"
            f"Items (files): {c.files}\n"
            f"Items succeeded: {c.items_succeeded}\n"
            f"Items failed: {c.items_failed}\n"
            f"Retries: {c.retries}\n"
            f"Worker restarts: {c.worker_restarts}\n"
        )

    def commit_group(self) -> None:
        """After each batch of the workers' messages (the Supervisor's hook): the results that arrived
        together go to the commit log together, one write and one fsync (jobs/results.py), made while the
        loop goes on; the counts are written when due."""
        self.flush()

    def flush(self, force: bool = False) -> None:
        self.results.flush()
        now_t = time.monotonic()
        if force or now_t - self.last_write > FLUSH_SECONDS:
            self.results.sync()  # job.json never counts a result that is not committed
            self.last_write = now_t
            records.update(self.folder, counts=self.counts)
            self.logs.progress(self.overview())

    def set_error(self, message: str, details: str | None = None, info: ErrorInfo | None = None) -> None:
        """Keep the job's first error (jobs/model.job_error): the exception's type, message and frame when
        known, else `message`."""
        if self.first_error is None:
            extras = {"details": redact(details)[-4000:]} if details else {}
            if info is not None:
                self.first_error = job_error(redact(info.message), info.type, info.frame, **extras)
            else:
                self.first_error = job_error(redact(message), **extras)

    def __call__(self, event: BatchEvent) -> None:
        logs, slot = self.logs, event.slot
        kind = event.kind
        if kind is EventKind.WORKER_READY:
            logs.master(f"worker {slot} ready (pid {event.pid}): init() done")
        elif kind is EventKind.WORKER_STARTED:
            logs.master(f"worker {slot} starting")
        elif kind is EventKind.INIT_RUNNING:
            logs.master(f"worker {slot}: {event.reason}")
        elif kind is EventKind.WORKER_STOPPED:
            logs.master(f"worker {slot} {event.reason}")
        elif kind is EventKind.DISPATCHED:
            logs.master(f"mini-batch {event.batch} attempt {event.attempt} -> worker {slot}")
        elif kind is EventKind.WORKER_DIED:
            logs.master(f"worker {slot} died ({event.reason}); replaced")
            self.counts.worker_restarts += 1
        elif kind is EventKind.TIMEOUT:
            logs.master(f"mini-batch {event.batch} attempt {event.attempt} timed out; worker {slot} killed")
            self.counts.worker_restarts += 1
        elif kind is EventKind.ATTEMPT_FAILED:
            self._attempt_failed(event)
        elif kind is EventKind.RETRY:
            self.counts.retries += 1
            logs.master(f"mini-batch {event.batch} attempt {event.attempt} failed: {last_line(event.error)}; retrying")
            if _system_failure(event.error):
                logs.user_error(f"mini-batch {event.batch} attempt {event.attempt}: {last_line(event.error)}")
                self.set_error(f"mini-batch {event.batch}: {last_line(event.error)}")
        elif kind is EventKind.FINAL:
            self._final(event)
        if self.on_progress is not None:
            self.on_progress(JobProgress(event=event, counts=self.counts.model_copy()))

    def _attempt_failed(self, event: BatchEvent) -> None:
        result = event.result
        assert result is not None
        err = result.error or "run() failed"
        self.logs.worker(
            event.slot or 0,
            f"mini-batch {result.batch} attempt {result.attempt}: FAILED ({result.duration:.3f}s): {last_line(err)}",
        )
        self.logs.user_error(f"mini-batch {result.batch} attempt {result.attempt}: {last_line(err)}", event.slot, err)
        if result.error_info is not None:
            self.set_error(result.error_info.summary(), err, result.error_info)
        else:
            self.set_error(f"mini-batch {result.batch}: {last_line(err)}", err)

    def _final(self, event: BatchEvent) -> None:
        result = event.result
        assert result is not None
        logs, batch, ok = self.logs, result.batch, result.ok
        if ok:
            part = result.part
            self.counts.rows += result.rows
            if batch in self.ranges:
                self.batch_rows[batch] = result.rows
            if result.data:  # the rows came back with the result (Ray): write them as a local worker would
                staged = self.folder / "parts" / part_name(batch, result.attempt)
                staged.write_bytes(result.data)
                part = str(staged)
            files = self.batches.key(batch) if hasattr(self.batches, "key") else self.batches[batch]
            commit = self.results.stage(
                self.job,
                batch,
                files,
                result.attempt,
                (result.succeeded, result.failed, result.rows),
                part,
                result.file_rows,
            )
            self.ok_batches[batch] = self.results.part_path(commit)
            self.counts.mini_batches_completed += 1
            items = result.succeeded + result.failed
            logs.worker(
                event.slot or 0,
                f"mini-batch {batch} attempt {result.attempt}: items {items}, "
                f"succeeded {result.succeeded}, failed {result.failed}, "
                f"rows {result.rows}, duration {result.duration:.3f}s",
            )
        else:
            self.counts.mini_batches_failed += 1
            error = last_line(result.error)
            logs.master(f"mini-batch {batch} failed after {result.attempt} attempts: {error}")
            if _system_failure(result.error):  # run() errors were logged per attempt already
                logs.user_error(f"mini-batch {batch} attempt {result.attempt}: {error}")
            if result.error_info is not None and result.error_info.type:
                self.set_error(result.error_info.summary(), info=result.error_info)
            else:
                self.set_error(f"mini-batch {batch}: {error}")
        self.counts.items_succeeded += result.succeeded
        self.counts.items_failed += result.failed
        traceback_log = f"logs/user/error/worker-{event.slot}.txt" if not ok and result.error_info else None
        for item_error in result.item_errors:
            info = item_error.info
            entry = {
                "item": item_error.item,
                "file": item_error.item,
                "batch": batch,
                "attempts": result.attempt,
                "type": info.type,
                "message": redact(info.message),
                "frame": info.frame,
                "log": traceback_log or "logs/user/error.txt",
                "reason": redact(item_error.reason),
            }
            self.failed_log.write(json.dumps(entry) + "\n")
            if ok:
                if item_error.item is None:
                    logs.user_error(f"mini-batch {batch}: {item_error.reason}")
                else:  # Azure's wording, so that log searches written for Azure still find it
                    logs.user_error(f"Error processing input file: '{item_error.item}'. Exception: {item_error.reason}")
                self.set_error(item_error.reason, info=info if info.type else None)
        self.failed_log.flush()
        first = self.batches.first_index(batch) if hasattr(self.batches, "first_index") else None
        n_files = len(self.batches[batch]) if first is not None else None
        self._log_batch(batch, ok, result.attempt, result.succeeded, result.failed, first, n_files)
        # committed, and the counts written, by commit_group() once this batch of messages is delivered
