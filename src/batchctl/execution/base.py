"""The executor interface and the one supervision loop every backend shares.

A backend (local process pool, Ray) only knows how to start a worker, hand it a task, wait for
messages and kill it. Retries, timeouts, worker replacement, error_threshold and cancellation live
here, once, so both backends behave the same.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from batchctl.errors import JobCanceledError, JobFailedError
from batchctl.execution.events import BatchEvent, BatchResult, BatchTask, EventKind
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
        """Start a worker that runs init() once; it reports ("ready",) or ("init_failed", text)."""

    def wait(self, handles: list[WorkerHandle], timeout: float) -> list[tuple[WorkerHandle, tuple[Any, ...]]]:
        """Messages: ("ready", pid), ("init_failed", text), ("result", BatchResult), ("died", description)."""

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
# once every mini-batch has ended: how long a worker still starting may take to say how its init() went
STARTING_GRACE_SECONDS = 2.0


@dataclass
class RunSettings:
    workers: int
    max_retries: int
    timeout: float
    error_threshold: int
    init_timeout: float | None = None

    def init_deadline(self) -> float:
        # Azure: workers stuck in init() longer than 3 x timeout + 30 s fail the job
        return self.init_timeout if self.init_timeout is not None else 3 * self.timeout + 30


class InitFailedError(JobFailedError):
    details: str = ""


class ThresholdExceededError(JobFailedError):
    pass


@dataclass
class _Slot:
    handle: WorkerHandle
    state: str = "starting"  # starting | idle | busy | dead (not replaced: no work left)
    batch: int | None = None
    attempt: int = 0
    deadline: float = 0.0
    started: float = field(default_factory=time.monotonic)
    init_reported: float = 0.0  # when an INIT_RUNNING event was last emitted for this worker
    replacement: bool = False  # started in place of a worker that died or timed out


Emit = Callable[[BatchEvent], None]


@dataclass
class Totals:
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    restarts: int = 0


def supervise(
    backend: Backend,
    batches: Any,
    root: Location,
    settings: RunSettings,
    emit: Emit,
    should_cancel: Callable[[], bool],
    pending: list[int] | None = None,
    ranges: dict[int, FileRange] | None = None,
    settle: Callable[[BatchResult], BatchResult] | None = None,
    feed: UnitSource | None = None,
) -> Totals:
    """Run every mini-batch (or those in `pending`: a resumed job) to a final outcome; emits FINAL once
    per mini-batch, in completion order.

    `ranges`: the units that are a row range of one file (execution/splitting.py); `settle` turns a
    final result into item counts (a split file is one item), before the totals and the threshold.

    `feed`: units that arrive while the job runs (a streamed plan, jobs/feed.py); `batches` and `ranges`
    are then the feed's, and a unit's files are released once its outcome is final."""
    ranges = ranges if ranges is not None else {}
    settle = settle or (lambda result: result)
    if feed is not None:
        todo = feed.prime()
    else:
        todo = list(range(len(batches))) if pending is None else list(pending)
    queue: deque[tuple[int, int]] = deque((i, 1) for i in todo)
    remaining = len(todo)
    totals = Totals()
    slots: dict[int, _Slot] = {}
    more_coming = feed is not None and not feed.exhausted
    n_workers = settings.workers if more_coming else max(1, min(settings.workers, len(todo)))
    if feed is not None and not more_coming:  # a small remainder (jobs/runner.py): fewer workers to start
        n_workers = max(1, min(n_workers, feed.worker_limit() or n_workers))

    def streaming() -> bool:
        return feed is not None and not feed.exhausted

    def final(event: BatchEvent, batch: int) -> None:
        emit(event)
        if feed is not None:
            feed.release(batch)

    def start(slot_id: int, replacement: bool = False) -> None:
        slots[slot_id] = _Slot(backend.spawn(slot_id), replacement=replacement)
        emit(BatchEvent(EventKind.WORKER_STARTED, slot=slot_id))

    def attempt_failed(slot_id: int, batch: int, attempt: int, error: str, info: ErrorInfo | None = None) -> None:
        nonlocal remaining
        files = batches[batch]
        if attempt <= settings.max_retries:
            totals.retries += 1
            queue.appendleft((batch, attempt + 1))
            emit(BatchEvent(EventKind.RETRY, slot=slot_id, batch=batch, attempt=attempt, error=error))
            return
        remaining -= 1
        result = BatchResult(
            batch=batch,
            attempt=attempt,
            ok=False,
            failed=len(files),
            error=error,
            error_info=info or ErrorInfo(None, _last_line(error)),
            item_errors=[ItemError(f, info or ErrorInfo(None, _last_line(error))) for f in files],
        )
        result = settle(result)
        totals.failed += result.failed
        final(BatchEvent(EventKind.FINAL, slot=slot_id, batch=batch, attempt=attempt, result=result), batch)
        check_threshold()

    def check_threshold() -> None:
        if settings.error_threshold >= 0 and totals.failed > settings.error_threshold:
            raise ThresholdExceededError(
                f"error_threshold exceeded: {totals.failed} failed items > error_threshold {settings.error_threshold}"
            )

    # a worker's message can come from a slot already replaced, and a dead worker may have held no batch
    slot: _Slot | None
    batch: int | None
    finished = False
    try:
        if not todo and not more_coming:
            finished = True
            return totals
        for slot_id in range(n_workers):
            start(slot_id)
        while remaining > 0 or streaming():
            if should_cancel():
                raise JobCanceledError("job canceled")
            if feed is not None:
                arrived = feed.take()
                queue.extend((i, 1) for i in arrived)
                remaining += len(arrived)
            for slot_id, slot in slots.items():
                if slot.state == "idle" and queue:
                    batch, attempt = queue.popleft()
                    slot.state, slot.batch, slot.attempt = "busy", batch, attempt
                    slot.deadline = time.monotonic() + settings.timeout
                    slot.handle.submit(
                        BatchTask(batch=batch, attempt=attempt, files=batches[batch], root=root, span=ranges.get(batch))
                    )
                    emit(BatchEvent(EventKind.DISPATCHED, slot=slot_id, batch=batch, attempt=attempt))
            now = time.monotonic()
            deadlines = [s.deadline for s in slots.values() if s.state == "busy"]
            deadlines += [s.started + settings.init_deadline() for s in slots.values() if s.state == "starting"]
            wait_for = max(0.0, min([0.05 if streaming() and not queue else 0.2, *[d - now for d in deadlines]]))
            for handle, message in backend.wait([s.handle for s in slots.values()], wait_for):
                slot_id = handle.slot
                slot = slots.get(slot_id)
                if slot is None or slot.handle is not handle:
                    continue  # a message from a worker already replaced
                kind = message[0]
                if kind == "ready":
                    slot.state = "idle"
                    pid = message[1] if len(message) > 1 else None
                    emit(BatchEvent(EventKind.WORKER_READY, slot=slot_id, pid=pid))
                elif kind == "init_failed":
                    which = f"worker {slot_id}" + (" (a replacement)" if slot.replacement else "")
                    error = InitFailedError(f"init() failed in {which}: {_last_line(message[1])}")
                    error.details = str(message[1])
                    raise error
                elif kind == "died":
                    if slot.state == "starting":
                        raise InitFailedError(f"worker {slot_id} exited during init(): {message[1]}")
                    batch, attempt, was_busy = slot.batch, slot.attempt, slot.state == "busy"
                    totals.restarts += 1
                    emit(BatchEvent(EventKind.WORKER_DIED, slot=slot_id, batch=batch, reason=message[1]))
                    slot.state = "dead"
                    if was_busy and batch is not None:
                        attempt_failed(slot_id, batch, attempt, f"worker exited unexpectedly: {message[1]}")
                    if remaining > 0 or streaming():  # no replacement (and no init()) once every mini-batch has ended
                        start(slot_id, replacement=True)
                elif kind == "result":
                    result: BatchResult = message[1]
                    if slot.state != "busy" or result.batch != slot.batch:
                        continue
                    slot.state, slot.batch = "idle", None
                    batch = result.batch
                    event = BatchEvent(
                        EventKind.FINAL if result.ok else EventKind.ATTEMPT_FAILED,
                        slot=slot_id,
                        batch=batch,
                        attempt=result.attempt,
                        result=result,
                    )
                    if result.ok:
                        remaining -= 1
                        result = settle(result)
                        event = dataclasses.replace(event, result=result)
                        totals.succeeded += result.succeeded
                        totals.failed += result.failed
                        final(event, batch)
                        check_threshold()
                    else:
                        emit(event)
                        attempt_failed(
                            slot_id, batch, result.attempt, result.error or "run() failed", result.error_info
                        )
            now = time.monotonic()
            for slot_id, slot in list(slots.items()):
                if slot.state == "busy" and now > slot.deadline:
                    batch, attempt = slot.batch, slot.attempt
                    slot.handle.kill()
                    totals.restarts += 1
                    emit(BatchEvent(EventKind.TIMEOUT, slot=slot_id, batch=batch, attempt=attempt))
                    slot.state = "dead"
                    assert batch is not None
                    attempt_failed(
                        slot_id,
                        batch,
                        attempt,
                        f"No progress update in {settings.timeout:g} seconds: the attempt "
                        "timed out and its worker was killed",
                    )
                    if remaining > 0 or streaming():
                        start(slot_id, replacement=True)
                elif slot.state == "starting" and now > slot.started + settings.init_deadline():
                    raise InitFailedError(
                        f"worker {slot_id} did not finish init() within its deadline of "
                        f"{settings.init_deadline():g} seconds (3 x timeout + 30 s); it was stopped"
                    )
                elif slot.state == "starting" and now - max(slot.started, slot.init_reported) >= INIT_REPORT_SECONDS:
                    slot.init_reported = now
                    emit(
                        BatchEvent(
                            EventKind.INIT_RUNNING,
                            slot=slot_id,
                            reason=f"init() running for {now - slot.started:.0f} s "
                            f"(deadline {settings.init_deadline():g} s)",
                        )
                    )
        _report_starting(backend, slots, emit)
        finished = True
        return totals
    finally:
        if not finished:
            # canceled, interrupted or failed: stop every worker now rather than waiting for busy ones
            for slot in slots.values():
                slot.handle.kill()
        backend.shutdown()


def _report_starting(backend: Backend, slots: dict[int, _Slot], emit: Emit) -> None:
    """Every mini-batch has ended while some workers (a replacement, typically) are still in init(): they are
    not needed, but how their init() went belongs in the job's log (a failed one would go unseen)."""
    starting = {id(s.handle): (slot_id, s) for slot_id, s in slots.items() if s.state == "starting"}
    deadline = time.monotonic() + STARTING_GRACE_SECONDS
    while starting and time.monotonic() < deadline:
        for handle, message in backend.wait([s.handle for _, s in starting.values()], 0.1):
            entry = starting.pop(id(handle), None)
            if entry is None or message[0] == "ready":
                continue
            slot_id, slot = entry
            who = "(a replacement) " if slot.replacement else ""
            if message[0] == "init_failed":
                reason = f"{who}failed init() after every mini-batch had ended: {_last_line(message[1])}"
            else:
                reason = f"{who}exited during init() after every mini-batch had ended: {message[1]}"
            emit(BatchEvent(EventKind.WORKER_STOPPED, slot=slot_id, reason=reason))
    for slot_id, slot in starting.values():
        who = "(a replacement) " if slot.replacement else ""
        reason = f"{who}was still in init() when every mini-batch had ended; stopped"
        emit(BatchEvent(EventKind.WORKER_STOPPED, slot=slot_id, reason=reason))


def _last_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"
