"""Job progress on stderr: a rich progress bar on a terminal, plain throttled lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchctl.jobs.model import JobProgress


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def plan_summary(files: int, units: int, row_ranges: int) -> str:
    """`4 files in 2 mini-batches`, `1 file in 4 row ranges`, or both kinds when some files were cut."""
    whole = units - row_ranges
    parts = []
    if whole or not row_ranges:
        parts.append(_count(whole, "mini-batch", "mini-batches"))
    if row_ranges:
        parts.append(_count(row_ranges, "row range", "row ranges"))
    return f"{_count(files, 'file', 'files')} in {' and '.join(parts)}"


def unit_noun(units: int, row_ranges: int) -> str:
    """What `done/total` counts: mini-batches, row ranges (every file cut), or both."""
    if not row_ranges:
        return "mini-batch" if units == 1 else "mini-batches"
    if row_ranges == units:
        return "row range" if units == 1 else "row ranges"
    return "mini-batches and row ranges"


class ProgressRenderer:
    def __init__(self, total_batches: int, total_items: int, name: str, listing: bool = False) -> None:
        """`listing`: the input is still being listed, so the totals are "at least" until it ends."""
        self.total_batches = total_batches
        self.total_items = total_items
        self.name = name
        self.started = time.monotonic()
        self.last_line = 0.0
        self.bar: Any = None
        self.task: Any = None
        self.unit = "mini-batches"
        self.announced = False
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[listing]}{task.fields[unit]} · {task.fields[items]} · {task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            from batchctl.cli._jobview import short_name

            self.task = self.bar.add_task(
                short_name(name),
                total=max(total_batches, 1),
                items="0 items",
                rate="",
                unit=self.unit,
                listing=_at_least(listing),
            )
            self.bar.start()
        # plain lines: the first says what the job is cut into, known once the runner has planned it (big
        # files become row ranges), so it is written with the first progress report ("at least N files"
        # while a big input is still being listed)
        self.listing = listing

    def __call__(self, progress: JobProgress) -> None:
        counts = progress.counts
        event = progress.event
        kind = event.kind.value if event is not None else "finished"
        done = counts.mini_batches_completed + counts.mini_batches_failed
        listing = bool(getattr(counts, "listing", False))
        if counts.mini_batches and counts.mini_batches != self.total_batches:  # row ranges, or a listing going on
            self.total_batches = counts.mini_batches
        self.unit = unit_noun(self.total_batches, counts.row_ranges)
        self.listing = listing
        if self.bar is not None:
            self.bar.update(self.task, total=max(self.total_batches, 1), unit=self.unit, listing=_at_least(listing))
        elif not self.announced:
            self.announced = True
            files = counts.files or self.total_items
            if listing:
                sys.stderr.write(f"job {self.name}: at least {files} files, listing…\n")
            else:
                sys.stderr.write(f"job {self.name}: {plan_summary(files, self.total_batches, counts.row_ranges)}\n")
        ok, bad = counts.items_succeeded, counts.items_failed
        elapsed = max(time.monotonic() - self.started, 1e-6)
        if event is not None and kind == "init_running":  # a slow (or hanging) init(): say so, with its deadline
            line = f"  worker {event.slot}: {event.reason}"
            if self.bar is not None:
                self.bar.console.print(line, markup=False, highlight=False)
            else:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            return
        if self.bar is not None:
            if kind in ("final", "finished", "retry", "timeout", "worker_died"):
                self.bar.update(
                    self.task,
                    completed=done,
                    items=f"{_count(ok, 'item', 'items')} ok, {bad} failed",
                    rate=f"{(ok + bad) / elapsed:.1f} files/s",
                )
            if kind == "finished":
                self.bar.stop()
            return
        now = time.monotonic()
        if event is not None and kind in ("retry", "timeout", "worker_died"):
            reason = event.error or event.reason or kind
            sys.stderr.write(f"  mini-batch {event.batch}: {kind}: {str(reason).strip().splitlines()[-1][:200]}\n")
        if kind == "finished" or (kind == "final" and (now - self.last_line > 2.0 or done == self.total_batches)):
            self.last_line = now
            if kind == "finished":
                sys.stderr.write(
                    f"job {self.name}: {progress.status} - {ok} items succeeded, {bad} failed in {elapsed:.1f}s\n"
                )
            else:
                total = f"at least {self.total_batches}" if self.listing else str(self.total_batches)
                sys.stderr.write(
                    f"  {done}/{total} {self.unit}{' (listing…)' if self.listing else ''}, "
                    f"{_count(ok, 'item', 'items')} ok, {bad} failed\n"
                )
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            try:
                self.bar.stop()
            except Exception:  # closing a progress bar must never mask the job's own outcome
                pass


def _at_least(listing: bool) -> str:
    return "(at least; listing…) " if listing else ""
