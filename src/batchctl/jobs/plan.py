"""plan.jsonl: the job's input listing, written in chunks as it is read, never as one JSON document.

    {"plan": 2, "root_url": ..., "root_protocol": ..., "input_type": ..., "basis": "path,size,mtime_ns"}
    ["a/1.csv",120,1733212345000000000]          one line per file, in scoring order (sorted by path)
    ...
    {"end": 2, "listing_sha256": "..."}          once the listing is complete
    {"amend": 3, "entries": [["a/1.csv",...]]}   a resumed job's files that changed since the last attempt

The entries and the amendments after them are the listing the job's last attempt scored (`listing()`):
a resumed job compares it with the input as it is then (jobs/listing.py), scores again the files that
changed or went away, and appends their new entries as one amendment line.

An entry line is exactly what the lineage's listing hash covers (`tracking/lineage.py`), so the hash is the
sha256 of the entry lines. A line is appended whole (a chunk of lines per write); a reader ignores a last
line without its newline (a runner killed mid-write), and the listing goes on after the last whole entry.

Submit lists up to STREAM_AT files; a longer listing goes on in the job's runner while the first
mini-batches are scored (jobs/feed.py). Jobs written by earlier versions have plan.json (one document),
read here as a complete plan.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from batchctl.storage import Entry, Location

PLAN_FILE = "plan.jsonl"
LEGACY_PLAN_FILE = "plan.json"
PLAN_VERSION = 2
STREAM_AT = 10_000  # submit lists at most this many files; the runner lists the rest while scoring
AMEND = "amend"  # a line {"amend": attempt, "entries": [...]}: files found changed when a job was resumed


def entry_line(entry: Entry) -> bytes:
    return json.dumps(list(entry), separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class PlanHeader:
    root_url: str
    root_protocol: str
    input_type: str
    basis: str
    legacy: bool = False

    @property
    def root(self) -> Location:
        return Location(self.root_url, self.root_protocol)


def plan_exists(folder: Path) -> bool:
    return (folder / PLAN_FILE).is_file() or (folder / LEGACY_PLAN_FILE).is_file()


def read_header(folder: Path) -> PlanHeader:
    path = folder / PLAN_FILE
    if not path.is_file():
        data = json.loads((folder / LEGACY_PLAN_FILE).read_bytes())
        return PlanHeader(data["root_url"], data["root_protocol"], data["input_type"], "", legacy=True)
    with open(path, "rb") as handle:
        data = json.loads(handle.readline())
    return PlanHeader(data["root_url"], data["root_protocol"], data["input_type"], data.get("basis", ""))


@dataclass
class PlanState:
    """What a read of the plan found: entries, whether the listing ended, and its hash."""

    count: int = 0
    complete: bool = False
    last: str | None = None
    listing_sha256: str | None = None
    valid_bytes: int = 0  # where the whole lines end


def _parse(line: bytes) -> Any:
    return json.loads(line)


def iter_entries(folder: Path, state: PlanState | None = None) -> Iterator[Entry]:
    """The plan's entries in order; `state` (when given) says afterwards whether the listing was complete."""
    state = state if state is not None else PlanState()
    path = folder / PLAN_FILE
    if not path.is_file():
        data = json.loads((folder / LEGACY_PLAN_FILE).read_bytes())
        for rel in data["files"]:
            state.count += 1
            state.last = rel
            yield rel, None, None
        state.complete = True
        return
    with open(path, "rb") as handle:
        header = handle.readline()
        state.valid_bytes = len(header)
        for line in handle:
            if not line.endswith(b"\n"):
                break  # cut short by a killed writer: the listing goes on from the entry before
            value = _parse(line)
            if isinstance(value, dict):
                state.valid_bytes += len(line)
                if AMEND in value:  # a later attempt's record of files that changed (not an entry)
                    continue
                state.complete = True
                state.listing_sha256 = value.get("listing_sha256")
                break
            state.count += 1
            state.last = value[0]
            state.valid_bytes += len(line)
            yield value[0], value[1], value[2]


def scan(folder: Path, digest: Any = None) -> PlanState:
    """The plan's state without parsing every entry (a resumed job of millions of files): whole lines
    counted, the last entry and the end line parsed; `digest` (a hashlib object) gets every entry line."""
    state = PlanState()
    path = folder / PLAN_FILE
    if not path.is_file():
        for _ in iter_entries(folder, state):
            pass
        return state
    last_entry = b""
    with open(path, "rb") as handle:
        state.valid_bytes = len(handle.readline())
        for line in handle:
            if not line.endswith(b"\n"):
                break
            if line.startswith(b"{"):
                record = json.loads(line)
                state.valid_bytes += len(line)
                if AMEND not in record:  # the end line (amendments may follow it)
                    state.complete = True
                    state.listing_sha256 = record.get("listing_sha256")
                continue
            if digest is not None:
                digest.update(line)
            state.count += 1
            state.valid_bytes += len(line)
            last_entry = line
    if last_entry:
        state.last = json.loads(last_entry)[0]
    return state


def files(folder: Path) -> Iterator[str]:
    for rel, _size, _stamp in iter_entries(folder):
        yield rel


def count(folder: Path) -> PlanState:
    state = PlanState()
    for _ in iter_entries(folder, state):
        pass
    return state


class PlanWriter:
    """Appends entries to plan.jsonl in chunks and keeps the listing hash over them."""

    def __init__(self, folder: Path, header: PlanHeader | None = None) -> None:
        path = folder / PLAN_FILE
        self.digest = hashlib.sha256()
        self.count = 0
        self.last: str | None = None
        if header is not None:  # a new plan
            self.handle: IO[bytes] = open(path, "wb")  # noqa: SIM115
            head = {
                "plan": PLAN_VERSION,
                "root_url": header.root_url,
                "root_protocol": header.root_protocol,
                "input_type": header.input_type,
                "basis": header.basis,
            }
            self.handle.write(json.dumps(head).encode() + b"\n")
            self.handle.flush()
            return
        # continuing a listing: hash what is there, drop a half-written last line
        state = scan(folder, self.digest)
        self.count, self.last = state.count, state.last
        self.handle = open(path, "r+b")  # noqa: SIM115
        self.handle.truncate(state.valid_bytes)
        self.handle.seek(state.valid_bytes)

    def add(self, entries: Iterable[Entry]) -> None:
        lines = []
        for entry in entries:
            line = entry_line(entry)
            self.digest.update(line)
            lines.append(line)
            self.last = entry[0]
        self.handle.write(b"".join(lines))
        self.handle.flush()
        self.count += len(lines)

    def end(self) -> str:
        """Mark the listing complete; returns its hash."""
        digest = self.digest.hexdigest()
        self.handle.write(json.dumps({"end": PLAN_VERSION, "listing_sha256": digest}).encode() + b"\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        return digest

    def close(self) -> None:
        self.handle.close()


def listing_hash_of(folder: Path) -> str | None:
    """The listing hash of a complete plan (None while the listing goes on)."""
    state = count(folder)
    return state.listing_sha256 if state.complete else None


class PlanTail:
    """Reads a plan's entries while another thread appends them: only whole lines, waiting for more."""

    def __init__(self, folder: Path) -> None:
        self.handle = open(folder / PLAN_FILE, "rb")  # noqa: SIM115
        self.pos = len(self.handle.readline())
        self.ended = False

    def read(self, limit: int) -> list[Entry]:
        """Up to `limit` whole entries that are there now (fewer when the writer is behind)."""
        out: list[Entry] = []
        while len(out) < limit and not self.ended:
            line = self.handle.readline()
            if not line.endswith(b"\n"):
                self.handle.seek(self.pos)  # a line being written: read it whole next time
                break
            self.pos += len(line)
            value = _parse(line)
            if isinstance(value, dict):
                if AMEND in value:
                    continue
                self.ended = True
                break
            out.append((value[0], value[1], value[2]))
        return out

    def close(self) -> None:
        self.handle.close()


def amendments(folder: Path) -> dict[str, Entry]:
    """The newest entry of each file an amendment line names (small: only files that changed on resume)."""
    out: dict[str, Entry] = {}
    path = folder / PLAN_FILE
    if not path.is_file():
        return out
    marker = b'{"' + AMEND.encode() + b'"'
    with open(path, "rb") as handle:
        for line in handle:
            if line.startswith(marker) and line.endswith(b"\n"):
                for rel, size, stamp in json.loads(line)["entries"]:
                    out[rel] = (rel, size, stamp)
    return out


def listing(folder: Path, overlay: dict[str, Entry] | None = None) -> Iterator[Entry]:
    """The plan's entries as the job's last attempt saw them: amended entries replace the listed ones."""
    overlay = amendments(folder) if overlay is None else overlay
    for entry in iter_entries(folder):
        yield overlay.get(entry[0], entry)


def amend(folder: Path, attempt: int, entries: list[Entry]) -> None:
    """Append an amendment line (whole, after the last whole line; fsynced)."""
    state = scan(folder)
    with open(folder / PLAN_FILE, "r+b") as handle:
        handle.truncate(state.valid_bytes)
        handle.seek(state.valid_bytes)
        line = {AMEND: attempt, "entries": [list(e) for e in entries]}
        handle.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def listing_sha256(folder: Path) -> str | None:
    """The hash of the listing the job's last attempt scored: the plan's own when nothing was amended."""
    overlay = amendments(folder)
    if not overlay:
        return listing_hash_of(folder)
    digest = hashlib.sha256()
    for entry in listing(folder, overlay):
        digest.update(entry_line(entry))
    return digest.hexdigest()
