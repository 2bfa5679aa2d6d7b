"""plan.jsonl: appended in chunks, read back whole lines only; a writer killed mid-line leaves a plan
that the listing continues after its last whole entry."""

from __future__ import annotations

import hashlib
from pathlib import Path

from batchctl.jobs import plan as plan_io

HEADER = plan_io.PlanHeader("/data", "file", "uri_folder", "path,size,mtime_ns")


def test_chunks_then_end(tmp_path: Path) -> None:
    writer = plan_io.PlanWriter(tmp_path, HEADER)
    writer.add([("a.csv", 1, 10), ("b/é.csv", 2, 20)])
    writer.add([("c.csv", None, None)])
    digest = writer.end()
    writer.close()
    state = plan_io.PlanState()
    assert list(plan_io.iter_entries(tmp_path, state)) == [("a.csv", 1, 10), ("b/é.csv", 2, 20), ("c.csv", None, None)]
    assert state.complete and state.count == 3 and state.listing_sha256 == digest
    lines = (tmp_path / plan_io.PLAN_FILE).read_bytes().splitlines(keepends=True)
    assert digest == hashlib.sha256(b"".join(lines[1:-1])).hexdigest()
    assert plan_io.read_header(tmp_path) == HEADER


def test_a_half_written_line_is_dropped_and_the_listing_goes_on(tmp_path: Path) -> None:
    writer = plan_io.PlanWriter(tmp_path, HEADER)
    writer.add([("a.csv", 1, 10), ("b.csv", 2, 20)])
    writer.close()
    with open(tmp_path / plan_io.PLAN_FILE, "ab") as handle:
        handle.write(b'["c.cs')  # a runner killed mid-write
    state = plan_io.count(tmp_path)
    assert (state.count, state.last, state.complete) == (2, "b.csv", False)
    more = plan_io.PlanWriter(tmp_path)
    assert (more.count, more.last) == (2, "b.csv")
    more.add([("c.csv", 3, 30)])
    digest = more.end()
    more.close()
    assert list(plan_io.files(tmp_path)) == ["a.csv", "b.csv", "c.csv"]
    other = tmp_path / "other"
    other.mkdir()
    fresh = plan_io.PlanWriter(other, HEADER)  # the same entries written at once: the same hash
    fresh.add([("a.csv", 1, 10), ("b.csv", 2, 20), ("c.csv", 3, 30)])
    assert fresh.end() == digest


def test_a_plan_of_an_earlier_version_is_read(tmp_path: Path) -> None:
    (tmp_path / plan_io.LEGACY_PLAN_FILE).write_text(
        '{"root_url": "/data", "root_protocol": "file", "input_type": "uri_folder", "files": ["a", "b"]}'
    )
    assert plan_io.read_header(tmp_path).legacy
    state = plan_io.PlanState()
    assert list(plan_io.iter_entries(tmp_path, state)) == [("a", None, None), ("b", None, None)]
    assert state.complete


def test_an_amendment_mid_listing_is_skipped_by_every_reader_and_laid_over_by_listing(tmp_path: Path) -> None:
    """A job resumed mid-listing appends an amendment (files found changed) before its lister goes on: the
    entries, the listing hash and the tail reader ignore it; `listing()` and the amended hash use it."""
    writer = plan_io.PlanWriter(tmp_path, HEADER)
    writer.add([("a.csv", 1, 10), ("b.csv", 2, 20)])
    writer.close()
    with open(tmp_path / plan_io.PLAN_FILE, "ab") as handle:
        handle.write(b'["c.cs')  # a runner killed mid-write: the amendment replaces the broken line
    plan_io.amend(tmp_path, 2, [("a.csv", 5, 50)])
    more = plan_io.PlanWriter(tmp_path)
    assert (more.count, more.last) == (2, "b.csv")
    more.add([("c.csv", 3, 30)])
    digest = more.end()
    more.close()
    plan_io.amend(tmp_path, 3, [("c.csv", None, None)])
    raw = [("a.csv", 1, 10), ("b.csv", 2, 20), ("c.csv", 3, 30)]
    assert list(plan_io.iter_entries(tmp_path)) == raw
    state = plan_io.scan(tmp_path)
    assert (state.count, state.last, state.complete, state.listing_sha256) == (3, "c.csv", True, digest)
    assert state.valid_bytes == (tmp_path / plan_io.PLAN_FILE).stat().st_size, "the amendments are whole lines"
    tail = plan_io.PlanTail(tmp_path)
    assert tail.read(10) == raw and tail.ended
    tail.close()
    now = [("a.csv", 5, 50), ("b.csv", 2, 20), ("c.csv", None, None)]
    assert list(plan_io.listing(tmp_path)) == now
    assert plan_io.amendments(tmp_path) == {"a.csv": ("a.csv", 5, 50), "c.csv": ("c.csv", None, None)}
    assert plan_io.listing_sha256(tmp_path) == hashlib.sha256(b"".join(map(plan_io.entry_line, now))).hexdigest()
    assert plan_io.listing_hash_of(tmp_path) == digest
