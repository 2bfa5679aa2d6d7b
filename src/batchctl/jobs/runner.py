"""run_job(): the one writer of a job's state while it runs.

plan.jsonl (the sorted input files, still growing while a big input is listed) -> mini-batches (jobs/feed.py,
planned a chunk at a time) -> executor -> per-mini-batch parts -> one results file published create-only
-> Completed. Any failure leaves nothing at the final name, except a runner killed in the instant between
creating the results file and saying so in the record: the record then holds the file's hash
(`publishing`, written just before the publish), and the liveness check (records.reconcile) finishes the
job as Completed when the file at the final name has that hash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl import secrets, storage
from batchctl.errors import (
    BatchctlError,
    EnvironmentBuildError,
    InvalidStateError,
    JobCanceledError,
    JobFailedError,
    OutputExistsError,
    masking,
    redact,
)
from batchctl.execution.base import InitFailedError, RunSettings, supervise
from batchctl.execution.splitting import FileLedger, cheap_to_predict
from batchctl.jobs import environment as job_env
from batchctl.jobs import listing as job_listing
from batchctl.jobs import plan as plan_io
from batchctl.jobs import records
from batchctl.jobs.feed import FeedSettings, UnitFeed
from batchctl.jobs.journal import JobJournal, ProgressFn
from batchctl.jobs.listing import Changes
from batchctl.jobs.logs import JobLogs
from batchctl.jobs.model import JobProgress, JobRecord, JobState, job_error
from batchctl.jobs.publish import RangeShift, ordered_parts, write_results
from batchctl.jobs.records import CANCEL_MARKER as CANCEL_MARKER  # where the cancel flag's name is kept
from batchctl.jobs.reuse import Reuse
from batchctl.jobs.reuse import unavailable as reuse_unavailable
from batchctl.scoring.base import ScorerRef
from batchctl.scoring.failures import ErrorInfo
from batchctl.tracking.job import TrackedJob
from batchctl.workspace import Workspace, now

if TYPE_CHECKING:
    from batchctl.execution.pool import WarmPools

SMALL_REMAINDER_FILES = 1_000  # a reuse job scoring at most this many files (and a tenth of its files) uses one worker
TRACKING_AGENT = "batchctl.jobs.tracking_agent"


def make_backend(
    record: JobRecord,
    ref: ScorerRef,
    folder: Path,
    pools: WarmPools | None = None,
    lineage: dict[str, Any] | None = None,
) -> Any:
    if record.compute_type == "ray":
        from batchctl.execution.ray import RayBackend

        return RayBackend(
            ref,
            record.compute_address or "local",
            record.compute_max_workers,
            logs_dir=str(folder / "logs"),
            connect_timeout=record.compute_connect_timeout,
        )
    if pools is not None and pools.enabled:
        from batchctl.execution.pool import pool_key

        snap = record.deployment_snapshot
        # keyed by the hashes this job computed of the model and code its workers load (the lineage's), not
        # by the registry's: files changed in place then never meet a pool whose workers loaded the old ones
        computed = lineage or {}
        model_hash = (computed.get("model") or {}).get("sha256") or snap.model_hash
        code_hash = (computed.get("code") or {}).get("sha256")
        key = pool_key(ref, record.model, model_hash, code_hash, snap.spec_hash, record.compute)
        owner = f"{record.endpoint_name}/{record.deployment_name}"
        return pools.backend(key, owner, snap.spec_hash, ref, str(folder / "logs"), str(folder / "parts"))
    from batchctl.execution.local import LocalBackend

    return LocalBackend(ref, str(folder / "logs"), str(folder / "parts"))


def scorer_ref(record: JobRecord, bi_output: Path, environ: Mapping[str, str] | None = None) -> ScorerRef:
    """What the workers score with; `environ` is where `${env:NAME}` references are read (this process's
    environment unless the caller that handed the job over sent its own values)."""
    environ = os.environ if environ is None else environ
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
        environment_variables=secrets.resolve(snapshot.environment_variables, environ),
        masked=tuple(secrets.referenced_values(snapshot.environment_variables, environ)),
        output_format=record.settings.output_format,
        keep_columns=tuple(record.settings.keep_columns),
    )


def run_job(
    ws: Workspace,
    name: str,
    on_progress: ProgressFn | None = None,
    pools: WarmPools | None = None,
    environ: Mapping[str, str] | None = None,
) -> JobRecord:
    """Run a Queued job to a terminal state in this process; returns the final record. With `pools` (the
    server's warm pools), a local job takes warm workers. `environ`: where `${env:NAME}` references are
    read, when not this process's environment (the values a CLI sent with the job it handed over)."""
    folder = records.job_dir(ws, name)
    record = records.read(folder)
    if record is None:
        raise BatchctlError(f"job '{name}' has no record")
    if record.status is not JobState.QUEUED:
        raise BatchctlError(f"job '{name}' is {record.status}, not Queued")
    environ = os.environ if environ is None else environ
    # the resolved `${env:NAME}` values are masked in everything this job writes (records, logs, failed
    # items; the workers mask their own output), as CI systems mask secret variables
    with masking(secrets.referenced_values(record.deployment_snapshot.environment_variables, environ)):
        return _run(ws, folder, name, on_progress, pools, environ)


@dataclass
class _Attempt:
    """What one attempt at a job holds while it goes through its steps (start, plan, score, publish, finish)."""

    ws: Workspace
    folder: Path
    name: str
    record: JobRecord
    logs: JobLogs
    header: plan_io.PlanHeader
    tracked: TrackedJob
    journal: JobJournal
    pools: WarmPools | None
    environ: Mapping[str, str]
    feed: UnitFeed | None = None
    reuse: Reuse | None = None
    listed_whole: bool = False  # submit listed the input whole: the lineage has the listing from the start
    amended: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def parts(self) -> Path:
        return self.folder / "parts"

    @property
    def bi_output(self) -> Path:
        return self.folder / "output"

    def canceled(self) -> bool:
        return (self.folder / CANCEL_MARKER).exists()


def _run(
    ws: Workspace,
    folder: Path,
    name: str,
    on_progress: ProgressFn | None,
    pools: WarmPools | None,
    environ: Mapping[str, str],
) -> JobRecord:
    attempt = _start(ws, folder, name, on_progress, pools, environ)
    status, error = JobState.FAILED, None
    started = time.monotonic()
    try:
        ref = _plan(attempt)
        _score(attempt, ref)
        _publish(attempt)
        status = JobState.COMPLETED
    except (KeyboardInterrupt, Exception) as exc:
        status, error = _outcome(exc, attempt)
    finally:
        _clean_up(attempt, status)
    return _finish(attempt, status, error, time.monotonic() - started, on_progress)


def _start(
    ws: Workspace,
    folder: Path,
    name: str,
    on_progress: ProgressFn | None,
    pools: WarmPools | None,
    environ: Mapping[str, str],
) -> _Attempt:
    """The job reads Running (a job canceled or reconciled while Queued is never run) and its logs are open."""
    logs = JobLogs(folder / "logs")
    logs.setup()
    try:
        record = records.update(folder, JobState.RUNNING, start_time=now(), runner=records.runner_identity())
    except InvalidStateError:  # canceled or reconciled while Queued: never run a terminal job
        current = records.read(folder)
        raise BatchctlError(f"job '{name}' is {current.status if current else 'gone'}, not Queued") from None
    (folder / "parts").mkdir(exist_ok=True)
    (folder / "output").mkdir(exist_ok=True)
    header = plan_io.read_header(folder)
    tracked = TrackedJob(record.dump(), header.root, header.input_type, folder, logs.master, TRACKING_AGENT)
    journal = JobJournal(folder, name, [], record.counts, logs, tracked.progress_fn(on_progress))
    return _Attempt(ws, folder, name, record, logs, header, tracked, journal, pools, environ)


def _plan(attempt: _Attempt) -> ScorerRef:
    """The units to score (the feed over plan.jsonl, stale ones after an input change), the checks that
    come before any worker, the environment (a failed build fails the job here) and what can be reused."""
    record, folder, logs, journal, tracked = (
        attempt.record,
        attempt.folder,
        attempt.logs,
        attempt.journal,
        attempt.tracked,
    )
    settings = record.settings
    journal.begin_attempt()
    changes = _input_changes(folder, record, tracked, logs)
    attempt.amended = plan_io.amendments(folder) if record.attempts > 1 else {}  # the entries as last scored
    # a model that is cheap to predict is not worth a second worker's start, unless workers are warm
    cheap = attempt.pools is None and cheap_to_predict(record.deployment_snapshot.model_path)
    # big CSV/Parquet files become row ranges (the no-code scorer only: scripts keep Azure's file contract)
    feed = attempt.feed = UnitFeed(
        folder,
        attempt.name,
        FeedSettings(settings.mini_batch_size, settings.workers, settings.split, not snapshot_script(record), cheap),
        journal.results.load_all(),
        journal.keep,
        journal.results.discard,
        logs.master,
        stale=changes.touched if changes is not None else set(),
        amended=attempt.amended,
    )
    journal.batches, journal.ranges = feed, feed.ranges
    attempt.listed_whole = feed.listing_done  # at submit: the lineage has the listing from the start, as before
    if attempt.listed_whole:
        _record_listing(feed, tracked, attempt.header, folder, bool(attempt.amended))
    if attempt.canceled():
        raise JobCanceledError("job canceled")
    if record.output_file_location is not None:
        storage.refuse_existing(record.output_file_location.location())
    ref = scorer_ref(record, attempt.bi_output, attempt.environ)
    _note_changed_model(record, tracked.lineage, logs)
    # the deployment's environment, ready before any worker starts (a failed build fails the job here)
    built, env_record = job_env.prepare(
        attempt.ws, record.environment, record.compute_type, logs.master, record.compute_address
    )
    if env_record is not None:
        record = attempt.record = records.update(folder, environment=env_record)
        tracked.environment(env_record)
    if built is not None:
        ref = dataclasses.replace(
            ref, python=built.python, python_path=job_env.worker_path(attempt.ws, built), env_key=built.key
        )
    attempt.reuse = _reuse_for(attempt.ws, folder, record, attempt.header, tracked, logs)
    feed.reuse, feed.on_reused = attempt.reuse, journal.reused
    feed.start()
    return ref


def _score(attempt: _Attempt, ref: ScorerRef) -> None:
    """Every unit to a final outcome through the supervisor; a job with no succeeded item fails."""
    record, journal, feed = attempt.record, attempt.journal, attempt.feed
    assert feed is not None
    settings = record.settings
    if record.compute_type == "ray":
        attempt.logs.master(f"connecting to the Ray cluster at '{record.compute_address or 'local'}'")
    run_settings = RunSettings(
        workers=settings.workers,
        max_retries=settings.retry_settings.max_retries,
        timeout=settings.retry_settings.timeout,
        error_threshold=settings.error_threshold,
    )
    warm = attempt.pools is not None and attempt.pools.enabled and record.compute_type != "ray"
    stream = _StreamedFeed(feed, journal, attempt.logs, attempt.name, record, warm)
    backend = make_backend(record, ref, attempt.folder, attempt.pools, attempt.tracked.lineage)
    supervise(
        backend,
        stream,
        attempt.header.root,
        run_settings,
        journal,
        attempt.canceled,
        ranges=feed.ranges,
        settle=feed.ledger.settle,
        feed=stream,
        after_wait=journal.commit_group,
    )
    journal.counts.listing = False
    if not attempt.listed_whole:  # listed while scoring: the lineage gets the listing now that it has ended
        _record_listing(
            feed, attempt.tracked, attempt.header, attempt.folder, bool(attempt.amended), journal.counts.files
        )
    journal.flush(force=True)
    if journal.counts.items_succeeded == 0:
        reason = (journal.first_error or {}).get("summary")
        raise JobFailedError(
            "There is no succeeded mini batch item returned from run()" + (f"; first error: {reason}" if reason else "")
        )


def _publish(attempt: _Attempt) -> None:
    """The results file to its final name, create-only (or, summary_only, what the script wrote said done)."""
    folder, record, journal, logs, feed = attempt.folder, attempt.record, attempt.journal, attempt.logs, attempt.feed
    assert feed is not None
    staged = _stage(folder, record, journal, logs, attempt.bi_output, feed.ledger, attempt.reuse)
    if staged is None:
        # summary_only: what the script wrote is uploaded; said at once, so that a runner killed from here
        # on leaves a job that reads Completed, not Failed with its output already there
        records.update(folder, published=True, counts=journal.counts)
        return
    results, target, digest, size = staged
    attempt.tracked.published(digest, size)
    # the hash before the publish: a runner killed from the publish on leaves a record from which the
    # liveness check recognises this job's own file and reads Completed (records.reconcile). One
    # record write, as before: it replaces the `published` write that used to follow the publish.
    records.update(
        folder, publishing={"sha256": digest, "bytes": size, "url": target.url}, lineage=attempt.tracked.lineage
    )
    storage.publish(str(results), target)
    logs.master(f"published {target.url} ({size} bytes, sha256 {digest})")
    _write_reuse_index(attempt.reuse, journal, feed.ledger, logs)


def _outcome(exc: BaseException, attempt: _Attempt) -> tuple[JobState, dict[str, Any]]:
    """The one mapping of what ended an attempt early to the job's (status, error), each said in the logs."""
    logs = attempt.logs
    if isinstance(exc, (JobCanceledError, KeyboardInterrupt)):
        logs.master("job canceled; workers stopped; nothing published")
        return JobState.CANCELED, job_error("job canceled")
    if isinstance(exc, InitFailedError):
        error = job_error(exc.message)
        if exc.details:  # the exception init() raised, and where in the scoring script
            info = ErrorInfo.from_traceback(exc.details, attempt.record.deployment_snapshot.code_dir)
            error = job_error(exc.message, info.type, info.frame, details=redact(exc.details)[-4000:])
            logs.user_error(exc.message, 0, exc.details)
        else:
            logs.user_error(exc.message)
        logs.master(f"job failed: {exc.message}")
        return JobState.FAILED, error
    if isinstance(exc, EnvironmentBuildError):  # before any worker started: its hint names the build log
        logs.master(f"job failed: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return JobState.FAILED, {"message": exc.message, "exit_code": exc.exit_code, "hint": exc.hint}
    if isinstance(exc, BatchctlError):
        error = job_error(exc.message, exit_code=exc.exit_code)
        if isinstance(exc, OutputExistsError):  # its hint ("choose another --output-path") is invoke's
            error["hint"] = moved_output_hint(attempt.name)
        elif exc.hint:  # what to do about it (start the cluster, set a variable...) before `job resume`
            error["hint"] = exc.hint
        logs.master(f"job failed: {exc.message}")
        return JobState.FAILED, error
    # an unexpected error must still end the job as Failed, never Running
    error = job_error(redact(f"unexpected {type(exc).__name__}: {exc}"))
    logs.master(f"job failed: {error['message']}")
    return JobState.FAILED, error


def _clean_up(attempt: _Attempt, status: JobState) -> None:
    """Whatever the outcome: the feed and the reuse index closed, uncommitted attempts removed; the
    commits kept for `job resume` unless the job was published."""
    if attempt.feed is not None:
        attempt.feed.close()
    if attempt.reuse is not None:
        attempt.reuse.close()
        if attempt.tracked.lineage is not None:
            attempt.tracked.lineage["reuse"] = attempt.reuse.lineage()
    attempt.journal.close()
    shutil.rmtree(attempt.parts, ignore_errors=True)  # attempts that were never committed
    with contextlib.suppress(OSError):
        shutil.rmtree(attempt.folder / "staging")
    if status is JobState.COMPLETED and attempt.reuse is None:  # published: the commits are no longer needed
        attempt.journal.results.clear()
        shutil.rmtree(attempt.bi_output, ignore_errors=True)
    # otherwise results/ (and the files the script wrote to its output folder) stay for `job resume`


def _finish(
    attempt: _Attempt,
    status: JobState,
    error: dict[str, Any] | None,
    duration: float,
    on_progress: ProgressFn | None,
) -> JobRecord:
    """The job's terminal record, its result line in the logs, and the tracking run's end."""
    journal, logs = attempt.journal, attempt.logs
    if (
        status is JobState.FAILED
        and error is not None
        and journal.first_error
        and "There is no" not in error["message"]
    ):
        error.setdefault("first_item_error", journal.first_error["summary"])
    if status is JobState.COMPLETED and journal.first_error:
        error = journal.first_error
    c = journal.counts
    logs.progress(journal.overview() + f"Status: {status}\n")
    logs.result(
        f"{status}: {c.items_succeeded} items succeeded, {c.items_failed} failed, "
        f"{c.mini_batches} mini-batches in {duration:.2f}s"
        + (f"\nError: {error['message']}" if error and status is not JobState.COMPLETED else "")
    )
    final = records.try_update(
        attempt.folder,
        status,
        end_time=now(),
        counts=c,
        error=error,
        duration_seconds=round(duration, 3),
        lineage=attempt.tracked.lineage,
        **({"published": True} if status is JobState.COMPLETED else {}),
    )
    attempt.tracked.finish(final.dump())  # hands the run's end to the tracking agent; never waits
    logs.close()
    if on_progress is not None:
        on_progress(JobProgress(event=None, counts=c, status=final.status))
    return final


def moved_output_hint(name: str) -> str:
    """What to do when a job's results file exists already (it appeared while the job ran)."""
    return (
        f"move that file away and run `batchctl job resume -n {name}`, or publish to another folder with "
        f"`batchctl job resume -n {name} --output-path <folder>`"
    )


def _input_changes(folder: Path, record: JobRecord, tracked: TrackedJob, logs: JobLogs) -> Changes | None:
    """A resumed job: the files that changed (or vanished) since the last attempt listed them. The units
    holding them are scored again (their commits are not kept), so the results and the lineage's listing
    describe the same input; the new entries are appended to the plan (jobs/listing.py), and the changes
    go into the lineage (`input.changed_since_last_attempt`). Added files are left out (the plan is the
    job's file list)."""
    if record.attempts < 2:
        return None
    changes = job_listing.changes_since_last_attempt(folder)
    if changes is None or not changes.touched:
        return changes
    logs.master(
        f"Warning: the input changed since the last attempt ({changes.shown(('changed', 'removed'))}); the "
        "mini-batches holding these files are scored again"
    )
    if tracked.lineage is not None:
        tracked.lineage["input"]["changed_since_last_attempt"] = {
            "changed": changes.changed,
            "removed": changes.removed,
        }
    job_listing.record(folder, record.attempts, changes)
    return changes


def _note_changed_model(record: JobRecord, lineage: dict[str, Any] | None, logs: JobLogs) -> None:
    registered = record.deployment_snapshot.model_hash
    computed = ((lineage or {}).get("model") or {}).get("sha256")
    if registered and computed and registered != computed:
        logs.master(
            f"Warning: the files of model {record.model} changed since it was registered (sha256 {registered}, "
            f"now {computed}); the job scores with the files as they are now"
        )


class _StreamedFeed:
    """The feed as supervise() sees it, keeping the journal's counts and the job's log in step with the
    listing: `counts.files` is "at least" while `counts.listing` is set."""

    def __init__(
        self, feed: UnitFeed, journal: JobJournal, logs: JobLogs, name: str, record: JobRecord, warm: bool = False
    ) -> None:
        self.feed, self.journal, self.logs, self.name, self.record = feed, journal, logs, name, record
        self.warm = warm  # the workers come from a server's warm pool: a second one costs no start-up
        self.said_listing = False

    @property
    def exhausted(self) -> bool:
        return self.feed.exhausted

    def __getitem__(self, unit: int) -> list[str]:
        return self.feed[unit]

    def key(self, unit: int) -> list[str]:
        return self.feed.key(unit)

    def first_index(self, unit: int) -> int | None:
        return self.feed.first_index(unit)

    def release(self, unit: int) -> None:
        self.feed.release(unit)

    def worker_limit(self) -> int | None:
        """One worker for the small remainder of a reuse job (measured: docs/benchmarks.md, Scale): when
        the files left to score are at most a tenth of the job's and at most SMALL_REMAINDER_FILES, a
        second worker's start-up costs more than the scoring it would share. Warm workers (a server's pool)
        have no start-up to save: every one of them scores."""
        feed = self.feed
        if self.warm or feed.reuse is None or not feed.reuse.reused or not feed.exhausted:
            return None
        left = feed.outstanding_files
        small = left <= SMALL_REMAINDER_FILES and left * 10 <= feed.planned_files
        if small and self.record.settings.workers > 1:
            self.logs.master(f"reuse: {left} files left to score: one worker (a second one's start costs more)")
            return 1
        return None

    def _sync(self) -> None:
        c, feed = self.journal.counts, self.feed
        c.files, c.mini_batches = max(feed.listed, feed.planned_files), feed.planned_units
        c.row_ranges = len(feed.ranges)
        c.listing = not feed.exhausted

    def prime(self) -> list[int]:
        pending = self.feed.prime()
        self._sync()
        s, c = self.record.settings, self.journal.counts
        if self.feed.exhausted:
            self.logs.master(
                f"job {self.name}: {c.files} files -> {c.mini_batches} mini-batches of up to "
                f"{s.mini_batch_size}; {s.workers} workers on {self.record.compute}"
            )
        else:
            self.logs.master(
                f"job {self.name}: at least {c.files} files, listing goes on while scoring; mini-batches of up "
                f"to {s.mini_batch_size}; {s.workers} workers on {self.record.compute}"
            )
        self._say_kept()
        return pending

    def _say_kept(self) -> None:
        if self.feed.exhausted and self.feed.kept:
            self.logs.master(
                f"attempt {self.record.attempts}: {self.feed.kept} mini-batches committed by an earlier attempt "
                f"are kept; {self.feed.planned_units - self.feed.kept} to score"
            )

    def take(self) -> list[int]:
        was = self.feed.exhausted
        pending = self.feed.take()
        if pending or not was:
            self._sync()
        if not was and self.feed.exhausted:
            c = self.journal.counts
            self.logs.master(f"listing done: {c.files} files -> {c.mini_batches} mini-batches")
            self._say_kept()
        return pending


def _record_listing(
    feed: UnitFeed, tracked: TrackedJob, header: Any, folder: Path, amended: bool, files: int | None = None
) -> None:
    """The listing's hash and size into the lineage: the hash of the listing as this attempt found it when
    a resume amended the plan; a plan.json of an earlier version is hashed now."""
    digest, basis = (plan_io.listing_sha256(folder) if amended else feed.listing_hash()), header.basis
    if digest is None and header.legacy:
        from batchctl.tracking import lineage as lineage_mod

        names = list(plan_io.files(folder))
        basis, entries = lineage_mod.listing_entries(header.root, names)
        digest, files = lineage_mod.listing_hash(entries), len(names)
    tracked.listed(feed.listed if files is None else files, digest, basis)


def snapshot_script(record: JobRecord) -> bool:
    return bool(record.deployment_snapshot.code_dir)


def _reuse_for(
    ws: Workspace, folder: Path, record: JobRecord, header: Any, tracked: TrackedJob, logs: JobLogs
) -> Reuse | None:
    """The job's reuse of earlier results, when its settings ask for it and its outputs allow it."""
    if record.settings.reuse == "never":
        return None
    reason = reuse_unavailable(record)
    if reason is not None:
        logs.master(f"reuse: every file is scored: {reason}")
        return None
    model_sha = (tracked.lineage or {}).get("model", {}).get("sha256")
    reuse = Reuse(ws.jobs_dir, folder, record, header.root, model_sha)
    found = f"job {reuse.source}'s results are reused for unchanged files" if reuse.source else "no earlier job matches"
    logs.master(f"reuse ({record.settings.reuse}): {found}")
    return reuse


def _write_reuse_index(reuse: Reuse | None, journal: JobJournal, ledger: FileLedger, logs: JobLogs) -> None:
    """After the publish: which rows of this job's results later jobs may reuse (jobs/reuse.py)."""
    if reuse is None:
        return
    try:
        entries = reuse.write_index(journal.ok_batches, journal.results.read, ledger.ranges, ledger.failed_units())
        logs.master(f"reuse: {entries} files' results kept for later jobs ({reuse.reused} reused here)")
    except Exception as exc:  # the index is an optimisation: the job's results are published
        logs.master(f"reuse: the index could not be written ({type(exc).__name__}: {exc})")


def _stage(
    folder: Path,
    record: JobRecord,
    journal: JobJournal,
    logs: JobLogs,
    bi_output: Path,
    ledger: FileLedger,
    reuse: Reuse | None = None,
) -> tuple[Path, storage.Location, str, int] | None:
    """Publish the files the script wrote and stage the results file; returns (staged file, target,
    sha256, bytes), or None for summary_only."""
    output_folder = record.output_location.location()
    extra = [p for p in bi_output.rglob("*") if p.is_file()]
    if extra:
        storage.prepare_output_folder(output_folder)
        names = storage.upload_tree(str(bi_output), output_folder)
        logs.master(f"published {len(names)} files written by the scoring script to {output_folder.url}")
    if record.output_file_location is None or record.settings.output_file_name is None:
        return None
    digest = hashlib.sha256()
    staging = folder / "staging"
    staging.mkdir(exist_ok=True)
    results = staging / record.settings.output_file_name
    if reuse is not None:
        parts = reuse.ordered_parts(journal.ok_batches, ledger.failed_units(), RangeShift(journal, ledger))
    else:
        parts = ordered_parts(journal, ledger)
    write_results(str(results), parts, record.settings.output_format)
    with open(results, "rb") as staged:
        for chunk in iter(lambda: staged.read(1 << 20), b""):
            digest.update(chunk)
    target = record.output_file_location.location()
    storage.prepare_output_folder(output_folder)
    return results, target, digest.hexdigest(), results.stat().st_size
