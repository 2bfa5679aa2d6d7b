"""The supervision rules (execution/base.Supervisor), driven by a scripted FakeBackend and a fake clock:
retries, timeouts, error_threshold, dead-worker replacement, init() deadlines and failures, cancel,
resumed and split units, a streamed feed. No process starts; each test runs in milliseconds.

The end-to-end tests that keep one representative of each rule through real workers are in
tests/jobs/test_failures.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from batchctl.errors import JobCanceledError
from batchctl.execution.base import (
    INIT_REPORT_SECONDS,
    STARTING_GRACE_SECONDS,
    InitFailedError,
    RunSettings,
    Supervisor,
    ThresholdExceededError,
    Totals,
    supervise,
)
from batchctl.execution.events import BatchEvent, BatchResult, BatchTask, EventKind, WorkerDied, WorkerResult
from batchctl.scoring.ranges import FileRange
from batchctl.storage import Location
from support.fake_backend import FakeBackend, FakeClock, FakeHandle, Reply, dies, fails, hangs, init_fails, ok, ready

ROOT = Location("/data", "file")
K = EventKind


def settings(**changes: Any) -> RunSettings:
    base = RunSettings(workers=1, max_retries=3, timeout=30.0, error_threshold=-1)
    return dataclasses.replace(base, **changes)


def minibatches(n: int, size: int = 2) -> list[list[str]]:
    return [[f"f{i}-{j}.csv" for j in range(size)] for i in range(n)]


class Run:
    """One supervised run: the events it emitted, its totals, the backend and the clock."""

    def __init__(
        self,
        batches: Any,
        run_settings: RunSettings,
        init: Callable[[FakeHandle], Reply] = lambda handle: ready(),
        run: Callable[[FakeHandle, BatchTask], Reply] = lambda handle, task: ok(task),
        cancel: Callable[[list[BatchEvent]], bool] = lambda events: False,
        **options: Any,
    ) -> None:
        self.clock = FakeClock()
        self.backend = FakeBackend(self.clock, init=init, run=run)
        self.events: list[BatchEvent] = []
        self.totals: Totals | None = None
        self.supervisor = Supervisor(
            self.backend,
            batches,
            ROOT,
            run_settings,
            self.events.append,
            lambda: cancel(self.events),
            clock=self.clock,
            **options,
        )

    def __call__(self) -> Run:
        self.totals = self.supervisor.run()
        return self

    def kinds(self) -> list[str]:
        return [str(e.kind) for e in self.events]

    def of(self, kind: EventKind) -> list[BatchEvent]:
        return [e for e in self.events if e.kind == kind]

    def finals(self) -> dict[int, BatchResult]:
        out: dict[int, BatchResult] = {}
        for event in self.of(K.FINAL):
            assert event.batch is not None and event.result is not None
            assert event.batch not in out, f"mini-batch {event.batch} had two final outcomes"
            out[event.batch] = event.result
        return out


def test_every_mini_batch_runs_once_and_the_events_come_in_order():
    run = Run(minibatches(3), settings(workers=2))()
    assert run.kinds() == [
        "worker_started",
        "worker_started",
        "worker_ready",
        "worker_ready",
        "dispatched",
        "dispatched",
        "final",
        "final",
        "dispatched",
        "final",
    ]
    assert sorted(run.finals()) == [0, 1, 2]
    assert run.totals == Totals(succeeded=6, failed=0, retries=0, restarts=0)
    assert run.backend.shut_down and not any(h.killed for h in run.backend.spawned)


def test_no_more_workers_than_mini_batches_and_none_for_no_work():
    assert len(Run(minibatches(2), settings(workers=8))().backend.spawned) == 2
    empty = Run([], settings(workers=4))()
    assert empty.backend.spawned == [] and empty.events == [] and empty.totals == Totals()
    assert empty.backend.shut_down


def test_the_thin_supervise_function_runs_a_supervisor():
    clock = FakeClock()
    events: list[BatchEvent] = []
    totals = supervise(FakeBackend(clock), minibatches(2), ROOT, settings(), events.append, lambda: False, clock=clock)
    assert totals.succeeded == 4 and [e.batch for e in events if e.kind == K.FINAL] == [0, 1]


# -- retries


def test_a_failed_attempt_is_retried_and_the_retry_can_succeed():
    run = Run(minibatches(1), settings(), run=lambda h, task: fails(task) if task.attempt == 1 else ok(task))()
    assert run.kinds()[2:] == ["dispatched", "attempt_failed", "retry", "dispatched", "final"]
    assert run.of(K.RETRY)[0].error == "Traceback ...\nRuntimeError: run() raised"
    assert run.finals()[0].ok and run.finals()[0].attempt == 2
    assert run.totals == Totals(succeeded=2, failed=0, retries=1, restarts=0)


@pytest.mark.parametrize("max_retries", [0, 2])
def test_max_retries_counts_retries_after_the_first_try(max_retries):
    run = Run(minibatches(1), settings(max_retries=max_retries), run=lambda h, task: fails(task))()
    assert [e.attempt for e in run.of(K.DISPATCHED)] == list(range(1, max_retries + 2))
    final = run.finals()[0]
    assert not final.ok and final.attempt == max_retries + 1 and final.failed == 2
    assert [i.item for i in final.item_errors] == ["f0-0.csv", "f0-1.csv"]
    assert final.error_info is not None and final.error_info.message == "RuntimeError: run() raised"
    assert run.totals == Totals(succeeded=0, failed=2, retries=max_retries, restarts=0)


def test_a_retry_goes_before_the_queued_mini_batches():
    run = Run(
        minibatches(3),
        settings(),
        run=lambda h, task: fails(task) if (task.batch, task.attempt) == (0, 1) else ok(task),
    )()
    assert [(e.batch, e.attempt) for e in run.of(K.DISPATCHED)] == [(0, 1), (0, 2), (1, 1), (2, 1)]


# -- timeouts


def test_a_timed_out_attempt_kills_its_worker_and_is_retried_on_a_replacement():
    run = Run(
        minibatches(2),
        settings(timeout=30),
        run=lambda h, task: hangs() if task.attempt == 1 and task.batch == 0 else ok(task),
    )()
    first, second = run.backend.spawned
    assert first.killed and not second.killed and [t.batch for t in first.tasks] == [0]
    timeout = run.of(K.TIMEOUT)[0]
    assert (timeout.slot, timeout.batch, timeout.attempt) == (0, 0, 1)
    assert run.of(K.RETRY)[0].error == (
        "No progress update in 30 seconds: the attempt timed out and its worker was killed"
    )
    assert [(t.batch, t.attempt) for t in second.tasks] == [(0, 2), (1, 1)]
    assert run.kinds()[2:6] == ["dispatched", "timeout", "retry", "worker_started"]
    assert run.totals == Totals(succeeded=4, failed=0, retries=1, restarts=1)
    assert 30 < run.clock.now < 33  # killed at the deadline, not later


def test_an_attempt_that_always_times_out_fails_its_items_and_the_job_goes_on():
    run = Run(
        minibatches(2), settings(timeout=5, max_retries=1), run=lambda h, task: hangs() if task.batch == 0 else ok(task)
    )()
    assert not run.finals()[0].ok and run.finals()[0].failed == 2 and run.finals()[1].ok
    assert run.totals == Totals(succeeded=2, failed=2, retries=1, restarts=2)


def test_no_replacement_once_every_mini_batch_has_ended():
    run = Run(minibatches(1), settings(timeout=5, max_retries=0), run=lambda h, task: hangs())()
    assert len(run.backend.spawned) == 1 and run.backend.spawned[0].killed
    assert run.kinds()[-1] == "final"


# -- error_threshold


def test_error_threshold_fails_the_job_as_soon_as_it_is_crossed():
    # every mini-batch has one failed item; threshold 1: the second outcome crosses it
    run = Run(minibatches(10), settings(error_threshold=1), run=lambda h, task: ok(task, failed=1))
    with pytest.raises(ThresholdExceededError, match=r"^error_threshold exceeded: 2 failed items > error_threshold 1$"):
        run()
    assert len(run.of(K.DISPATCHED)) == 2 and len(run.finals()) == 2
    assert run.backend.spawned[0].killed and run.backend.shut_down


def test_a_mini_batch_that_fails_as_a_whole_counts_all_its_files_against_the_threshold():
    run = Run(minibatches(3, size=3), settings(error_threshold=2, max_retries=0), run=lambda h, task: fails(task))
    with pytest.raises(ThresholdExceededError, match="3 failed items > error_threshold 2"):
        run()
    assert len(run.finals()) == 1


@pytest.mark.parametrize(("threshold", "raises"), [(-1, False), (4, False), (3, True)])
def test_error_threshold_minus_one_never_fails_and_equal_is_allowed(threshold, raises):
    run = Run(minibatches(4), settings(error_threshold=threshold), run=lambda h, task: ok(task, failed=1))
    if raises:
        with pytest.raises(ThresholdExceededError):
            run()
    else:
        assert run().totals == Totals(succeeded=4, failed=4, retries=0, restarts=0)


# -- dead workers


def test_a_dead_worker_is_replaced_and_its_mini_batch_retried():
    run = Run(minibatches(3), settings(), run=lambda h, task: dies("exit code 3") if h.number == 0 else ok(task))()
    died = run.of(K.WORKER_DIED)[0]
    assert (died.slot, died.batch, died.reason) == (0, 0, "exit code 3")
    assert run.of(K.RETRY)[0].error == "worker exited unexpectedly: exit code 3"
    assert len(run.backend.spawned) == 2
    assert [(t.batch, t.attempt) for t in run.backend.spawned[1].tasks] == [(0, 2), (1, 1), (2, 1)]
    assert all(r.ok for r in run.finals().values()) and len(run.finals()) == 3
    assert run.totals == Totals(succeeded=6, failed=0, retries=1, restarts=1)


def test_a_worker_that_always_dies_fails_its_items_only():
    run = Run(minibatches(3), settings(max_retries=2), run=lambda h, task: dies() if task.batch == 1 else ok(task))()
    finals = run.finals()
    assert finals[0].ok and finals[2].ok and not finals[1].ok and finals[1].failed == 2
    assert finals[1].error == "worker exited unexpectedly: killed by SIGKILL (out of memory?)"
    assert run.totals == Totals(succeeded=4, failed=2, retries=2, restarts=3)
    assert len(run.backend.spawned) == 4


def test_an_idle_worker_that_dies_is_replaced_without_a_retry():
    def run_task(handle: FakeHandle, task: BatchTask) -> Reply:
        if handle.number == 0:  # finishes its mini-batch at 1 s; its process ends at 1.5 s, while idle
            handle.backend.schedule(handle, dies("exit code 0", after=1.5))
        return ok(task, after=1 if handle.number == 0 else 10)

    run = Run(minibatches(2), settings(workers=2), run=run_task)()
    died = run.of(K.WORKER_DIED)[0]
    assert (died.slot, died.batch) == (0, None) and run.of(K.RETRY) == []
    assert len(run.backend.spawned) == 3 and len(run.finals()) == 2
    assert run.totals == Totals(succeeded=4, failed=0, retries=0, restarts=1)


def test_messages_from_a_worker_already_replaced_are_ignored():
    """Worker 0 times out on mini-batch 0 and is killed; what it had sent before (a result for that same
    mini-batch, then its death) is read only once its replacement holds the retry."""

    def run_task(handle: FakeHandle, task: BatchTask) -> Reply:
        if handle.number == 0:
            return hangs()
        first = handle.backend.spawned[0]
        stale = BatchResult(0, 1, ok=True, succeeded=2)
        handle.backend.in_flight(first, WorkerResult(stale))
        handle.backend.in_flight(first, WorkerDied("killed by SIGKILL"))
        return ok(task, after=2)

    run = Run(minibatches(1), settings(timeout=5), run=run_task)()
    assert run.finals()[0].attempt == 2 and run.of(K.WORKER_DIED) == []
    assert run.totals == Totals(succeeded=2, failed=0, retries=1, restarts=1)


# -- init()


@pytest.mark.parametrize(("init_timeout", "deadline"), [(None, 3 * 10 + 30), (5.0, 5)])
def test_a_worker_stuck_in_init_fails_the_job_at_its_deadline(init_timeout, deadline):
    run = Run(minibatches(2), settings(timeout=10, init_timeout=init_timeout), init=lambda h: hangs())
    with pytest.raises(
        InitFailedError, match=rf"worker 0 did not finish init\(\) within its deadline of {deadline} seconds"
    ):
        run()
    assert deadline < run.clock.now < deadline + 1
    assert run.backend.spawned[0].killed and run.backend.shut_down


def test_a_long_init_is_reported_every_few_seconds():
    run = Run(minibatches(1), settings(timeout=10), init=lambda h: ready(after=25))()
    reports = run.of(K.INIT_RUNNING)
    assert INIT_REPORT_SECONDS == 10
    assert [r.reason for r in reports] == [
        "init() running for 10 s (deadline 60 s)",
        "init() running for 20 s (deadline 60 s)",
    ]
    assert run.kinds() == ["worker_started", "init_running", "init_running", "worker_ready", "dispatched", "final"]


def test_init_failed_fails_the_job_with_its_last_line_and_keeps_the_traceback():
    run = Run(
        minibatches(2),
        settings(workers=2),
        init=lambda h: init_fails("Traceback ...\n  File x\nValueError: no model\n"),
    )
    with pytest.raises(InitFailedError) as info:
        run()
    assert info.value.message == "init() failed in worker 0: ValueError: no model"
    assert info.value.details == "Traceback ...\n  File x\nValueError: no model\n"
    assert all(h.killed for h in run.backend.spawned)


def test_a_replacement_whose_init_fails_says_so():
    run = Run(
        minibatches(2),
        settings(),
        init=lambda h: ready() if h.number == 0 else init_fails(),
        run=lambda h, task: dies(),
    )
    with pytest.raises(InitFailedError, match=r"^init\(\) failed in worker 0 \(a replacement\): ValueError: no model$"):
        run()


def test_a_worker_that_exits_during_init_fails_the_job():
    run = Run(minibatches(1), settings(), init=lambda h: dies("exit code 1", after=3))
    with pytest.raises(InitFailedError, match=r"^worker 0 exited during init\(\): exit code 1$"):
        run()
    assert run.of(K.WORKER_DIED) == []


def test_workers_still_starting_at_the_end_are_reported_not_waited_for():
    # worker 0 dies on its mini-batch's first attempt, worker 1 ends the job; the replacement of worker 0
    # is still in init() then
    def init(handle: FakeHandle) -> Reply:
        return ready(after=5 if handle.number == 1 else 0) if handle.number < 2 else hangs()

    run = Run(
        minibatches(2), settings(workers=2), init=init, run=lambda h, task: dies() if h.number == 0 else ok(task)
    )()
    stopped = run.of(K.WORKER_STOPPED)
    assert [(e.slot, e.reason) for e in stopped] == [
        (0, "(a replacement) was still in init() when every mini-batch had ended; stopped")
    ]
    # worker 1 is ready at 5 s and runs the retry and mini-batch 1 (1 s each): the last outcome is at 7 s,
    # then the replacement has the grace period to say how its init() went
    assert STARTING_GRACE_SECONDS <= run.clock.now - 7 <= STARTING_GRACE_SECONDS + 0.2
    assert run.backend.shut_down and not run.backend.spawned[2].killed  # ended, not killed: shutdown stops it


def test_a_replacement_whose_init_fails_after_the_end_is_reported():
    def init(handle: FakeHandle) -> Reply:
        return ready() if handle.number < 2 else init_fails("Traceback\nImportError: gone", after=4)

    def run_task(handle: FakeHandle, task: BatchTask) -> Reply:
        return dies() if handle.number == 0 else ok(task, after=1.5)

    # the last outcome is at 3 s (worker 1 runs mini-batch 1, then the retry of 0); the replacement's init()
    # fails at 4 s, within the grace period
    run = Run(minibatches(2), settings(workers=2), init=init, run=run_task)()
    assert [e.reason for e in run.of(K.WORKER_STOPPED)] == [
        "(a replacement) failed init() after every mini-batch had ended: ImportError: gone"
    ]


# -- cancel


def test_cancel_stops_every_worker_at_once():
    def cancel(events: list[BatchEvent]) -> bool:
        return sum(e.kind == K.FINAL for e in events) >= 2

    run = Run(minibatches(6), settings(workers=2), run=lambda h, task: ok(task, after=1 + task.batch), cancel=cancel)
    with pytest.raises(JobCanceledError, match="job canceled"):
        run()
    assert len(run.finals()) == 2 and all(h.killed for h in run.backend.spawned) and run.backend.shut_down


# -- resumed jobs, split files


def test_a_resumed_job_runs_only_its_pending_mini_batches():
    run = Run(minibatches(5), settings(workers=3), pending=[1, 4])()
    assert sorted(run.finals()) == [1, 4] and len(run.backend.spawned) == 2


def test_ranges_travel_with_tasks_and_settle_turns_results_into_item_counts():
    span = FileRange("big.csv", "csv", 0, 2, 0, 100)
    settled: list[int] = []

    def settle(result: BatchResult) -> BatchResult:
        settled.append(result.batch)
        return dataclasses.replace(result, succeeded=0 if result.batch == 0 else 1, failed=0)

    run = Run([["big.csv"], ["big.csv"]], settings(), ranges={0: span}, settle=settle)()
    tasks = run.backend.spawned[0].tasks
    assert tasks[0].span == span and tasks[1].span is None
    assert settled == [0, 1] and run.totals is not None and run.totals.succeeded == 1
    assert run.finals()[1].succeeded == 1  # the settled result is the one emitted


def test_settle_applies_before_the_threshold():
    run = Run(
        [["a.csv"], ["a.csv"]],
        settings(error_threshold=0, max_retries=0),
        run=lambda h, task: fails(task),
        settle=lambda result: dataclasses.replace(result, failed=0),
    )()
    assert run.totals == Totals(succeeded=0, failed=0, retries=0, restarts=0)


# -- a streamed feed (jobs/feed.py)


class ScriptedFeed:
    """A UnitSource whose units arrive on the given turns of the loop."""

    def __init__(self, first: list[int], arrivals: list[list[int]], files: int = 2, limit: int | None = None) -> None:
        self.first = first
        self.limit = limit
        self.arrivals = list(arrivals)
        self.files = files
        self.exhausted = not arrivals
        self.released: list[int] = []

    def __getitem__(self, unit: int) -> list[str]:
        assert unit not in self.released, f"unit {unit} read after its release"
        return [f"u{unit}-{j}" for j in range(self.files)]

    def prime(self) -> list[int]:
        return list(self.first)

    def take(self) -> list[int]:
        if not self.arrivals:
            return []
        units = self.arrivals.pop(0)
        self.exhausted = not self.arrivals
        return units

    def release(self, unit: int) -> None:
        self.released.append(unit)

    def worker_limit(self) -> int | None:
        return self.limit


def test_a_feed_starts_every_worker_and_runs_units_as_they_arrive():
    feed = ScriptedFeed([0], [[], [1, 2], [], [3]])
    run = Run(
        feed,
        settings(workers=3, max_retries=1),
        feed=feed,
        run=lambda h, task: fails(task) if (task.batch, task.attempt) == (2, 1) else ok(task),
    )()
    assert len(run.backend.spawned) == 3  # settings.workers, though one unit was known at start
    assert sorted(run.finals()) == [0, 1, 2, 3] and sorted(feed.released) == [0, 1, 2, 3]
    assert [f"u{u}" for u in feed.released] == [f"u{e.batch}" for e in run.of(K.FINAL)]  # released once final
    assert run.totals == Totals(succeeded=8, failed=0, retries=1, restarts=0)


def test_a_feed_that_is_empty_at_start_still_runs_what_arrives():
    feed = ScriptedFeed([], [[], [0]])
    run = Run(feed, settings(workers=2), feed=feed)()
    assert list(run.finals()) == [0] and len(run.backend.spawned) == 2


def test_a_dead_worker_is_replaced_while_units_may_still_arrive():
    feed = ScriptedFeed([0], [[]] * 40 + [[1]])
    run = Run(
        feed, settings(workers=1, max_retries=0), feed=feed, run=lambda h, task: dies() if task.batch == 0 else ok(task)
    )()
    assert len(run.backend.spawned) == 2 and run.finals()[1].ok and not run.finals()[0].ok


def test_an_exhausted_empty_feed_starts_nothing():
    feed = ScriptedFeed([], [])
    run = Run(feed, settings(workers=2), feed=feed)()
    assert run.backend.spawned == [] and run.events == []


def test_a_complete_feed_with_a_worker_limit_starts_no_more_workers_than_it_allows():
    # a small remainder of a reusing job (jobs/runner.py): the feed knows every unit at start and caps the workers
    feed = ScriptedFeed([0, 1, 2], [], limit=1)
    run = Run(feed, settings(workers=3), feed=feed)()
    assert len(run.backend.spawned) == 1 and sorted(run.finals()) == [0, 1, 2]
    unlimited = ScriptedFeed([0, 1, 2], [])
    assert len(Run(unlimited, settings(workers=3), feed=unlimited)().backend.spawned) == 3


# -- group commit


def test_the_messages_of_one_wait_reach_the_hook_together_after_the_next_dispatch():
    """`after_wait` (the journal's group commit) runs once per batch of messages, after their FINAL events
    and after the workers that reported were handed their next attempt (they score while it commits)."""
    finals_at_call: list[int] = []
    tails: list[list[str]] = []

    def hook() -> None:
        finals_at_call.append(len(run.of(K.FINAL)))
        tails.append(run.kinds()[-3:])

    run = Run(minibatches(3), settings(workers=2), after_wait=hook)
    run()
    # the two workers' ready messages, then mini-batches 0 and 1 ending together, then mini-batch 2
    assert finals_at_call == [0, 2, 3]
    assert tails[1] == ["final", "final", "dispatched"]
    assert sorted(run.finals()) == [0, 1, 2]
