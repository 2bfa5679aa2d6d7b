"""Row ranges of big files on blob storage (real Azurite): each range is read with ranged reads (never
the whole file), and a split job over az:// inputs publishes the bytes of an unsplit local run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import COLUMNS, ROWS

pytestmark = [pytest.mark.slow]


def _big_csv(rows: int) -> bytes:
    return (COLUMNS + "".join(ROWS[i % len(ROWS)].replace("233", str(200 + i % 97)) for i in range(rows))).encode()


class CountingHandle:
    """A file handle that counts the bytes read through it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.read_bytes = inner, 0

    def seek(self, pos: int) -> int:
        return self.inner.seek(pos)

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.read_bytes += len(data)
        return data


def test_a_range_is_read_from_azurite_with_ranged_reads(azurite_env: Any, upload: Any) -> None:
    from batchctl.scoring.ranges import READ_BLOCK, FileRange, csv_range_bytes, open_input
    from batchctl.storage import location

    data = _big_csv(100_000)
    container = azurite_env.new_container()
    upload(container, {"big.csv": data})
    root = location(f"az://{container}")
    header = len(COLUMNS)
    start, end = len(data) // 2, len(data) // 2 + 20000
    with open_input(root, "big.csv") as raw:
        handle = CountingHandle(raw)
        body = csv_range_bytes(handle, FileRange("big.csv", "csv", 1, 3, start, end, COLUMNS.encode()), header)
    begin = data.index(b"\n", start - 1) + 1
    assert body == data[begin : data.index(b"\n", end - 1) + 1]
    # the range, plus one block read at each end to find the line starts; never the whole file
    assert handle.read_bytes <= (end - start) + 2 * READ_BLOCK + 200 < len(data) // 5


def test_a_split_job_over_az_inputs_gives_the_bytes_of_an_unsplit_local_run(
    heart: Any, azurite_env: Any, upload: Any, tmp_path: Path
) -> None:
    import pandas as pd

    local = tmp_path / "local"
    local.mkdir()
    (local / "a.csv").write_bytes(_big_csv(400))
    frame = pd.read_csv(local / "a.csv", dtype={"age": "float64", "chol": "float64", "thal": "str"})
    frame.to_parquet(local / "b.parquet", row_group_size=50)
    container = azurite_env.new_container()
    upload(container, {p.name: p.read_bytes() for p in local.iterdir()}, prefix="in/")
    whole = heart.invoke("--input", str(local), "--output-path", str(tmp_path / "whole"), "--split", "never")
    split = heart.invoke(
        "--input",
        f"az://{container}/in",
        "--output-path",
        str(tmp_path / "split"),
        "--split",
        "always",
        "--job-name",
        "s",
    )
    assert whole.returncode == 0 and split.returncode == 0, (whole.stderr, split.stderr)
    failed = (heart.home / "jobs" / "s" / "failed_items.jsonl").read_text()
    assert json.loads(split.stdout)["counts"]["items_succeeded"] == 2, failed
    expected = (tmp_path / "whole" / "predictions.csv").read_bytes()
    assert expected.count(b"\n") == 800
    assert (tmp_path / "split" / "predictions.csv").read_bytes() == expected
    master = (heart.home / "jobs" / "s" / "logs" / "sys" / "master_role.txt").read_text()
    assert "split: a.csv" in master and "split: b.parquet" in master
