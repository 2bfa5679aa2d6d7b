"""The commit log of a job's results (jobs/results.py, issue 26's group commit): results staged together
are committed with one write and one fsync; a torn last line, a missing part or a part of another size is
no commit; the per-mini-batch records of earlier versions are still read, and the log comes after them."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from batchctl.jobs.results import COMMIT_LOG, Commit, ResultStore, fingerprint

FIXTURE = Path(__file__).parents[2] / "jobs" / "fixtures" / "results-v1"


def part(folder: Path, batch: int, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{batch:08d}.a1.part"
    path.write_text(text)
    return str(path)


def stage(store: ResultStore, parts: Path, batch: int, text: str | None = None) -> Commit:
    text = f"row of {batch}\n" if text is None else text
    name = part(parts, batch, text) if text else None
    rows = text.count("\n")
    return store.stage("job", batch, [f"f{batch}.csv"], 1, (1, 0, rows), name, [(f"f{batch}.csv", rows)])


def test_a_group_is_one_write_and_one_fsync_and_is_committed_only_by_it(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    stage(store, tmp_path / "parts", 0)
    store.flush()
    store.sync()  # the log exists from here on
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    staged = [stage(store, tmp_path / "parts", batch) for batch in range(1, 6)]
    assert sorted(ResultStore(tmp_path).load_all()) == [0], "staged is not committed: a crash now loses them"
    assert store.flush() == 5
    store.sync()
    assert len(fsyncs) == 1
    committed = ResultStore(tmp_path).load_all()
    assert sorted(committed) == [0, 1, 2, 3, 4, 5]
    assert [committed[c.batch] for c in staged] == staged
    assert committed[3].file_rows == [["f3.csv", 1]] and committed[3].size == len("row of 3\n")
    assert committed[3].fingerprint == fingerprint("job", 3, ["f3.csv"])
    assert store.flush() == 0 and len(fsyncs) == 1, "nothing staged, nothing written"


def test_what_is_handed_over_while_a_write_is_in_flight_goes_out_with_the_next_one(tmp_path, monkeypatch):
    """The driver's loop never waits for an fsync: the groups that arrive while the log's thread is in
    one are joined into its next write."""
    import threading

    store = ResultStore(tmp_path)
    stage(store, tmp_path / "parts", 0)
    store.flush()
    store.sync()
    real_fsync = os.fsync
    in_fsync, release = threading.Event(), threading.Event()
    fsyncs: list[int] = []

    def slow_fsync(fd: int) -> None:
        fsyncs.append(fd)
        in_fsync.set()
        assert release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    stage(store, tmp_path / "parts", 1)
    store.flush()
    assert in_fsync.wait(10)
    for batch in (2, 3, 4):  # three groups while the first one's fsync is held
        stage(store, tmp_path / "parts", batch)
        assert store.flush() == 1
    release.set()
    store.sync()
    assert len(fsyncs) == 2
    assert sorted(ResultStore(tmp_path).load_all()) == [0, 1, 2, 3, 4]
    store.close()


def test_a_failed_write_is_raised_by_the_next_sync(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    stage(store, tmp_path / "parts", 0)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    store.flush()
    with pytest.raises(OSError, match="No space left"):
        store.sync()
    with pytest.raises(OSError, match="No space left"):
        store.close()


def test_a_torn_last_line_is_no_commit_and_the_next_append_starts_a_line_of_its_own(tmp_path):
    store = ResultStore(tmp_path)
    stage(store, tmp_path / "parts", 0)
    stage(store, tmp_path / "parts", 1)
    store.close()
    log = tmp_path / "results" / COMMIT_LOG
    whole = log.read_bytes()
    first, second = whole.splitlines(keepends=True)
    log.write_bytes(first + second[:-30])  # a driver killed while writing the second line
    assert sorted(ResultStore(tmp_path).load_all()) == [0]
    resumed = ResultStore(tmp_path)
    stage(resumed, tmp_path / "parts", 1)
    stage(resumed, tmp_path / "parts", 2)
    resumed.close()
    assert sorted(ResultStore(tmp_path).load_all()) == [0, 1, 2]
    assert ResultStore(tmp_path).read(1) == ResultStore(tmp_path).load_all()[1]


def test_a_missing_part_or_a_part_of_another_size_is_no_commit(tmp_path):
    store = ResultStore(tmp_path)
    for batch in range(3):
        stage(store, tmp_path / "parts", batch)
    stage(store, tmp_path / "parts", 3, text="")  # no rows: no part, still a commit
    store.close()
    (tmp_path / "results" / "00000001.part").unlink()
    (tmp_path / "results" / "00000002.part").write_text("")  # its bytes lost to a power cut
    assert sorted(ResultStore(tmp_path).load_all()) == [0, 3]


def test_a_later_line_replaces_an_earlier_one_and_a_discard_withdraws_it(tmp_path):
    store = ResultStore(tmp_path)
    stage(store, tmp_path / "parts", 0)
    stage(store, tmp_path / "parts", 1)
    store.flush()
    store.discard(1)
    assert not (tmp_path / "results" / "00000001.part").exists()
    stage(store, tmp_path / "parts", 0, text="again\nand again\n")
    store.close()
    fresh = ResultStore(tmp_path)
    loaded = fresh.load_all()
    assert sorted(loaded) == [0] and loaded[0].rows == 2
    assert fresh.read(0) == loaded[0] and fresh.read(1) is None and fresh.read(7) is None


def test_records_of_an_earlier_version_are_read_and_the_log_comes_after_them(tmp_path):
    """tests/jobs/fixtures/results-v1: what the per-mini-batch commit of earlier versions wrote (one JSON
    record per mini-batch, written with its own fsyncs)."""
    shutil.copytree(FIXTURE, tmp_path / "results")
    legacy = json.loads((FIXTURE / "00000001.json").read_text())
    store = ResultStore(tmp_path)
    loaded = store.load_all()
    assert sorted(loaded) == [0, 1]
    assert loaded[1] == Commit(**legacy) and loaded[1].size is None and loaded[1].part == "00000001.part"
    assert store.read(0) == loaded[0]
    assert store.load("j", [["a.csv"], ["b.csv"], ["c.csv"]]) == loaded
    assert store.load("another-job", [["a.csv"], ["b.csv"]]) == {}
    store.discard(0)
    stage(store, tmp_path / "parts", 1, text="x\n")  # a later commit of mini-batch 1, in the log
    store.close()
    after = ResultStore(tmp_path).load_all()
    assert sorted(after) == [1] and after[1].fingerprint == fingerprint("job", 1, ["f1.csv"])
    assert not (tmp_path / "results" / "00000000.json").exists()


@pytest.mark.parametrize("kept_open", [True, False])
def test_read_sees_what_was_appended_after_the_log_was_indexed(tmp_path, kept_open):
    store = ResultStore(tmp_path)
    stage(store, tmp_path / "parts", 0)
    assert store.read(0) is not None  # indexes the log (and commits what was staged)
    stage(store, tmp_path / "parts", 1)
    if not kept_open:
        store.close()
    assert store.read(1) is not None and store.read(1) == ResultStore(tmp_path).load_all()[1]
