"""Durable progress: each mini-batch's result is committed once under `jobs/<J>/results/` before the
journal counts it, with a fingerprint of (job, mini-batch index, its files). A job that ends Failed or
Canceled, or whose driver is killed, keeps these commits, so `job resume` scores only what is missing
and publishes every row exactly once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from batchctl.fsutil import atomic_write_json

RESULTS_DIR = "results"


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


class ResultStore:
    def __init__(self, folder: Path) -> None:
        self.root = folder / RESULTS_DIR

    def _record(self, batch: int) -> Path:
        return self.root / f"{batch:08d}.json"

    def part_path(self, commit: Commit) -> str | None:
        return str(self.root / commit.part) if commit.part else None

    def part_of(self, batch: int) -> str:
        return str(self.root / f"{batch:08d}.part")

    def read(self, batch: int) -> Commit | None:
        try:
            return Commit(**json.loads(self._record(batch).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def commit(
        self,
        job: str,
        batch: int,
        files: list[str],
        attempt: int,
        counts: tuple[int, int, int],
        part: str | None,
        file_rows: list[tuple[str, int]] | None = None,
    ) -> Commit:
        """Move the attempt's part file in, then write the commit record (the record is what counts)."""
        self.root.mkdir(exist_ok=True)
        name = None
        if part:
            name = f"{batch:08d}.part"
            os.replace(part, self.root / name)
        succeeded, failed, rows = counts
        record = Commit(
            batch,
            fingerprint(job, batch, files),
            attempt,
            succeeded,
            failed,
            rows,
            name,
            [list(fr) for fr in file_rows] if file_rows is not None else None,
        )
        atomic_write_json(self._record(batch), asdict(record))
        return record

    def load_all(self) -> dict[int, Commit]:
        """Every readable commit whose part file is present (the plan checks the fingerprints as it is
        read, jobs/feed.py)."""
        out: dict[int, Commit] = {}
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*.json")):
            try:
                commit = Commit(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if commit.part and not (self.root / commit.part).is_file():
                continue
            out[commit.batch] = commit
        return out

    def load(self, job: str, batches: list[list[str]]) -> dict[int, Commit]:
        """The valid commits: fingerprint matching this job's mini-batch and its part file present."""
        out: dict[int, Commit] = {}
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*.json")):
            try:
                commit = Commit(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if not 0 <= commit.batch < len(batches):
                continue
            if commit.fingerprint != fingerprint(job, commit.batch, batches[commit.batch]):
                continue
            if commit.part and not (self.root / commit.part).is_file():
                continue
            out[commit.batch] = commit
        return out

    def discard(self, batch: int) -> None:
        for path in (self._record(batch), self.root / f"{batch:08d}.part"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
