"""The executor interface and the one supervision loop every backend shares.

A backend (local process pool, Ray) only knows how to start a worker, hand it a task, wait for
messages (execution/events.WorkerMessage) and kill it. Retries, timeouts, worker replacement,
error_threshold and cancellation live here, once, in `Supervisor`, so every backend behaves the same.
A new supervision rule goes in the Supervisor method of its message or deadline, and is pinned by
a millisecond test in tests/unit/execution/test_supervisor.py (a scripted FakeBackend, a fake clock).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from batchctl.errors import JobCanceledError, JobFailedError
from batchctl.execution.events import (
    BatchEvent,
    BatchResult,
    BatchTask,
    EventKind,
    InitFailed,
    WorkerDied,
    WorkerMessage,
    WorkerReady,
    WorkerResult,
)
from batchctl.scoring.failures import ErrorInfo, ItemError
from batchctl.scoring.ranges import FileRange
from batchctl.storage import Location


class WorkerHandle(Protocol):
    slot: int

    def submit(self, task: BatchTask) -> None: ...

    def kill(self) -> None: ...


class Backend(Protocol):
    name: str

    def spawn(self, slot: int) -> WorkerHandle:
        """Start a worker that runs init() once; it reports WorkerReady or InitFailed."""

    def wait(self, handles: list[WorkerHandle], timeout: float) -> list[tuple[WorkerHandle, WorkerMessage]]:
        """What the workers said within `timeout` seconds: WorkerReady, InitFailed, WorkerResult, WorkerDied."""

    def shutdown(self) -> None: ...


class UnitSource(Protocol):
    """Units of work that arrive while the job runs (jobs/feed.py)."""

    @property
    def exhausted(self) -> bool: ...

    def __getitem__(self, unit: int) -> list[str]: ...

    def prime(self) -> list[int]: ...

    def take(self) -> list[int]: ...

    def release(self, unit: int) -> None: ...

    def worker_limit(self) -> int | None:
        """At most this many workers for the units known once the listing is complete (None: no limit)."""
        ...


INIT_REPORT_SECONDS = 10.0  # how often a still-running init() is reported
INIT_GRACE_SECONDS = 30.0  # Azure: a worker's init() may take 3 x timeout + this
# once every mini-batch has ended: how long a worker still starting may take to say how its init() went
STARTING_GRACE_SECONDS = 2.0
WAIT_SECONDS = 0.2  # the longest a turn of the loop waits for messages (so cancel is seen quickly)
STREAM_WAIT_SECONDS = 0.05  # the same while units are still arriving and none is queued


@dataclass
class RunSettings:
    workers: int
    max_retries: int
    timeout: float
    error_threshold: int
    init_timeout: float | None = None

    def init_deadline(self) -> float:
        # Azure: workers stuck in init() longer than 3 x timeout + 30 s fail the job
        return self.init_timeout if self.init_timeout is not None else 3 * self.timeout + INIT_GRACE_SECONDS


class InitFailedError(JobFailedError):
    details: str = ""


class ThresholdExceededError(JobFailedError):
    pass


SlotState = Literal["starting", "idle", "busy", "dead"]  # dead: not replaced (no work left)


@dataclass
class _Slot:
    handle: WorkerHandle
    started: float  # the clock's time at spawn
    state: SlotState = "starting"
    batch: int | None = None
    attempt: int = 0
    deadline: float = 0.0
    init_reported: float = 0.0  # when an INIT_RUNNING event was last emitted for this worker
    replacement: bool = False  # started in place of a worker that died or timed out


Emit = Callable[[BatchEvent], None]
Clock = Callable[[], float]


@dataclass
class Totals:
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    restarts: int = 0


class Supervisor:
    """Runs every mini-batch (or those in `pending`: a resumed job) to a final outcome; emits FINAL once
    per mini-batch, in completion order.

    One turn of the loop (`step()`): cancel check, units that arrived (`feed`), `dispatch_idle()`, the
    backend's messages (one method each: `on_ready`, `on_init_failed`, `on_died`, `on_result`), then
    `check_deadlines(now)`. Time comes from `clock` only, so tests drive it (tests/support/fake_backend.py).

    `ranges`: the units that are a row range of one file (execution/splitting.py); `settle` turns a
    final result into item counts (a split file is one item), before the totals and the threshold.
    `feed`: units that arrive while the job runs (a streamed plan, jobs/feed.py); `batches` and `ranges`
    are then the feed's, and a unit's files are released once its outcome is final.
    `after_wait`: called once the messages of one `backend.wait()` are delivered (and the next attempts
    dispatched), so the results that arrived together are committed together (jobs/journal.py)."""

    def __init__(
        self,
        backend: Backend,
        batches: Sequence[list[str]] | UnitSource,
        root: Location,
        settings: RunSettings,
        emit: Emit,
        should_cancel: Callable[[], bool],
        pending: list[int] | None = None,
        ranges: dict[int, FileRange] | None = None,
        settle: Callable[[BatchResult], BatchResult] | None = None,
        feed: UnitSource | None = None,
        clock: Clock = time.monotonic,
        after_wait: Callable[[], None] | None = None,
    ) -> None:
        self.backend, self.batches, self.root, self.settings = backend, batches, root, settings
        self.emit, self.should_cancel, self.feed, self.clock = emit, should_cancel, feed, clock
        self.after_wait = after_wait
        self.ranges = ranges if ranges is not None else {}
        self.settle = settle or (lambda result: result)
        todo = _first_units(batches, pending, feed)
        self.queue: deque[tuple[int, int]] = deque((i, 1) for i in todo)  # (unit, attempt)
        self.remaining = len(todo)  # units without a final outcome yet
        self.totals = Totals()
        self.slots: dict[int, _Slot] = {}
        self.n_workers = settings.workers if self.streaming() else max(1, min(settings.workers, len(todo)))
        if self.feed is not None and not self.streaming():  # a small remainder (jobs/runner.py): fewer workers
            self.n_workers = max(1, min(self.n_workers, self.feed.worker_limit() or self.n_workers))

    # -- the loop

    def run(self) -> Totals:
        finished = False
        try:
            if self.remaining == 0 and not self.streaming():
                finished = True
                return self.totals
            for slot_id in range(self.n_workers):
                self.start(slot_id)
            while self.remaining > 0 or self.streaming():
                self.step()
            self.report_starting()
            finished = True
            return self.totals
        finally:
            if not finished:
                # canceled, interrupted or failed: stop every worker now rather than waiting for busy ones
                for slot in self.slots.values():
                    slot.handle.kill()
            self.backend.shutdown()

    def step(self) -> None:
        if self.should_cancel():
            raise JobCanceledError("job canceled")
        if self.feed is not None:
            arrived = self.feed.take()
            self.queue.extend((i, 1) for i in arrived)
            self.remaining += len(arrived)
        self.dispatch_idle()
        messages = self.backend.wait([s.handle for s in self.slots.values()], self.wait_seconds())
        for handle, message in messages:
            self.deliver(handle, message)
        if messages:
            self.dispatch_idle()  # the workers that reported get their next attempt before the group is committed
            if self.after_wait is not None:
                self.after_wait()
        self.check_deadlines(self.clock())

    def streaming(self) -> bool:
        """Units may still arrive."""
        return self.feed is not None and not self.feed.exhausted

    def wait_seconds(self) -> float:
        """Until the next message, or the nearest deadline (an attempt's timeout, a worker's init())."""
        now = self.clock()
        deadlines = [s.deadline for s in self.slots.values() if s.state == "busy"]
        deadlines += [s.started + self.settings.init_deadline() for s in self.slots.values() if s.state == "starting"]
        longest = STREAM_WAIT_SECONDS if self.streaming() and not self.queue else WAIT_SECONDS
        return max(0.0, min([longest, *[d - now for d in deadlines]]))

    def start(self, slot_id: int, replacement: bool = False) -> None:
        self.slots[slot_id] = _Slot(self.backend.spawn(slot_id), started=self.clock(), replacement=replacement)
        self.emit(BatchEvent(EventKind.WORKER_STARTED, slot=slot_id))

    def replace(self, slot_id: int) -> None:
        """A worker that died or was killed gets a successor, unless no work is left for it."""
        if self.remaining > 0 or self.streaming():
            self.start(slot_id, replacement=True)

    def dispatch_idle(self) -> None:
        """Hand the next queued attempt to each idle worker."""
        for slot_id, slot in self.slots.items():
            if slot.state == "idle" and self.queue:
                batch, attempt = self.queue.popleft()
                slot.state, slot.batch, slot.attempt = "busy", batch, attempt
                slot.deadline = self.clock() + self.settings.timeout
                files = self.batches[batch]
                slot.handle.submit(
                    BatchTask(batch=batch, attempt=attempt, files=files, root=self.root, span=self.ranges.get(batch))
                )
                self.emit(BatchEvent(EventKind.DISPATCHED, slot=slot_id, batch=batch, attempt=attempt))

    # -- the backend's messages

    def deliver(self, handle: WorkerHandle, message: WorkerMessage) -> None:
        slot = self.slots.get(handle.slot)
        if slot is None or slot.handle is not handle:
            return  # a message from a worker already replaced
        if isinstance(message, WorkerReady):
            self.on_ready(handle.slot, slot, message)
        elif isinstance(message, InitFailed):
            self.on_init_failed(handle.slot, slot, message)
        elif isinstance(message, WorkerDied):
            self.on_died(handle.slot, slot, message)
        else:
            self.on_result(handle.slot, slot, message)

    def on_ready(self, slot_id: int, slot: _Slot, message: WorkerReady) -> None:
        slot.state = "idle"
        self.emit(BatchEvent(EventKind.WORKER_READY, slot=slot_id, pid=message.pid))

    def on_init_failed(self, slot_id: int, slot: _Slot, message: InitFailed) -> None:
        which = f"worker {slot_id}" + (" (a replacement)" if slot.replacement else "")
        error = InitFailedError(f"init() failed in {which}: {_last_line(message.details)}")
        error.details = str(message.details)
        raise error

    def on_died(self, slot_id: int, slot: _Slot, message: WorkerDied) -> None:
        if slot.state == "starting":
            raise InitFailedError(f"worker {slot_id} exited during init(): {message.reason}")
        batch, attempt, was_busy = slot.batch, slot.attempt, slot.state == "busy"
        self.totals.restarts += 1
        self.emit(BatchEvent(EventKind.WORKER_DIED, slot=slot_id, batch=batch, reason=message.reason))
        slot.state = "dead"
        if was_busy and batch is not None:
            self.attempt_failed(slot_id, batch, attempt, f"worker exited unexpectedly: {message.reason}")
        self.replace(slot_id)  # no replacement (and no init()) once every mini-batch has ended

    def on_result(self, slot_id: int, slot: _Slot, message: WorkerResult) -> None:
        result = message.result
        if slot.state != "busy" or result.batch != slot.batch:
            return  # not the attempt this worker holds now
        slot.state, slot.batch = "idle", None
        if not result.ok:
            self.emit(
                BatchEvent(
                    EventKind.ATTEMPT_FAILED, slot=slot_id, batch=result.batch, attempt=result.attempt, result=result
                )
            )
            error = result.error or "run() failed"
            self.attempt_failed(slot_id, result.batch, result.attempt, error, result.error_info)
            return
        self.remaining -= 1
        settled = self.settle(result)
        self.totals.succeeded += settled.succeeded
        self.totals.failed += settled.failed
        event = BatchEvent(EventKind.FINAL, slot=slot_id, batch=result.batch, attempt=result.attempt, result=settled)
        self.final(event, result.batch)
        self.check_threshold()

    # -- outcomes

    def attempt_failed(self, slot_id: int, batch: int, attempt: int, error: str, info: ErrorInfo | None = None) -> None:
        """Retry the mini-batch while retries are left; else its outcome is final: every file failed."""
        if attempt <= self.settings.max_retries:
            self.totals.retries += 1
            self.queue.appendleft((batch, attempt + 1))
            self.emit(BatchEvent(EventKind.RETRY, slot=slot_id, batch=batch, attempt=attempt, error=error))
            return
        self.remaining -= 1
        files = self.batches[batch]
        info = info or ErrorInfo(None, _last_line(error))
        result = BatchResult(
            batch=batch,
            attempt=attempt,
            ok=False,
            failed=len(files),
            error=error,
            error_info=info,
            item_errors=[ItemError(f, info) for f in files],
        )
        result = self.settle(result)
        self.totals.failed += result.failed
        self.final(BatchEvent(EventKind.FINAL, slot=slot_id, batch=batch, attempt=attempt, result=result), batch)
        self.check_threshold()

    def final(self, event: BatchEvent, batch: int) -> None:
        self.emit(event)
        if self.feed is not None:
            self.feed.release(batch)

    def check_threshold(self) -> None:
        """As each outcome arrives: the job fails as soon as too many items failed, not at the end."""
        threshold = self.settings.error_threshold
        if threshold >= 0 and self.totals.failed > threshold:
            raise ThresholdExceededError(
                f"error_threshold exceeded: {self.totals.failed} failed items > error_threshold {threshold}"
            )

    # -- deadlines

    def check_deadlines(self, now: float) -> None:
        """Kill and retry an attempt past its timeout; fail the job on a worker past its init() deadline;
        report an init() still running every INIT_REPORT_SECONDS."""
        for slot_id, slot in list(self.slots.items()):
            if slot.state == "busy" and now > slot.deadline:
                self.time_out(slot_id, slot)
            elif slot.state == "starting" and now > slot.started + self.settings.init_deadline():
                raise InitFailedError(
                    f"worker {slot_id} did not finish init() within its deadline of "
                    f"{self.settings.init_deadline():g} seconds (3 x timeout + {INIT_GRACE_SECONDS:g} s); "
                    "it was stopped"
                )
            elif slot.state == "starting" and now - max(slot.started, slot.init_reported) >= INIT_REPORT_SECONDS:
                slot.init_reported = now
                reason = f"init() running for {now - slot.started:.0f} s (deadline {self.settings.init_deadline():g} s)"
                self.emit(BatchEvent(EventKind.INIT_RUNNING, slot=slot_id, reason=reason))

    def time_out(self, slot_id: int, slot: _Slot) -> None:
        batch, attempt = slot.batch, slot.attempt
        slot.handle.kill()
        self.totals.restarts += 1
        self.emit(BatchEvent(EventKind.TIMEOUT, slot=slot_id, batch=batch, attempt=attempt))
        slot.state = "dead"
        assert batch is not None
        error = (
            f"No progress update in {self.settings.timeout:g} seconds: the attempt timed out and its worker was killed"
        )
        self.attempt_failed(slot_id, batch, attempt, error)
        self.replace(slot_id)

    def report_starting(self) -> None:
        """Every mini-batch has ended while some workers (a replacement, typically) are still in init(): they
        are not needed, but how their init() went belongs in the job's log (a failed one would go unseen)."""
        starting = {id(s.handle): (slot_id, s) for slot_id, s in self.slots.items() if s.state == "starting"}
        deadline = self.clock() + STARTING_GRACE_SECONDS
        while starting and self.clock() < deadline:
            for handle, message in self.backend.wait([s.handle for _, s in starting.values()], 0.1):
                entry = starting.pop(id(handle), None)
                if entry is None or isinstance(message, WorkerReady):
                    continue
                slot_id, slot = entry
                who = "(a replacement) " if slot.replacement else ""
                if isinstance(message, InitFailed):
                    reason = f"{who}failed init() after every mini-batch had ended: {_last_line(message.details)}"
                else:
                    said = message.reason if isinstance(message, WorkerDied) else message
                    reason = f"{who}exited during init() after every mini-batch had ended: {said}"
                self.emit(BatchEvent(EventKind.WORKER_STOPPED, slot=slot_id, reason=reason))
        for slot_id, slot in starting.values():
            who = "(a replacement) " if slot.replacement else ""
            reason = f"{who}was still in init() when every mini-batch had ended; stopped"
            self.emit(BatchEvent(EventKind.WORKER_STOPPED, slot=slot_id, reason=reason))


def supervise(
    backend: Backend,
    batches: Sequence[list[str]] | UnitSource,
    root: Location,
    settings: RunSettings,
    emit: Emit,
    should_cancel: Callable[[], bool],
    pending: list[int] | None = None,
    ranges: dict[int, FileRange] | None = None,
    settle: Callable[[BatchResult], BatchResult] | None = None,
    feed: UnitSource | None = None,
    clock: Clock = time.monotonic,
    after_wait: Callable[[], None] | None = None,
) -> Totals:
    """Run every mini-batch to a final outcome: a Supervisor, built and run (see its docstring)."""
    supervisor = Supervisor(
        backend,
        batches,
        root,
        settings,
        emit,
        should_cancel,
        pending,
        ranges,
        settle,
        feed=feed,
        clock=clock,
        after_wait=after_wait,
    )
    return supervisor.run()


def _first_units(
    batches: Sequence[list[str]] | UnitSource, pending: list[int] | None, feed: UnitSource | None
) -> list[int]:
    """The units known at start: the feed's first ones, those of a resumed job, or every mini-batch."""
    if feed is not None:
        return feed.prime()
    if pending is not None:
        return list(pending)
    assert isinstance(batches, Sequence), "without a feed, batches is the list of every mini-batch"
    return list(range(len(batches)))


def _last_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"
