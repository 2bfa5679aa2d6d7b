"""What execution hands a worker (BatchTask), what a worker reports (one BatchResult per attempt at a
mini-batch), the messages a backend passes to the Supervisor (WorkerReady, InitFailed, WorkerDied,
WorkerResult) and the BatchEvents the Supervisor emits to the job's runner. Plain, picklable dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from batchctl.scoring.failures import ErrorInfo, ItemError
from batchctl.scoring.ranges import FileRange
from batchctl.storage import Location


class EventKind(StrEnum):
    WORKER_STARTED = "worker_started"
    WORKER_READY = "worker_ready"
    INIT_RUNNING = "init_running"  # init() still running (reported every few seconds, with its deadline)
    DISPATCHED = "dispatched"
    WORKER_DIED = "worker_died"
    TIMEOUT = "timeout"
    ATTEMPT_FAILED = "attempt_failed"  # run() failed; a retry may follow
    RETRY = "retry"
    FINAL = "final"  # the mini-batch's outcome: once per mini-batch
    WORKER_STOPPED = "worker_stopped"  # a worker still starting when every mini-batch had ended: what became of it


@dataclass(frozen=True)
class BatchTask:
    """One attempt at one mini-batch, as a worker receives it: file names relative to `root`."""

    batch: int
    attempt: int
    files: list[str]
    root: Location
    span: FileRange | None = None  # a row range of files[0] (a big file cut across workers), read by range
    # Where this attempt's job wants the worker's output: set per task (not at spawn) because a warm
    # worker of the server's pool serves one job after another (execution/pool.py)
    parts_dir: str | None = None  # a local worker writes the rows here
    output_dir: str | None = None  # the job's AZUREML_BI_OUTPUT_PATH
    stdout_path: str | None = None  # the job's log of the worker's prints


@dataclass
class BatchResult:
    """One attempt at one mini-batch, as the worker reports it (or as the supervisor records a failure)."""

    batch: int
    attempt: int
    ok: bool  # False: the attempt failed as a whole and may be retried
    succeeded: int = 0
    failed: int = 0
    rows: int = 0
    error: str | None = None
    error_info: ErrorInfo | None = None
    item_errors: list[ItemError] = field(default_factory=list)
    duration: float = 0.0
    pid: int | None = None
    part: str | None = None  # the file a local worker wrote the rows to
    data: bytes = b""  # the rows, when they travel back with the result (Ray)
    file_rows: list[tuple[str, int]] | None = None  # (file, rows) of each succeeded file (scoring/base.py)


@dataclass(frozen=True)
class BatchEvent:
    kind: EventKind
    slot: int | None = None
    batch: int | None = None
    attempt: int | None = None
    pid: int | None = None  # worker_ready
    reason: str | None = None  # worker_died: how the worker ended
    error: str | None = None  # retry: why the attempt failed
    result: BatchResult | None = None  # final and attempt_failed


# What a backend's wait() reports about one worker (execution/base.Supervisor has one method per kind).
# A local worker sends WorkerReady, InitFailed and WorkerResult through its pipe (execution/worker.py);
# WorkerDied is the backend's own finding (a process sentinel, a lost Ray actor).


@dataclass(frozen=True)
class WorkerReady:
    """init() returned: the worker takes tasks."""

    pid: int | None = None


@dataclass(frozen=True)
class InitFailed:
    """init() raised (or the worker could not be set up): the job fails."""

    details: str  # the traceback or the error's text; its last line is the summary


@dataclass(frozen=True)
class WorkerDied:
    """The worker's process ended without being asked to."""

    reason: str  # how it ended: "exit code 3", "killed by SIGKILL (out of memory?)"


@dataclass(frozen=True)
class WorkerResult:
    """One attempt at one mini-batch ended (ok or not)."""

    result: BatchResult


WorkerMessage = WorkerReady | InitFailed | WorkerDied | WorkerResult
