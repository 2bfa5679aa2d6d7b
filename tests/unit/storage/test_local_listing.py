"""Local input listing: recursive, sorted by path, hidden entries skipped, links to folders not followed,
links to files inside the folder kept, a link leaving the folder refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batchctl.errors import StorageError
from batchctl.storage import list_inputs, location


def make_tree(root: Path) -> None:
    for rel in ["a/1.csv", "a/b/2.csv", "z/3.csv", "top.csv", ".hidden.csv", ".h/x.csv", "a/.y.csv"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    (root / "linked-folder").symlink_to(root / "a")
    (root / "z" / "link.csv").symlink_to(root / "top.csv")
    (root / "dangling.csv").symlink_to(root / "nowhere.csv")
    os.mkfifo(root / "fifo")


def test_folder_listing(tmp_path: Path) -> None:
    make_tree(tmp_path)
    listing = list_inputs(location(str(tmp_path)), None)
    assert listing.input_type == "uri_folder"
    assert listing.files == ["a/1.csv", "a/b/2.csv", "dangling.csv", "fifo", "top.csv", "z/3.csv", "z/link.csv"]


def test_a_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "in"
    inside.mkdir()
    (inside / "ok.csv").write_text("x\n")
    (tmp_path / "secret.csv").write_text("x\n")
    (inside / "out.csv").symlink_to(tmp_path / "secret.csv")
    with pytest.raises(StorageError) as caught:
        list_inputs(location(str(inside)), None)
    assert caught.value.message == (
        f"input 'out.csv' is a symbolic link that points outside the input folder ({tmp_path / 'secret.csv'})"
    )


@pytest.mark.parametrize(
    "text",
    [
        b"id,region\n1,north\n",
        b"\n\nid,region\n1,north\n",  # blank lines before the header: pandas skips them
        b"\r\n  \t\r\n\r\nid,region\r\n1,north\r\n",  # blank lines of spaces, tabs and CRLF
        b"\xef\xbb\xbf\nid,region\n1,north\n",  # a BOM, then a blank line
    ],
    ids=["plain", "blank-lines", "blank-crlf-spaces", "bom-blank"],
)
def test_local_columns_finds_the_header_as_pandas_does(tmp_path: Path, text: bytes) -> None:
    """--keep-columns is checked against these columns before a job starts: a CSV with blank lines before
    its header (which scores, as pandas reads it) must give its header, not an empty first line."""
    import pandas as pd

    from batchctl.storage.inputs import local_columns

    path = tmp_path / "a.csv"
    path.write_bytes(text)
    assert local_columns(str(path)) == ["id", "region"] == list(pd.read_csv(path).columns)
