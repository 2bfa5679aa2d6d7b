"""Row ranges, unit by unit: CSV byte ranges own the lines that start inside them (every cut, every
line end), quote characters refuse the cut, Parquet ranges follow row groups, the planner keeps the file
order, a split file settles into one item, and the publisher renumbers and joins parts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from batchctl.execution.events import BatchResult
from batchctl.execution.splitting import FileLedger, UnitPlan, plan_units, range_count
from batchctl.jobs.publish import write_results
from batchctl.scoring.failures import ErrorInfo, ItemError
from batchctl.scoring.formats import jsonl_text, output_format
from batchctl.scoring.ranges import FileRange, QuotedCsvError, csv_range_bytes
from batchctl.storage import Location

HEADER = b"id,name\n"
BODIES = {
    "lf": b"1,a\n2,bb\n3,ccc\n4,d\n",
    "crlf": b"1,a\r\n2,bb\r\n3,ccc\r\n",
    "no-final-newline": b"1,a\n2,bb\n3,ccc",
    "unicode": "1,é\n2,日本語\n3,ß\n".encode(),
    "one-row": b"1,a\n",
    "blank-line": b"1,a\n\n2,b\n",
}


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_every_pair_of_cuts_gives_back_the_body_line_by_line(kind: str) -> None:
    data = HEADER + BODIES[kind]
    start, size = len(HEADER), len(data)
    lines = io.BytesIO(BODIES[kind]).readlines()
    for a in range(start, size + 1):
        for b in range(a, size + 1):
            cuts = [start, a, b, size]
            handle = io.BytesIO(data)
            pieces = [
                csv_range_bytes(handle, FileRange("f.csv", "csv", i, 3, cuts[i], cuts[i + 1], HEADER), start)
                for i in range(3)
            ]
            assert b"".join(pieces) == BODIES[kind], (kind, cuts, pieces)
            for piece in pieces:  # whole lines only
                assert all(line in lines for line in io.BytesIO(piece).readlines()), (kind, cuts, piece)


def test_a_quote_in_a_range_refuses_the_cut_with_a_clear_reason() -> None:
    data = HEADER + b'1,"a\nb"\n2,c\n'
    with pytest.raises(QuotedCsvError, match="--split never"):
        csv_range_bytes(io.BytesIO(data), FileRange("f.csv", "csv", 0, 1, len(HEADER), len(data), HEADER), 8)


def _csv(path: Path, rows: int, quoted: bool = False) -> None:
    text = "id,name\n" + "".join(f"{i},{'q' if not quoted else chr(34) + 'x' + chr(34)}{i}\n" for i in range(rows))
    path.write_text(text)


def test_planner_keeps_file_order_and_cuts_only_what_it_may(tmp_path: Path) -> None:
    import pandas as pd

    _csv(tmp_path / "a.csv", 5)
    _csv(tmp_path / "b.csv", 400)
    _csv(tmp_path / "c.csv", 400, quoted=True)
    pd.DataFrame({"x": range(100)}).to_parquet(tmp_path / "d.parquet", row_group_size=10)
    pd.DataFrame({"x": range(100)}).to_parquet(tmp_path / "e.parquet")  # one row group
    (tmp_path / "f.txt").write_text("not tabular\n")
    files = ["a.csv", "b.csv", "c.csv", "d.parquet", "e.parquet", "f.txt"]
    root = Location(str(tmp_path), "file")

    plan = plan_units(root, files, 2, 2, "always", True)
    by_file = plan.split_files
    assert set(by_file) == {"a.csv", "b.csv", "d.parquet"}
    # output order = file order: every unit's files, flattened, never go back
    flat = [f for unit in plan.units for f in unit]
    assert flat == sorted(flat) and set(flat) == set(files)
    assert any("c.csv scored whole" in n and "quote" in n for n in plan.notes)
    assert any("e.parquet scored whole" in n and "one row group" in n for n in plan.notes)
    d = [plan.ranges[u] for u in by_file["d.parquet"]]
    assert (d[0].start, d[-1].end, len(d)) == (0, 10, 4)
    assert all(r.first_row == 10 * r.start for r in d)
    b = [plan.ranges[u] for u in by_file["b.csv"]]
    assert (b[0].start, b[-1].end) == (8, (tmp_path / "b.csv").stat().st_size)
    assert all(x.end == y.start for x, y in zip(b, b[1:], strict=False))
    # the first-row hints count the lines before each range
    data = (tmp_path / "b.csv").read_bytes()
    for r in b:  # rows before a range = lines that start in [8, r.start) = newlines in [7, r.start - 1)
        assert r.first_row == data[7 : r.start - 1].count(b"\n")

    assert plan_units(root, files, 2, 2, "never", True).ranges == {}
    assert plan_units(root, files, 2, 2, "always", False).ranges == {}  # a scoring script: never cut
    # auto leaves small files whole
    assert plan_units(root, files, 2, 2, "auto", True).ranges == {}


def test_range_count_bounds_range_size_and_gives_each_worker_two() -> None:
    assert range_count(0, 4) == 1
    assert range_count(10 << 20, 2) == 4
    assert range_count(3, 8) == 3  # never an empty range by construction
    assert range_count(1 << 30, 2) == 32  # 1 GiB: 32 MiB ranges


def _plan(n_ranges: int) -> UnitPlan:
    plan = UnitPlan([["a.csv"]])
    for i in range(n_ranges):
        plan.ranges[len(plan.units)] = FileRange("big.csv", "csv", i, n_ranges, i, i + 1)
        plan.units.append(["big.csv"])
    return plan


def test_a_split_file_is_one_item_succeeded_when_all_ranges_succeed() -> None:
    ledger = FileLedger(_plan(3))
    plain = BatchResult(batch=0, attempt=1, ok=True, succeeded=1)
    assert ledger.settle(plain) is plain
    results = [ledger.settle(BatchResult(batch=u, attempt=1, ok=True, succeeded=1, rows=5)) for u in (2, 1, 3)]
    assert [(r.succeeded, r.failed) for r in results] == [(0, 0), (0, 0), (1, 0)]
    assert ledger.failed_units() == set()


def test_a_failed_range_fails_its_file_once_and_drops_all_its_rows() -> None:
    ledger = FileLedger(_plan(3))
    bad = BatchResult(
        batch=2,
        attempt=1,
        ok=True,
        failed=1,
        item_errors=[ItemError("big.csv", ErrorInfo("ValueError", "could not convert 'x'"))],
    )
    settled = [
        ledger.settle(BatchResult(batch=1, attempt=1, ok=True, succeeded=1)),
        ledger.settle(bad),
        ledger.settle(
            BatchResult(
                batch=3, attempt=2, ok=False, failed=1, item_errors=[ItemError("big.csv", ErrorInfo(None, "timed out"))]
            )
        ),
    ]
    assert [(r.succeeded, r.failed) for r in settled] == [(0, 0), (0, 1), (0, 0)]
    assert settled[1].item_errors == [
        ItemError("big.csv", ErrorInfo("ValueError", "row range 2 of 3: could not convert 'x'"))
    ]
    assert settled[1].item_errors[0].reason == "ValueError: row range 2 of 3: could not convert 'x'"
    assert settled[2].item_errors == []
    assert ledger.failed_units() == {1, 2, 3}


def test_csv_and_jsonl_parts_are_renumbered_and_joined(tmp_path: Path) -> None:
    one, two = tmp_path / "1.part", tmp_path / "2.part"
    one.write_bytes(b"0,1,big.csv\n1,0,big.csv\n")
    two.write_bytes(b'0,1,big.csv\n1,"x,y",big.csv\n')
    target = tmp_path / "out.csv"
    write_results(str(target), [(str(one), 0, 0, None), (str(two), 2, 0, None)], "csv")
    assert target.read_bytes() == b'0,1,big.csv\n1,0,big.csv\n2,1,big.csv\n3,"x,y",big.csv\n'
    three = tmp_path / "3.part"
    three.write_bytes(b'{"row":0,"prediction":1}\n{"row":1,"prediction":2}\n')
    write_results(str(tmp_path / "out.jsonl"), [(str(three), 9, 0, None)], "jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rows == [{"row": 9, "prediction": 1}, {"row": 10, "prediction": 2}]


def test_parquet_parts_become_row_groups_renumbered(tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    from batchctl.scoring.formats import parquet_bytes

    parts = []
    for i in range(3):
        frame = pd.DataFrame({"row": [0, 1], "prediction": [0.5 + i, 1.5], "file_name": ["big.parquet"] * 2})
        (tmp_path / f"{i}.part").write_bytes(parquet_bytes([frame]))
        parts.append((str(tmp_path / f"{i}.part"), 2 * i, 0, None))
    write_results(str(tmp_path / "out.parquet"), parts, "parquet")
    assert pq.ParquetFile(tmp_path / "out.parquet").num_row_groups == 3
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["row"].tolist() == list(range(6)) and out["prediction"].dtype == "float64"
    write_results(str(tmp_path / "empty.parquet"), [], "parquet")
    assert list(pd.read_parquet(tmp_path / "empty.parquet").columns) == ["row", "file_name"]


def test_output_format_by_file_name() -> None:
    assert [output_format(n) for n in ("p.csv", "p.parquet", "P.PQT", "p.jsonl", "p.txt", None)] == [
        "csv",
        "parquet",
        "parquet",
        "jsonl",
        "csv",
        "csv",
    ]


def test_json_lines_keep_types_exactly() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "row": np.array([0, 1], dtype="int64"),
            "x": [0.1 + 0.2, float("nan")],
            "ok": [True, False],
            "s": ['a "q"\nb', None],
            "u": ["日本", "é"],
        }
    )
    text = jsonl_text(frame)
    assert text.startswith('{"row":0,') and text.count("\n") == 2
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows[0] == {"row": 0, "x": 0.1 + 0.2, "ok": True, "s": 'a "q"\nb', "u": "日本"}
    assert rows[1]["x"] is None and rows[1]["s"] is None


@pytest.mark.parametrize("block", [1, 3, 16, 1 << 20])
def test_the_planning_scan_counts_rows_and_finds_quotes_across_its_blocks(tmp_path: Path, monkeypatch, block) -> None:
    """One pass in blocks: each range's first row is the newlines before it, whatever the block size; a
    quote anywhere after the header (here in the last line) refuses the cut."""
    from batchctl.execution import splitting

    monkeypatch.setattr(splitting, "SCAN_BLOCK", block)
    _csv(tmp_path / "b.csv", 60)
    root = Location(str(tmp_path), "file")
    plan = plan_units(root, ["b.csv"], 2, 2, "always", True)
    ranges = [plan.ranges[u] for u in plan.split_files["b.csv"]]
    assert len(ranges) == 4
    data = (tmp_path / "b.csv").read_bytes()
    for r in ranges:
        assert r.first_row == data[7 : r.start - 1].count(b"\n")
    (tmp_path / "q.csv").write_bytes(data + b'60,"x"\n')
    plan = plan_units(root, ["q.csv"], 2, 2, "always", True)
    assert plan.ranges == {}
    assert any("q.csv scored whole" in n and "quote" in n for n in plan.notes)


def test_auto_leaves_a_file_whole_when_the_model_is_cheap_to_predict(tmp_path: Path, monkeypatch) -> None:
    """A small model: a second worker's start costs more than the parsing it would share, so auto cuts
    only files above the memory bound; a costly model's file is cut as before; `always` still cuts."""
    from batchctl.execution import splitting

    monkeypatch.setattr(splitting, "AUTO_MIN_BYTES", 1000)
    monkeypatch.setattr(splitting, "RANGE_MAX_BYTES", 4000)  # the memory bound: files above 16,000 bytes
    _csv(tmp_path / "mid.csv", 1000)  # about 9,000 bytes: fewer files than workers, below the bound
    _csv(tmp_path / "big.csv", 3000)  # about 30,000 bytes: above it
    root = Location(str(tmp_path), "file")
    costly = plan_units(root, ["mid.csv"], 2, 2, "auto", True)
    assert len(costly.split_files["mid.csv"]) == 4
    cheap = plan_units(root, ["mid.csv"], 2, 2, "auto", True, cheap_predict=True)
    assert cheap.ranges == {} and cheap.units == [["mid.csv"]]
    assert any("mid.csv" in n and "scored whole" in n and "cheap to predict" in n for n in cheap.notes)
    assert plan_units(root, ["mid.csv"], 2, 2, "always", True, cheap_predict=True).split_files["mid.csv"]
    assert plan_units(root, ["big.csv"], 2, 2, "auto", True, cheap_predict=True).split_files["big.csv"]


def test_a_model_is_cheap_to_predict_when_its_files_are_small(tmp_path: Path) -> None:
    from batchctl.execution.splitting import CHEAP_MODEL_BYTES, cheap_to_predict
    from testkit import train_heart_model

    small = train_heart_model(tmp_path / "heart")  # a real mlflow model: a pipeline of a few KB
    assert cheap_to_predict(str(small))
    big = tmp_path / "big"
    big.mkdir()
    (big / "MLmodel").write_text("flavors: {}\n")
    (big / "model.pkl").write_bytes(b"\0" * CHEAP_MODEL_BYTES)
    assert not cheap_to_predict(str(big))
    assert not cheap_to_predict(str(tmp_path / "missing"))
    assert not cheap_to_predict(None)
