"""The job's units of work, planned from its plan as the supervise() loop asks for them, while the input
listing may still go on (a big folder: submit lists the first STREAM_AT files, the runner the rest).

- A lister thread (only while the listing is incomplete) walks the input on, after the plan's last entry,
  and appends the entries to plan.jsonl in chunks; it never holds more than one directory's names.
- The supervise() loop takes units: the next CHUNK files of the plan become mini-batches (and row ranges
  of big files, execution/splitting.py) when fewer than a chunk's files are still waiting. Chunks have a
  fixed size (a multiple of mini_batch_size), so the units are the same whether the files were listed
  at submit or while scoring, and a resumed job finds its committed units again.
- A unit's files are held only until its outcome is final: memory stays flat whatever the input's size.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.execution.splitting import FileLedger, UnitPlan, plan_units, range_key
from batchctl.jobs import plan as plan_io
from batchctl.jobs.results import Commit, fingerprint
from batchctl.jobs.reuse import Group, Reuse
from batchctl.scoring.ranges import FileRange

CHUNK_FILES = 10_000  # files planned at a time (rounded up to a multiple of mini_batch_size)
APPEND_EVERY = 2_000  # the lister appends to plan.jsonl this many entries at a time


def chunk_size(mini_batch_size: int) -> int:
    return -(-CHUNK_FILES // mini_batch_size) * mini_batch_size


@dataclass
class FeedSettings:
    mini_batch_size: int
    workers: int
    split: str
    split_enabled: bool
    cheap_predict: bool = False


class Lister(threading.Thread):
    """Lists the input on from the plan's last entry and appends to plan.jsonl."""

    def __init__(self, folder: Path, header: plan_io.PlanHeader, wake: threading.Condition) -> None:
        super().__init__(name="batchctl-lister", daemon=True)
        self.folder = folder
        self.header = header
        self.wake = wake
        self.writer = plan_io.PlanWriter(folder)
        self.count = self.writer.count
        self.done = False
        self.error: BaseException | None = None
        self.listing_sha256: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            after = self.writer.last
            loc = self.header.root if self.header.input_type == "uri_folder" else None
            if loc is None:  # a uri_file plan is always complete at submit
                self.listing_sha256 = self.writer.end()
                return
            stream = storage.open_listing(loc, "uri_folder")
            batch: list[storage.Entry] = []
            for entry in stream.entries:
                if self.stop.is_set():
                    return
                if after is not None and entry[0] <= after:
                    continue  # listed before (at submit, or by an earlier attempt)
                batch.append(entry)
                if len(batch) >= APPEND_EVERY:
                    self._append(batch)
                    batch = []
            self._append(batch)
            self.listing_sha256 = self.writer.end()
        except BaseException as exc:  # reported by the supervise loop, which fails the job with it
            self.error = exc
        finally:
            self.writer.close()
            with self.wake:
                self.done = True
                self.wake.notify_all()

    def _append(self, batch: list[storage.Entry]) -> None:
        if not batch:
            return
        self.writer.add(batch)
        with self.wake:
            self.count = self.writer.count
            self.wake.notify_all()


class UnitFeed:
    """What supervise() runs: `feed[unit]` (its files, while in flight), `ranges`, `prime()`, `take()`,
    `release(unit)`, `exhausted`."""

    def __init__(
        self,
        folder: Path,
        job: str,
        settings: FeedSettings,
        committed: dict[int, Commit],
        keep: Callable[[int, Commit, int, int], None],
        discard: Callable[[int], None],
        notes: Callable[[str], None],
        reuse: Reuse | None = None,
        on_reused: Callable[[int], None] | None = None,
        stale: set[str] | None = None,
        amended: dict[str, storage.Entry] | None = None,
    ) -> None:
        self.folder = folder
        self.job = job
        self.settings = settings
        self.header = plan_io.read_header(folder)
        self.root = self.header.root
        self.chunk = chunk_size(settings.mini_batch_size)
        self.committed = committed
        self.keep, self.discard, self.notes = keep, discard, notes
        self.reuse = reuse
        self.on_reused = on_reused or (lambda rows: None)
        # a resumed job: files changed since the last attempt (their units' commits are not kept), and the
        # entries of files a resume found changed (what their results are now keyed by, for reuse)
        self.stale = stale or set()
        self.amended = amended or {}
        self.units: dict[int, list[str]] = {}  # in flight: unit -> files
        self.first: dict[int, int] = {}  # in flight: unit -> plan index of its first file
        self.ranges: dict[int, FileRange] = {}
        self.ledger = FileLedger(UnitPlan([]))
        self.planned_units = 0
        self.planned_files = 0
        self.outstanding_files = 0
        self.kept = 0
        self.wake = threading.Condition()
        state = plan_io.PlanState()
        if self.header.legacy:
            self._legacy: Iterator[storage.Entry] | None = plan_io.iter_entries(folder, state)
            self.tail = None
            self.lister = None
            self.listing_sha256: str | None = None
        else:
            self._legacy = None
            state = plan_io.scan(folder)
            self.tail = plan_io.PlanTail(folder)
            self.lister = None if state.complete else Lister(folder, self.header, self.wake)
            self.listing_sha256 = state.listing_sha256
        self.listed_at_start = state.count
        self._exhausted = False

    # --- the listing
    def start(self) -> None:
        if self.lister is not None:
            self.lister.start()

    def close(self) -> None:
        if self.lister is not None:
            self.lister.stop.set()
            if self.lister.ident is not None:
                self.lister.join(timeout=10)
            else:  # never started (the job ended before scoring)
                self.lister.writer.close()
        if self.tail is not None:
            self.tail.close()

    @property
    def listing_done(self) -> bool:
        return self.lister is None or self.lister.done

    @property
    def listed(self) -> int:
        return self.listed_at_start if self.lister is None else self.lister.count

    def listing_hash(self) -> str | None:
        if self.lister is not None:
            return self.lister.listing_sha256
        return self.listing_sha256

    def _check(self) -> None:
        if self.lister is not None and self.lister.error is not None:
            raise self.lister.error

    # --- units
    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def __getitem__(self, unit: int) -> list[str]:
        return self.units[unit]

    def key(self, unit: int) -> list[str]:
        """What a unit's commit fingerprint names: its files, or its range of one file."""
        rng = self.ranges.get(unit)
        return [range_key(rng)] if rng is not None else self.units[unit]

    def first_index(self, unit: int) -> int | None:
        return self.first.get(unit)

    def release(self, unit: int) -> None:
        files = self.units.pop(unit, None)
        self.first.pop(unit, None)
        if files is not None:
            self.outstanding_files -= len(files)

    def _next_files(self, wait: bool) -> tuple[list[storage.Entry], bool] | None:
        """(the next chunk's entries, whether they are the last), or None when the chunk is not all listed."""
        if self._legacy is not None:
            out = []
            for entry in self._legacy:
                out.append(entry)
                if len(out) >= self.chunk:
                    break
            return out, len(out) < self.chunk
        assert self.tail is not None
        with self.wake:
            while True:
                self._check()
                available = self.listed - self.planned_files
                done = self.listing_done
                if available >= self.chunk or done:
                    break
                if not wait:
                    return None
                self.wake.wait(0.5)
        self._check()
        return self.tail.read(self.chunk), done and available <= self.chunk

    def _plan_chunk(self, wait: bool) -> list[int] | None:
        got = self._next_files(wait)
        if got is None:
            return None
        entries, last = got
        if last:
            self._exhausted = True
        if not entries:
            return []
        if self.amended:
            entries = [self.amended.get(e[0], e) for e in entries]
        if self.reuse is not None:
            groups = self.reuse.split(entries)
        else:
            groups = [Group(entries, None, [])]
        pending: list[int] = []
        index = self.planned_files
        for group in groups:
            if group.hits is not None:  # found in an earlier job's results: not scored
                for entry, sha, cached in zip(group.entries, group.shas, group.hits, strict=True):
                    assert self.reuse is not None
                    self.on_reused(self.reuse.hit(entry, sha, cached))
                index += len(group.entries)
                continue
            pending += self._plan_run(group, index)
            index += len(group.entries)
        self.planned_files += len(entries)
        if self.reuse is not None:
            self.reuse.flush()
        return pending

    def _plan_run(self, group: Group, index: int) -> list[int]:
        """Units for consecutive files to score: mini-batches, and the row ranges of big files."""
        entries = group.entries
        files = [e[0] for e in entries]
        sizes = {e[0]: e[1] for e in entries if e[1] is not None}
        s = self.settings
        plan = plan_units(
            self.root,
            files,
            s.mini_batch_size,
            s.workers,
            s.split,
            s.split_enabled,
            s.cheap_predict,
            sizes=sizes if len(sizes) == len(files) else None,
        )
        for note in plan.notes:
            self.notes(note)
        base = self.planned_units
        new_ranges = {base + i: rng for i, rng in plan.ranges.items()}
        self.ranges.update(new_ranges)
        self.ledger.extend(new_ranges)
        pending = []
        pos = 0  # the unit's first file within the run
        for i, unit_files in enumerate(plan.units):
            unit = base + i
            rng = new_ranges.get(unit)
            key = [range_key(rng)] if rng is not None else unit_files
            counted = 1 if rng is None or rng.index == rng.count - 1 else 0
            n_files = len(unit_files) if rng is None else counted
            if self.reuse is not None:
                self.reuse.unit(unit, n_files, group.shas[pos : pos + n_files] if group.shas else [])
            commit = self.committed.pop(unit, None)
            if (
                commit is not None
                and rng is None  # a range's commit is kept only with its whole file: ranges are scored again
                and commit.failed == 0
                and commit.fingerprint == fingerprint(self.job, unit, key)
                and not (self.stale and self.stale.intersection(unit_files))  # changed since it was scored
            ):
                self.keep(unit, commit, index + pos, len(unit_files))
                self.kept += 1
            else:
                if commit is not None:
                    self.discard(unit)
                self.units[unit], self.first[unit] = unit_files, index + pos
                self.outstanding_files += len(unit_files)
                pending.append(unit)
            pos += n_files
        self.planned_units += len(plan.units)
        return pending

    def prime(self) -> list[int]:
        """The first units to run: blocks until the first chunk is listed (or the listing has ended)."""
        pending: list[int] = []
        while not self._exhausted and not pending:
            pending += self._plan_chunk(wait=True) or []
        return pending

    def take(self) -> list[int]:
        """More units when fewer than a chunk's files wait (never blocks)."""
        if self._exhausted:
            return []
        self._check()
        pending: list[int] = []
        while not self._exhausted and self.outstanding_files < self.chunk:
            more = self._plan_chunk(wait=False)
            if more is None:
                break
            pending += more
        return pending

    def progress(self) -> dict[str, Any]:
        return {"files": self.listed, "listing": not self.listing_done, "mini_batches": self.planned_units}
