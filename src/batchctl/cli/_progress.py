"""Job progress on stderr: a rich progress bar on a terminal, plain throttled lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchctl.jobs.model import JobProgress


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
                TextColumn("{task.fields[listing]}mini-batches · {task.fields[items]} · {task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.task = self.bar.add_task(
                name[:24], total=max(total_batches, 1), items="0 items", rate="", listing=_at_least(listing)
            )
            self.bar.start()
        else:
            if listing:
                sys.stderr.write(f"job {name}: at least {total_items} files, listing…\n")
            else:
                sys.stderr.write(f"job {name}: {total_items} files in {total_batches} mini-batches\n")
            sys.stderr.flush()
        self.listing = listing

    def __call__(self, progress: JobProgress) -> None:
        counts = progress.counts
        event = progress.event
        kind = event.kind.value if event is not None else "finished"
        done = counts.mini_batches_completed + counts.mini_batches_failed
        listing = bool(getattr(counts, "listing", False))
        if (counts.mini_batches and counts.mini_batches != self.total_batches) or listing != self.listing:
            # big files cut into row ranges, or a listing that goes on: the total grows
            self.total_batches = counts.mini_batches or self.total_batches
            self.listing = listing
            if self.bar is not None:
                self.bar.update(self.task, total=max(self.total_batches, 1), listing=_at_least(listing))
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
                    items=f"{ok} ok, {bad} failed items",
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
                    f"  {done}/{total} mini-batches{' (listing…)' if self.listing else ''}, "
                    f"{ok} items ok, {bad} failed\n"
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
