"""Local create-only publish: the results appear whole at the final name, and a file already there is
never touched (no timing: the target exists before publish() is called)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchctl import storage
from batchctl.errors import OutputExistsError


def _results(tmp_path: Path, data: bytes, name: str = "predictions.csv") -> Path:
    src = tmp_path / "staging" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(data)
    return src


def test_publish_creates_the_target_with_the_results_bytes(tmp_path: Path) -> None:
    src = _results(tmp_path, b"a.csv,1\n" * 500)
    target = tmp_path / "out" / "predictions.csv"
    storage.publish(str(src), storage.location(str(target)))
    assert target.read_bytes() == b"a.csv,1\n" * 500
    assert sorted(os.listdir(target.parent)) == ["predictions.csv"]  # no staging file left beside it
    assert src.read_bytes() == b"a.csv,1\n" * 500


def test_publish_onto_an_existing_file_raises_and_leaves_it_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "predictions.csv"
    target.write_bytes(b"theirs\n" * 100)
    before = target.stat()
    src = _results(tmp_path, b"ours\n" * 1000)
    with pytest.raises(OutputExistsError, match="it was not overwritten"):
        storage.publish(str(src), storage.location(str(target)))
    assert target.read_bytes() == b"theirs\n" * 100
    after = target.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert sorted(os.listdir(out)) == ["predictions.csv"]  # no staging file left beside it


def test_a_second_publish_to_the_same_name_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out" / "predictions.csv"
    storage.publish(str(_results(tmp_path, b"first\n", "first.csv")), storage.location(str(target)))
    with pytest.raises(OutputExistsError):
        storage.publish(str(_results(tmp_path, b"second\n", "second.csv")), storage.location(str(target)))
    assert target.read_bytes() == b"first\n"
