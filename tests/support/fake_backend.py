"""A scripted executor backend and a fake clock, to drive execution/base.Supervisor in milliseconds.

The backend starts no process: each worker's init() and each task's outcome come from two functions
the test gives, `init(handle)` and `run(handle, task)`, each returning a `Reply` (what the worker says,
and after how many seconds of fake time). `wait(handles, timeout)` moves the fake clock to the first
message due (or by `timeout` when none is), as a real backend would block. A killed worker says nothing
more; a worker that died says nothing after its WorkerDied.

    clock = FakeClock()
    backend = FakeBackend(clock, run=lambda h, task: dies("killed by SIGKILL") if task.attempt == 1 else ok(task))
    supervise(backend, batches, root, settings, events.append, lambda: False, clock=clock)

The clock has a horizon: a supervisor that would wait forever (no worker left, say) fails the test
instead of hanging it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from batchctl.execution.events import (
    BatchResult,
    BatchTask,
    InitFailed,
    WorkerDied,
    WorkerMessage,
    WorkerReady,
    WorkerResult,
)
from batchctl.scoring.failures import ErrorInfo, ItemError

TICK = 0.001  # the least a wait() moves the clock


class FakeClock:
    """time.monotonic for the Supervisor: moves only when the FakeBackend waits (or a test says so)."""

    def __init__(self, horizon: float = 10_000.0) -> None:
        self.now = 0.0
        self.horizon = horizon

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.now > self.horizon:
            raise AssertionError(f"the supervisor was still waiting after {self.horizon:g} s of fake time")


@dataclass
class Reply:
    """What a worker says, `after` seconds of fake time; `message` None: it says nothing (hangs)."""

    message: WorkerMessage | None
    after: float = 0.0


def ready(after: float = 0.0, pid: int | None = None) -> Reply:
    return Reply(WorkerReady(pid), after)


def init_fails(details: str = "Traceback (most recent call last):\nValueError: no model", after: float = 0.0) -> Reply:
    return Reply(InitFailed(details), after)


def dies(reason: str = "killed by SIGKILL (out of memory?)", after: float = 0.0) -> Reply:
    return Reply(WorkerDied(reason), after)


def hangs() -> Reply:
    return Reply(None)


def ok(task: BatchTask, after: float = 1.0, failed: int = 0) -> Reply:
    """The attempt ran: every file scored, but the first `failed` ones (run() returned fewer rows)."""
    info = ErrorInfo("ValueError", "bad row")
    errors = [ItemError(name, info) for name in task.files[:failed]]
    result = BatchResult(
        task.batch, task.attempt, ok=True, succeeded=len(task.files) - failed, failed=failed, item_errors=errors
    )
    return Reply(WorkerResult(result), after)


def fails(task: BatchTask, error: str = "Traceback ...\nRuntimeError: run() raised", after: float = 1.0) -> Reply:
    """The attempt failed as a whole (run() raised): it may be retried."""
    info = ErrorInfo("RuntimeError", error.strip().splitlines()[-1])
    result = BatchResult(task.batch, task.attempt, ok=False, error=error, error_info=info)
    return Reply(WorkerResult(result), after)


@dataclass(eq=False)
class FakeHandle:
    slot: int
    backend: FakeBackend
    number: int  # the how-many-th worker spawned, from 0
    tasks: list[BatchTask] = field(default_factory=list)
    killed: bool = False
    dead: bool = False  # it reported WorkerDied

    def submit(self, task: BatchTask) -> None:
        self.tasks.append(task)
        self.backend.schedule(self, self.backend.run(self, task))

    def kill(self) -> None:
        self.killed = True


@dataclass(eq=False)
class _Due:
    at: float
    order: int
    handle: FakeHandle
    message: WorkerMessage
    in_flight: bool = False  # sent before the worker was killed: delivered all the same


class FakeBackend:
    name = "fake"

    def __init__(
        self,
        clock: FakeClock,
        init: Callable[[FakeHandle], Reply] = lambda handle: ready(),
        run: Callable[[FakeHandle, BatchTask], Reply] = lambda handle, task: ok(task),
    ) -> None:
        self.clock = clock
        self.init = init
        self.run = run
        self.spawned: list[FakeHandle] = []
        self.due: list[_Due] = []
        self.shut_down = False
        self._order = 0

    def spawn(self, slot: int) -> FakeHandle:
        handle = FakeHandle(slot, self, len(self.spawned))
        self.spawned.append(handle)
        self.schedule(handle, self.init(handle))
        return handle

    def schedule(self, handle: FakeHandle, reply: Reply) -> None:
        if reply.message is not None:
            self._order += 1
            self.due.append(_Due(self.clock() + reply.after, self._order, handle, reply.message))

    def in_flight(self, handle: FakeHandle, message: WorkerMessage, after: float = 0.0) -> None:
        """A message `handle` sent before it was killed or died, reported only now, whether or not the
        supervisor still lists that worker (a backend's backlog: the supervisor must tell it from the
        messages of the worker now in the same slot)."""
        self._order += 1
        self.due.append(_Due(self.clock() + after, self._order, handle, message, in_flight=True))

    def wait(self, handles: list[FakeHandle], timeout: float) -> list[tuple[FakeHandle, WorkerMessage]]:
        self.due = [d for d in self.due if d.in_flight or not (d.handle.killed or d.handle.dead)]
        listened = [d for d in self.due if d.in_flight or any(d.handle is h for h in handles)]
        first = min((d.at for d in listened), default=None)
        if first is None or first > self.clock() + timeout:
            # a turn of the loop always takes some time: a wait of 0 at a deadline must not stop the clock
            self.clock.advance(max(timeout, TICK))
            return []
        self.clock.advance(max(0.0, first - self.clock()))
        now = sorted((d for d in listened if d.at <= self.clock()), key=lambda d: (d.at, d.order))
        self.due = [d for d in self.due if all(d is not n for n in now)]
        out = []
        for d in now:
            if d.in_flight or not d.handle.dead:
                out.append((d.handle, d.message))
                d.handle.dead = isinstance(d.message, WorkerDied)
        return out

    def shutdown(self) -> None:
        self.shut_down = True
