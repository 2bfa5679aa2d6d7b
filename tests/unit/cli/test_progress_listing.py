"""The progress lines of a job whose input is still being listed: totals read "at least" until the
listing ends, then the real totals."""

from __future__ import annotations

from batchctl.cli._progress import ProgressRenderer
from batchctl.execution.events import BatchEvent, BatchResult, EventKind
from batchctl.jobs.model import JobCounts, JobProgress


def final(batch: int, counts: JobCounts) -> JobProgress:
    result = BatchResult(batch=batch, attempt=1, ok=True, succeeded=1)
    return JobProgress(event=BatchEvent(EventKind.FINAL, batch=batch, result=result), counts=counts)


def test_at_least_while_listing_then_the_total(capsys):
    renderer = ProgressRenderer(20, 10_000, "big", listing=True)
    renderer(final(0, JobCounts(files=12_000, mini_batches=24, mini_batches_completed=1, listing=True)))
    renderer.last_line = 0.0  # the plain lines are throttled to one every 2 s
    renderer(final(1, JobCounts(files=30_000, mini_batches=60, mini_batches_completed=60, items_succeeded=30_000)))
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "job big: at least 12000 files, listing…"  # said with the first report (as planned by then)
    assert err[1] == "  1/at least 24 mini-batches (listing…), 0 items ok, 0 failed"
    assert err[2] == "  60/60 mini-batches, 30000 items ok, 0 failed"


def test_a_listed_job_prints_as_before(capsys):
    renderer = ProgressRenderer(2, 3, "small")
    renderer(final(0, JobCounts(files=3, mini_batches=2, mini_batches_completed=2, items_succeeded=3)))
    assert capsys.readouterr().err.splitlines() == [
        "job small: 3 files in 2 mini-batches",
        "  2/2 mini-batches, 3 items ok, 0 failed",
    ]
