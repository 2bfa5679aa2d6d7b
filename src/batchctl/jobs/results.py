"""Durable progress: each mini-batch's result is committed once under `jobs/<J>/results/` before the
journal counts it, with a fingerprint of (job, mini-batch index, its files). A job that ends Failed or
Canceled, or whose driver is killed, keeps these commits, so `job resume` scores only what is missing
and publishes every row exactly once.

The commits are lines of one append-only log, `results/commits.jsonl` (group commit, issue 26): the
results that arrive together are staged (each part file renamed into `results/`), then their lines are
written at once and the log fsynced once for the whole group (`ResultStore.flush`). One thread makes the
log's writes (`_Writer`), so the driver's loop never waits for an fsync: what is handed over while one is
in flight goes out with the next, and `sync()` waits until everything handed over is durable. A line names its part
file and that file's size; a commit whose part is missing or of another size is ignored, and so is a torn
last line, so a crash at any point leaves commits that are whole or absent. A later line for the same
mini-batch replaces an earlier one, and `{"discard": N}` withdraws mini-batch N's commit.

Only the log is fsynced, not the folder after each rename: a power cut that loses a part's rename, or
the part's bytes (workers do not fsync them), leaves a line whose part is missing or of another size,
and that mini-batch is scored again. Nothing wrong is ever published; at worst something is re-scored.

Jobs written before the log kept one `NNNNNNNN.json` record per mini-batch (written with its own fsyncs);
those are still read, and the log's lines come after them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batchctl.fsutil import fsync_dir

RESULTS_DIR = "results"
COMMIT_LOG = "commits.jsonl"


def fingerprint(job: str, batch: int, files: list[str]) -> str:
    return hashlib.sha256(json.dumps([job, batch, files], ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Commit:
    batch: int
    fingerprint: str
    attempt: int
    succeeded: int
    failed: int
    rows: int
    part: str | None  # the rows' file name under results/ (None: the mini-batch gave no rows)
    file_rows: list[list[Any]] | None = None  # [file, rows] of each succeeded file (jobs/reuse.py)
    size: int | None = None  # the part's size (None in the per-mini-batch records of earlier versions)

    def line(self) -> str:
        # built by hand: dataclasses.asdict deep-copies file_rows, 25 ms for a mini-batch of 500 files
        fields = {
            "batch": self.batch,
            "fingerprint": self.fingerprint,
            "attempt": self.attempt,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "rows": self.rows,
            "part": self.part,
            "size": self.size,
            "file_rows": self.file_rows,
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"


def _parse(text: str | bytes) -> Commit | int | None:
    """A log line or an earlier version's record: a Commit, the mini-batch a discard line names, or None
    (unreadable: a torn last line)."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and set(data) == {"discard"} and isinstance(data["discard"], int):
            return int(data["discard"])
        return Commit(**data)
    except (ValueError, TypeError):
        return None


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.root = folder / RESULTS_DIR
        self.log_path = self.root / COMMIT_LOG
        self._log: IO[bytes] | None = None
        self._staged: list[Commit] = []
        self._offsets: dict[int, int] | None = None  # mini-batch -> offset of its last line (read())
        self._writer = _Writer(self._write)

    def _record(self, batch: int) -> Path:
        return self.root / f"{batch:08d}.json"

    def part_path(self, commit: Commit) -> str | None:
        return str(self.root / commit.part) if commit.part else None

    def part_of(self, batch: int) -> str:
        return str(self.root / f"{batch:08d}.part")

    # -- writing

    def stage(
        self,
        job: str,
        batch: int,
        files: list[str],
        attempt: int,
        counts: tuple[int, int, int],
        part: str | None,
        file_rows: list[tuple[str, int]] | None = None,
    ) -> Commit:
        """Move the attempt's part file in; its commit line is written by the next `flush()` (the line is
        what counts: a part without one is ignored)."""
        self.root.mkdir(exist_ok=True)
        name, size = None, None
        if part:
            name = f"{batch:08d}.part"
            os.replace(part, self.root / name)
            size = os.path.getsize(self.root / name)
        succeeded, failed, rows = counts
        rows_of = [list(fr) for fr in file_rows] if file_rows is not None else None
        commit = Commit(batch, fingerprint(job, batch, files), attempt, succeeded, failed, rows, name, rows_of, size)
        self._staged.append(commit)
        return commit

    def flush(self) -> int:
        """Hand every staged result's line to the log's writer: written at once, then one fsync (`sync()`
        waits for it). Returns how many were handed over."""
        staged, self._staged = self._staged, []
        if staged:
            self._writer.hand("".join(commit.line() for commit in staged).encode())
        return len(staged)

    def sync(self) -> None:
        """Until every line handed over is written and fsynced (raises the writer's error, if any)."""
        self._writer.sync()

    def discard(self, batch: int) -> None:
        """Withdraw a mini-batch's commit (it is scored again): a durable discard line, its files removed."""
        self.flush()
        self._writer.hand((json.dumps({"discard": batch}) + "\n").encode())
        self.sync()
        for path in (self._record(batch), self.root / f"{batch:08d}.part"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _write(self, data: bytes) -> None:
        """In the writer's thread: one append, one fsync."""
        log = self._open_log()
        offset = log.tell()
        log.write(data)
        log.flush()
        os.fsync(log.fileno())
        if self._offsets is not None:
            self._index(data, offset)

    def _open_log(self) -> IO[bytes]:
        if self._log is None:
            self.root.mkdir(exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the job's appends, closed by close()
            if log.tell() > 0:
                with open(self.log_path, "rb") as check:
                    check.seek(-1, os.SEEK_END)
                    if check.read(1) != b"\n":  # a line torn by a crash: end it, so it stays one bad line
                        log.write(b"\n")
            else:  # the log's own name, durable once (the parts' renames need not be: see the docstring)
                fsync_dir(self.root)
            self._log = log
        return self._log

    def close(self) -> None:
        """Commits what is staged, then closes the log (raises the writer's error, if any)."""
        self.flush()
        try:
            self.sync()
        finally:
            self._writer.stop()
            self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- reading

    def _entries(self) -> Iterator[Commit | int]:
        """Every commit and discard in the order they were made: an earlier version's records, then the log."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.json")):
            try:
                legacy = _parse(path.read_bytes())
            except OSError:
                continue
            if isinstance(legacy, Commit):
                yield legacy
        try:
            handle = open(self.log_path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                entry = _parse(line) if line.endswith(b"\n") else None
                if entry is not None:
                    yield entry

    def _valid(self, commit: Commit) -> bool:
        """Its part file is there, whole (the size the line recorded)."""
        if not commit.part:
            return True
        try:
            size = (self.root / commit.part).stat().st_size
        except OSError:
            return False
        return commit.size is None or size == commit.size

    def load_all(self) -> dict[int, Commit]:
        """Every commit in force whose part file is present (the plan checks the fingerprints as it is
        read, jobs/feed.py)."""
        self.flush()
        self.sync()
        latest: dict[int, Commit] = {}
        for entry in self._entries():
            if isinstance(entry, int):
                latest.pop(entry, None)
            else:
                latest[entry.batch] = entry
        return {batch: commit for batch, commit in sorted(latest.items()) if self._valid(commit)}

    def load(self, job: str, batches: list[list[str]]) -> dict[int, Commit]:
        """The valid commits: fingerprint matching this job's mini-batch and its part file present."""
        return {
            batch: commit
            for batch, commit in self.load_all().items()
            if 0 <= batch < len(batches) and commit.fingerprint == fingerprint(job, batch, batches[batch])
        }

    def read(self, batch: int) -> Commit | None:
        """One mini-batch's commit in force (after publishing, jobs/reuse.py: the log is indexed once)."""
        self.flush()
        self.sync()
        if self._offsets is None:
            self._offsets = {}
            with contextlib.suppress(FileNotFoundError), open(self.log_path, "rb") as handle:
                self._index(handle.read(), 0)
        offset = self._offsets.get(batch)
        if offset is None:
            legacy = _parse(self._record(batch).read_bytes()) if self._record(batch).is_file() else None
            return legacy if isinstance(legacy, Commit) else None
        if offset < 0:  # discarded
            return None
        with open(self.log_path, "rb") as handle:
            handle.seek(offset)
            entry = _parse(handle.readline())
        return entry if isinstance(entry, Commit) else None

    def _index(self, data: bytes, start: int) -> None:
        assert self._offsets is not None
        offset = start
        for line in data.splitlines(keepends=True):
            if line.endswith(b"\n"):
                entry = _parse(line)
                if isinstance(entry, Commit):
                    self._offsets[entry.batch] = offset
                elif isinstance(entry, int):
                    self._offsets[entry] = -1
            offset += len(line)

    def clear(self) -> None:
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)


class _Writer:
    """The commit log's appends, made by one thread: `hand(data)` never waits, `sync()` waits until all
    that was handed over is written and fsynced. What is handed over while a write is in flight is joined
    into the next write (group commit)."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._cv = threading.Condition()
        self._queue: list[bytes] = []
        self._handed = 0
        self._done = 0
        self._error: BaseException | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def hand(self, data: bytes) -> None:
        with self._cv:
            self._raise()
            self._queue.append(data)
            self._handed += 1
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="batchctl-commit-log", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def sync(self) -> None:
        with self._cv:
            while self._done < self._handed and self._error is None:
                self._cv.wait()
            self._raise()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if not self._queue:
                    return
                chunks, self._queue = self._queue, []
            try:
                self._write(b"".join(chunks))
            except BaseException as exc:  # handed to whoever waits: sync() raises it
                with self._cv:
                    self._error = exc
                    self._cv.notify_all()
                return
            with self._cv:
                self._done += len(chunks)
                self._cv.notify_all()
