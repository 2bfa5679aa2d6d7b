"""The streamed listing (storage.open_listing) walks a folder one directory at a time and must give
exactly today's order: a plain string sort of the relative paths, over the whole folder. The cases where
a component-wise walk differs from that sort ('a-b/x' before 'a/b' because '-' < '/') are pinned here,
against an independent reference (os.walk, relpath, sorted)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchctl.storage import list_inputs, location, open_listing
from batchctl.storage.inputs import sort_key

EDGE_NAMES = [
    "a/b.csv",
    "a-b/x.csv",  # '-' (0x2D) < '/' (0x2F): a string sort puts 'a-b/x' before 'a/b'
    "a.csv",  # '.' (0x2E) < '/': a file 'a.csv' comes before the folder 'a'
    "a0.csv",  # '0' (0x30) > '/': after the folder 'a'
    "a!/1.csv",
    "a b/2.csv",
    "a+/3.csv",
    "a,c.csv",
    "A/upper.csv",
    "a/b/c/d/deep.csv",
    "a/b-c.csv",
    "a/b/e.csv",
    "Z.csv",
    "_under/u.csv",
    "~tilde.csv",
    "é/accent.csv",
    "e\u0301/combining.csv",  # e + combining acute: not the same string as 'é'
    "日本/データ.csv",
    "emoji/🙂.csv",
    "x/y/z.csv",
    "x-y/z.csv",
    "x.y/z.csv",
    "10.csv",
    "9.csv",
    "with space.csv",
]


def reference(root: Path) -> list[str]:
    """Today's order, computed without the walk under test: every file, relative, string-sorted."""
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                out.append(os.path.relpath(os.path.join(folder, name), root))
    return sorted(out)


def build(root: Path, names: list[str]) -> None:
    for rel in names:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{rel}\n", encoding="utf-8")


def streamed(root: Path) -> list[str]:
    return [entry[0] for entry in open_listing(location(str(root)), None).entries]


@pytest.fixture(params=[(10_000, 64), (3, 64), (3, 2)], ids=["one-window", "runs-of-3", "runs-of-3-folded"])
def window(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """A directory's names are sorted WINDOW at a time, a bigger one's sorted runs spilled to disk and
    merged: with 3, every folder here takes several runs, merged at the end or (fan-in 2) folded as they come."""
    from batchctl.storage import inputs

    size, fan_in = request.param
    monkeypatch.setattr(inputs, "WINDOW", size)
    monkeypatch.setattr(inputs, "MERGE_FAN_IN", fan_in)
    return int(size)


def test_a_big_flat_folder_is_read_once_in_sorted_runs(tmp_path: Path, window: int) -> None:
    """Names that are not UTF-8, a newline in a name, and a link to a file all survive the runs on disk."""
    names = [f"{i:03d}-{'x' * (i % 5)}.csv" for i in range(97, 0, -1)] + ["new\nline.csv", "ü.csv"]
    build(tmp_path, names)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "in.csv").write_text("x")
    os.symlink(tmp_path / "001-x.csv", tmp_path / "linked.csv")
    raw = os.fsencode(tmp_path) + b"/\xff\xfe.csv"
    with open(raw, "wb") as f:
        f.write(b"x")
    got = streamed(tmp_path)
    assert got == reference(tmp_path)
    assert len(got) == 102 and "linked.csv" in got and os.fsdecode(b"\xff\xfe.csv") in got


def test_ordering_edge_cases_match_a_string_sort_of_the_paths(tmp_path: Path, window: int) -> None:
    build(tmp_path, EDGE_NAMES)
    (tmp_path / "empty" / "nested-empty").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "h.csv").write_text("x")
    (tmp_path / "a" / ".dot.csv").write_text("x")
    got = streamed(tmp_path)
    assert got == reference(tmp_path)
    # the cases that a plain component-wise walk would get wrong
    assert got.index("a-b/x.csv") < got.index("a/b.csv")
    assert got.index("a.csv") < got.index("a/b.csv") < got.index("a0.csv")
    assert got.index("x-y/z.csv") < got.index("x.y/z.csv") < got.index("x/y/z.csv")
    assert not any("empty" in rel or "hidden" in rel or ".dot" in rel for rel in got)


def test_nested_generated_tree_matches(tmp_path: Path, window: int) -> None:
    names = []
    for i in range(12):
        for j in range(7):
            names.append(f"p{i}/q{j % 3}-{j}/r{j}.csv")
            names.append(f"p{i}-x/{j}.csv")
            names.append(f"p{i}.{j}.csv")
    build(tmp_path, names)
    assert streamed(tmp_path) == reference(tmp_path)


def test_entries_carry_size_and_mtime(tmp_path: Path) -> None:
    build(tmp_path, ["b/1.csv", "a.csv"])
    entries = list(open_listing(location(str(tmp_path)), None).entries)
    for rel, size, stamp in entries:
        st = os.stat(tmp_path / rel)
        assert (size, stamp) == (st.st_size, st.st_mtime_ns)


def test_list_inputs_is_the_stream_collected(tmp_path: Path, window: int) -> None:
    build(tmp_path, EDGE_NAMES)
    assert list_inputs(location(str(tmp_path)), None).files == reference(tmp_path)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a", True), ("a-b", True)),
        (("a", True), ("a.csv", False)),
        (("a", True), ("a0", False)),
        (("a", False), ("a-b", True)),
        (("b", True), ("a~", True)),
    ],
)
def test_sibling_key_orders_as_the_full_paths_do(first: tuple[str, bool], second: tuple[str, bool]) -> None:
    """Siblings sort by name + '/' for a folder: the same order as any two full paths below them."""

    def a_path(name: str, is_dir: bool) -> str:
        return name + "/z" if is_dir else name

    keys = sorted([first, second], key=lambda item: sort_key(*item))
    paths = sorted([first, second], key=lambda item: a_path(*item))
    assert keys == paths


def test_a_link_out_of_a_big_folder_is_refused_after_the_runs(tmp_path: Path, window: int) -> None:
    from batchctl.errors import StorageError

    outside = tmp_path / "outside.csv"
    outside.write_text("secret")
    folder = tmp_path / "in"
    build(folder, [f"{i:02d}.csv" for i in range(20)])
    os.symlink(outside, folder / "10-link.csv")
    with pytest.raises(StorageError, match="10-link.csv' is a symbolic link that points outside"):
        streamed(folder)
