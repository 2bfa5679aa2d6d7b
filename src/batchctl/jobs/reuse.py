"""Incremental re-scoring (`--reuse`, the `batchctl.reuse` property): a job reuses the per-file results of
an earlier Completed job of its deployment when everything that decides a file's result is unchanged.

The key has two parts, and a cached result is used only when both match exactly:
- the job's key (`job_key`): the model's sha256, the code snapshot's sha256 and scoring script, the
  deployment's environment variables (as written, references unresolved), the environment
  (`environment_key`: an isolated environment's key and lock file sha256, else the interpreter and the
  package versions that matter, with the key of the environment asked for), the scorer kind, and
  the settings that change the rows: output action, output format, keep-columns (and, for a scoring
  script, the mini-batch size, which must be 1: a script's rows are per mini-batch, not per file);
- the file's content: its size and stamp (mtime in ns locally, the ETag on a store) in `stamp` mode, or
  the sha256 of its bytes in `sha256` mode (which reads every input once in the driver).

A reuse job keeps its committed parts (`jobs/<J>/results/`) and writes `jobs/<J>/reuse/index.jsonl`, one
line per file in plan order: [path, size, stamp, sha256, source job, part, offset, length, rows]. The next
job reads the newest matching index as a stream beside its own plan (both are in plan order), so memory
stays flat. The files it finds are not scored: their rows are copied from the part that holds them; the
other files are scored in mini-batches cut from each run of consecutive new files, so every scored part
is one contiguous block of the output. `segments.jsonl` records that order for the publisher. Row numbers
are per file, so the results file is byte for byte the one a cold run writes.

Not reused (scored every time): a file that failed, a file cut into row ranges, a mini-batch whose CSV
rows hold line breaks (its per-file rows cannot be found by counting lines), Parquet results (their row
groups follow the mini-batches, so reused rows would change the file's bytes) and summary_only jobs.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batchctl import storage
from batchctl.jobs import plan as plan_io
from batchctl.jobs.model import JobRecord, JobState
from batchctl.workspace import content_hash

REUSE_DIR = "reuse"
INDEX_FILE = "index.jsonl"
SEGMENTS_FILE = "segments.jsonl"
SOURCE_FILE = "source.json"
INDEX_VERSION = 1


def environment_key(env: dict[str, Any] | None = None) -> dict[str, Any]:
    """What of the environment decides a result, from the job's record of the environment it ran in
    (`record.environment`, issue 22; filled by jobs/environment.prepare before the job's key is made):
    - an isolated environment: its key (the spec: requirements, worker packages, constraints, Python) and
      the sha256 of its lock file (the exact releases installed);
    - this interpreter (no environment named, or `used: local`): Python and the versions of the packages
      that score, plus the key of the environment the deployment asked for, when it named one."""
    if env is not None and env.get("used") == "isolated":
        return {"used": "isolated", "key": env.get("key"), "lock_sha256": env.get("lock_sha256")}
    from batchctl.tracking.lineage import package_versions

    out: dict[str, Any] = {"python": platform.python_version(), "packages": package_versions()}
    if env is not None:
        out.update(used=env.get("used"), key=env.get("key"))
    return out


def unavailable(record: JobRecord) -> str | None:
    """Why this job cannot reuse results (None: it can)."""
    s = record.settings
    if s.output_action != "append_row" or s.output_file_name is None:
        return "summary_only jobs write no rows to reuse"
    if s.output_format == "parquet":
        return "Parquet results are written as the mini-batches' row groups, so reused rows would change the bytes"
    if record.deployment_snapshot.code_dir and s.mini_batch_size != 1:
        return "a scoring script's rows belong to its mini-batch, not to one file: reuse needs mini_batch_size 1"
    return None


def job_key(record: JobRecord, model_sha256: str | None = None) -> tuple[str, dict[str, Any]]:
    """(sha256, the parts it covers) of what decides every file's result in this job."""
    snap = record.deployment_snapshot
    s = record.settings
    parts: dict[str, Any] = {
        "version": INDEX_VERSION,
        "model_sha256": model_sha256 or content_hash(Path(snap.model_path)),
        "code_sha256": content_hash(Path(snap.code_dir)) if snap.code_dir else None,
        "scoring_script": snap.scoring_script,
        "environment_variables": dict(sorted(snap.environment_variables.items())),
        "environment": environment_key(record.environment),
        "kind": "script" if snap.code_dir else "mlflow",
        "output_action": s.output_action,
        "output_format": s.output_format,
        "keep_columns": list(s.keep_columns),
        "mini_batch_size": s.mini_batch_size if snap.code_dir else None,
    }
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest(), parts


def _index_header(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            head = json.loads(handle.readline())
        return head if isinstance(head, dict) else None
    except (OSError, ValueError):
        return None


def find_source(jobs_dir: Path, record: JobRecord, key: str, root_url: str) -> str | None:
    """The newest Completed job of the same deployment whose index has this key and input root."""
    from batchctl.jobs import records

    best: tuple[str, str] | None = None
    for folder in jobs_dir.iterdir() if jobs_dir.is_dir() else []:
        if folder.name == record.name:
            continue
        head = _index_header(folder / REUSE_DIR / INDEX_FILE)
        if head is None or head.get("key") != key or head.get("root") != root_url:
            continue
        other = records.read(folder)
        if (
            other is None
            or other.status is not JobState.COMPLETED
            or (other.endpoint_name, other.deployment_name) != (record.endpoint_name, record.deployment_name)
        ):
            continue
        stamp = other.end_time or other.created_at
        if best is None or stamp > best[0]:
            best = (stamp, other.name)
    return best[1] if best else None


class _IndexCursor:
    """A source index read alongside the plan: both are in plan order, so one pass finds every entry."""

    def __init__(self, path: Path | None) -> None:
        self.lines: Iterator[bytes] = iter(())
        self.handle: IO[bytes] | None = None
        if path is not None and path.is_file():
            self.handle = open(path, "rb")  # noqa: SIM115
            self.handle.readline()
            self.lines = iter(self.handle)
        self.current: list[Any] | None = None
        self._advance()

    def _advance(self) -> None:
        for line in self.lines:
            if line.endswith(b"\n"):
                self.current = json.loads(line)
                return
        self.current = None

    def find(self, rel: str) -> list[Any] | None:
        while self.current is not None and self.current[0] < rel:
            self._advance()
        if self.current is not None and self.current[0] == rel:
            return self.current
        return None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


@dataclass
class Group:
    """Consecutive plan entries: all found in the cache (`hits`, their index entries) or all to score."""

    entries: list[storage.Entry]
    hits: list[list[Any]] | None
    shas: list[str | None]


class Reuse:
    """One job's reuse: which files are found, the output's order, and the index the job leaves."""

    def __init__(self, jobs_dir: Path, folder: Path, record: JobRecord, root: storage.Location, model_sha: str | None):
        self.jobs_dir = jobs_dir
        self.folder = folder
        self.job = record.name
        self.mode = record.settings.reuse
        self.root = root
        self.key, self.key_parts = job_key(record, model_sha)
        (folder / REUSE_DIR).mkdir(exist_ok=True)
        source_file = folder / REUSE_DIR / SOURCE_FILE
        chosen: dict[str, Any] = {}
        if source_file.is_file():  # a resumed job keeps the source its first attempt chose
            chosen = json.loads(source_file.read_text())
        if chosen.get("key") != self.key:
            chosen = {"key": self.key, "source": find_source(jobs_dir, record, self.key, root.url)}
            source_file.write_text(json.dumps(chosen))
        self.source: str | None = chosen["source"]
        index = jobs_dir / self.source / REUSE_DIR / INDEX_FILE if self.source else None
        self.cursor = _IndexCursor(index)
        self.segments = open(folder / REUSE_DIR / SEGMENTS_FILE, "w", encoding="utf-8")  # noqa: SIM115
        self.parts_present: dict[str, bool] = {}
        self.reused = 0
        self.reused_from: set[str] = set()

    def close(self) -> None:
        self.cursor.close()
        if not self.segments.closed:
            self.segments.close()

    def _sha(self, rel: str) -> str | None:
        from batchctl.tracking.lineage import hash_location

        try:
            return hash_location(self.root.join(rel))
        except Exception:  # unreadable now: never a hit; the worker reports the file
            return None

    def _usable(self, cached: list[Any] | None, entry: storage.Entry, sha: str | None) -> bool:
        if cached is None:
            return False
        _rel, size, stamp = entry
        if self.mode == "sha256":
            if sha is None or cached[3] != sha:
                return False
        elif stamp is None or cached[1] != size or cached[2] != stamp:
            return False
        part = cached[5]
        if part not in self.parts_present:
            self.parts_present[part] = (self.jobs_dir / part).is_file()
        return self.parts_present[part]

    def split(self, entries: list[storage.Entry]) -> list[Group]:
        groups: list[Group] = []
        for entry in entries:
            sha = self._sha(entry[0]) if self.mode == "sha256" else None
            cached = self.cursor.find(entry[0])
            hit = cached if self._usable(cached, entry, sha) else None
            if groups and (groups[-1].hits is not None) == (hit is not None):
                group = groups[-1]
            else:
                group = Group([], [] if hit is not None else None, [])
                groups.append(group)
            group.entries.append(entry)
            group.shas.append(sha)
            if hit is not None:
                assert group.hits is not None
                group.hits.append(hit)
        return groups

    def hit(self, entry: storage.Entry, sha: str | None, cached: list[Any]) -> int:
        """Record a reused file in the output order; returns its rows."""
        rel, size, stamp = entry
        src, part, offset, length, rows = cached[4], cached[5], cached[6], cached[7], cached[8]
        # the rows stay with the sha256 of the bytes they were computed from (a stamp-mode job carries it)
        sha = sha if sha is not None else cached[3]
        self.segments.write(json.dumps(["h", rel, size, stamp, sha, src, part, offset, length, rows]) + "\n")
        self.reused += 1
        self.reused_from.add(src)
        return int(rows)

    def unit(self, unit: int, files: int, shas: list[str | None]) -> None:
        self.segments.write(json.dumps(["u", unit, files, shas if self.mode == "sha256" else None]) + "\n")

    def flush(self) -> None:
        self.segments.flush()

    def lineage(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "key": self.key,
            "source_job": self.source,
            "reused_from": sorted(self.reused_from),
            "items_reused": self.reused,
        }

    # --- publishing
    def _segments(self) -> Iterator[list[Any]]:
        with open(self.folder / REUSE_DIR / SEGMENTS_FILE, encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)

    def ordered_parts(self, ok: Any, skip: set[int], shift_of: Any) -> list[tuple[str, int, int, int | None]]:
        """(file, row shift, offset, length) in output order: reused slices and scored parts."""
        out: list[tuple[str, int, int, int | None]] = []
        for seg in self._segments():
            if seg[0] == "h":
                path, offset, length = str(self.jobs_dir / seg[6]), int(seg[7]), int(seg[8])
                last = out[-1] if out else None
                if last is not None and last[0] == path and last[3] is not None and last[2] + last[3] == offset:
                    out[-1] = (path, 0, last[2], last[3] + length)  # contiguous in the same part: one copy
                else:
                    out.append((path, 0, offset, length))
                continue
            unit = seg[1]
            if unit in skip or unit not in ok:
                continue
            shift = shift_of(unit)
            part = ok[unit]
            if part:
                out.append((part, shift, 0, None))
        return out

    def write_index(self, ok: Any, commits: Any, ranges: dict[int, Any], failed_units: set[int]) -> int:
        """This job's index: every file whose rows are known, in plan order. Returns the entries written."""
        target = self.folder / REUSE_DIR / INDEX_FILE
        tmp = target.with_suffix(".tmp")
        written = 0
        plan_entries = plan_io.iter_entries(self.folder)
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(json.dumps({"version": INDEX_VERSION, "key": self.key, "root": self.root.url}) + "\n")
            for seg in self._segments():
                if seg[0] == "h":
                    next(plan_entries)
                    _h, rel, size, stamp, sha, src, part, offset, length, rows = seg
                    out.write(json.dumps([rel, size, stamp, sha, src, part, offset, length, rows]) + "\n")
                    written += 1
                    continue
                _u, unit, n_files, shas = seg
                files = [next(plan_entries) for _ in range(n_files)]
                if not files or unit in ranges or unit in failed_units or unit not in ok:
                    continue
                commit = commits(unit)
                for i, (entry, offset, length, rows) in enumerate(self._slices(unit, ok[unit], commit, files)):
                    sha = shas[i] if shas else None
                    part = f"{self.job}/results/{unit:08d}.part"
                    out.write(json.dumps([*entry, sha, self.job, part, offset, length, rows]) + "\n")
                    written += 1
        os.replace(tmp, target)
        return written

    def _slices(
        self, unit: int, part: str | None, commit: Any, files: list[storage.Entry]
    ) -> Iterator[tuple[storage.Entry, int, int, int]]:
        """(entry, offset, length, rows) of each scored file of a unit whose per-file rows are known."""
        if commit is None:
            return
        if commit.file_rows is None:  # a scoring script, one file per mini-batch: the part is its rows
            if len(files) == 1 and commit.failed == 0:
                yield files[0], 0, os.path.getsize(part) if part else 0, commit.rows
            return
        rows_of = {name: rows for name, rows in commit.file_rows}
        if len(rows_of) != len(commit.file_rows):
            return
        spans: list[tuple[int, int]] = []
        if part:
            with open(part, "rb") as handle:
                offsets = [0]
                for text in handle:
                    offsets.append(offsets[-1] + len(text))
            if len(offsets) - 1 != sum(rows_of.values()):
                return  # a row holds a line break: the files' rows cannot be told apart by lines
            line = 0
            for _name, rows in commit.file_rows:
                spans.append((offsets[line], offsets[line + rows] - offsets[line]))
                line += rows
        elif sum(rows_of.values()):
            return
        position = {name: i for i, (name, _rows) in enumerate(commit.file_rows)}
        for entry in files:
            i = position.get(entry[0])
            if i is None:
                continue  # failed: scored again next time
            offset, length = spans[i] if spans else (0, 0)
            yield entry, offset, length, rows_of[entry[0]]
