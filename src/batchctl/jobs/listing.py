"""What changed in a job's input since its last attempt listed it (issue 23), read from plan.jsonl.

The plan holds the listing the job scored: [path, size, stamp] per file, and the amendment lines a resumed
job appended for files that changed (jobs/plan.py). A resume compares it with the input as it is now, in
one pass over both (they are in the same order: a plain string sort of the relative paths), holding only
the names that changed. Jobs of earlier versions: plan.json with input_listing.json (the listing of the
last attempt, rewritten here when it changes); plan.json alone knows no stamps (nothing is compared).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.errors import BatchctlError
from batchctl.fsutil import atomic_write_json
from batchctl.jobs import plan as plan_io
from batchctl.storage import Entry

LISTING_FILE = "input_listing.json"  # written by versions before 0.3 (tracking/lineage.py's LISTING_FILE)


@dataclass
class Changes:
    """Files added (in the input, not in the plan), changed (size or stamp) and removed since the last
    attempt; `now`: the new entries of the changed and removed files; `sha256`: the listing hash of the
    plan's files as they are now."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    now: list[Entry] = field(default_factory=list)
    sha256: str | None = None

    @property
    def touched(self) -> set[str]:
        return set(self.changed) | set(self.removed)

    def shown(self, kinds: tuple[str, ...] = ("added", "removed", "changed")) -> str:
        """ "added: a; changed: b, c" (five names per kind at most), or "" when nothing changed."""
        parts = []
        for kind in kinds:
            files = getattr(self, kind)
            if files:
                more = f" and {len(files) - 5} more" if len(files) > 5 else ""
                parts.append(f"{kind}: {', '.join(files[:5])}{more}")
        return "; ".join(parts)


def compare(before: Iterable[Entry], after: Iterator[Entry], complete: bool = True) -> Changes:
    """Merge the last attempt's listing with the current one (both sorted by path). Entries of `after`
    past the last of `before` count as added only when the plan's listing was `complete`."""
    out = Changes()
    digest = hashlib.sha256()
    nxt = next(after, None)
    for path, size, stamp in before:
        while nxt is not None and nxt[0] < path:
            out.added.append(nxt[0])
            nxt = next(after, None)
        if nxt is not None and nxt[0] == path:
            now: Entry = (path, nxt[1], nxt[2])
            nxt = next(after, None)
        else:
            now = (path, None, None)
        if now[1] is None:
            if size is not None:
                out.removed.append(path)
                out.now.append(now)
        elif (now[1], now[2]) != (size, stamp):
            out.changed.append(path)
            out.now.append(now)
        digest.update(plan_io.entry_line(now))
    while complete and nxt is not None:
        out.added.append(nxt[0])
        nxt = next(after, None)
    out.sha256 = digest.hexdigest()
    return out


def _before(folder: Path) -> tuple[str, Iterator[Entry], bool] | None:
    """(basis, the listing the last attempt scored, whether it is complete), or None when unknown."""
    legacy = folder / LISTING_FILE
    if legacy.is_file():
        data = json.loads(legacy.read_text())
        return data.get("basis", ""), ((e[0], e[1], e[2]) for e in data["entries"]), True
    header = plan_io.read_header(folder)
    if header.legacy:
        return None
    state = plan_io.scan(folder)
    return header.basis, plan_io.listing(folder), state.complete


def _now(header: plan_io.PlanHeader, folder: Path) -> tuple[str, Iterator[Entry]]:
    """The input's listing now, in plan order (empty when it is gone)."""
    if header.input_type == "uri_file":
        first = next(plan_io.files(folder), "")
        stream = storage.open_listing(header.root.join(first), "uri_file")
    else:
        stream = storage.open_listing(header.root, "uri_folder")
    return stream.basis, stream.entries


def changes_since_last_attempt(folder: Path) -> Changes | None:
    """What changed in job `folder`'s input since its last attempt; None when it cannot be told (a job of
    an earlier version without stamps, the input gone or unreadable, another kind of stamp)."""
    before = _before(folder)
    if before is None:
        return None
    basis, entries, complete = before
    header = plan_io.read_header(folder)
    try:
        now_basis, now = _now(header, folder)
        if now_basis != basis:
            return None
        return compare(entries, now, complete)
    except BatchctlError:
        return None
    except OSError:
        return None


def record(folder: Path, attempt: int, changes: Changes) -> None:
    """Keep the new entries of the changed files: an amendment line in plan.jsonl (input_listing.json
    rewritten for a job of an earlier version)."""
    if not changes.now:
        return
    legacy = folder / LISTING_FILE
    if legacy.is_file():
        data: dict[str, Any] = json.loads(legacy.read_text())
        new = {e[0]: list(e) for e in changes.now}
        data["entries"] = [new.get(e[0], e) for e in data["entries"]]
        atomic_write_json(legacy, data)
        return
    plan_io.amend(folder, attempt, changes.now)
