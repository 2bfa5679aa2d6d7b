"""Big files as row ranges (`--split`), output formats by file name, `--keep-columns`: end to end with a
real MLflow model and real worker processes. A split run must publish the very bytes of an unsplit run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from .conftest import heart_frame, ok_json, reference_predictions

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]

HEADER = "age,chol,cp,thal"


def _lines(n: int, seed: int, thal: tuple[str, ...] = ("normal", "fixed", "reversible")) -> list[str]:
    frame = heart_frame(n, seed)
    return [
        f"{a},{c},{cp},{thal[i % len(thal)]}"
        for i, (a, c, cp) in enumerate(zip(frame.age, frame.chol, frame.cp, strict=False))
    ]


def _edge_inputs(folder: Path) -> Path:
    """CSV and Parquet inputs with the awkward shapes, each big enough to be cut into several ranges."""
    folder.mkdir()
    (folder / "a_header_only.csv").write_bytes(f"{HEADER}\n".encode())
    (folder / "b_one_row.csv").write_bytes(f"{HEADER}\n{_lines(1, 1)[0]}\n".encode())
    (folder / "c_crlf.csv").write_bytes(("\r\n".join([HEADER, *_lines(60, 2)]) + "\r\n").encode())
    (folder / "d_no_final_newline.csv").write_bytes("\n".join([HEADER, *_lines(60, 3)]).encode())
    unicode_rows = _lines(60, 4, ("normal", "nörmal", "日本語", "fixed"))
    (folder / "e_unicode.csv").write_bytes(("\ufeff" + "\n".join([HEADER, *unicode_rows]) + "\n").encode())
    blank = _lines(60, 5)
    blank[20:20] = ["", ""]  # blank lines: pandas skips them, so the planned first rows are off by two
    (folder / "f_blank_lines.csv").write_bytes(("\n".join([HEADER, *blank]) + "\n").encode())
    quoted = [line.replace("fixed", '"fixed"') for line in _lines(60, 6)]
    (folder / "g_quoted.csv").write_bytes(("\n".join([HEADER, *quoted]) + "\n").encode())
    heart_frame(150, 7).to_parquet(folder / "h_row_groups.parquet", row_group_size=20)
    (folder / "i_plain.csv").write_bytes(("\n".join([HEADER, *_lines(300, 8)]) + "\n").encode())
    return folder


def _invoke(mlenv, data: Path, out: Path, name: str, *extra: str) -> dict:
    return ok_json(mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", name, *extra))


def _master(mlenv, job: str) -> str:
    return (mlenv.job_dir(job) / "logs" / "sys" / "master_role.txt").read_text()


def test_split_and_unsplit_runs_publish_the_same_bytes(mlenv, tmp_path: Path, reference_model) -> None:
    data = _edge_inputs(tmp_path / "data")
    mlenv.endpoint()
    mlenv.mlflow(max_concurrency_per_instance=2)
    whole = _invoke(mlenv, data, tmp_path / "whole", "whole", "--split", "never")
    split = _invoke(mlenv, data, tmp_path / "split", "split", "--split", "always")
    assert (whole["status"], split["status"]) == ("Completed", "Completed")
    expected = (tmp_path / "whole" / "predictions.csv").read_bytes()
    assert (tmp_path / "split" / "predictions.csv").read_bytes() == expected
    # files are the items, not ranges; the ranges are the mini-batches
    for record in (whole, split):
        assert (record["counts"]["items_succeeded"], record["counts"]["items_failed"]) == (9, 0)
    assert split["counts"]["mini_batches"] > whole["counts"]["mini_batches"]
    master = _master(mlenv, "split")
    for name in ("b_one_row.csv", "c_crlf.csv", "d_no_final_newline.csv", "e_unicode.csv", "f_blank_lines.csv"):
        assert f"split: {name}" in master
    assert "split: h_row_groups.parquet (" in master and "-> 4 row ranges" in master
    assert "g_quoted.csv scored whole" in master and "a_header_only.csv" not in master.split("split:", 1)[1]
    # and the unsplit bytes are the model's own predictions, row numbers per file from 0
    rows = list(csv.reader(io.StringIO(expected.decode())))
    for name in ("c_crlf.csv", "f_blank_lines.csv", "h_row_groups.parquet", "i_plain.csv"):
        mine = [r for r in rows if r[-1] == name]
        if name.endswith(".parquet"):
            predicted = reference_predictions(reference_model, data / name)
        else:
            import pandas as pd

            frame = pd.read_csv(data / name, dtype={"age": "int64", "chol": "float64", "cp": "str", "thal": "str"})
            predicted = list(reference_model.predict(frame))
        assert [int(r[0]) for r in mine] == list(range(len(predicted)))
        assert [int(r[1]) for r in mine] == [int(p) for p in predicted]


def test_a_bad_range_fails_its_file_as_one_item(mlenv, tmp_path: Path, reference_model) -> None:
    data = tmp_path / "data"
    data.mkdir()
    heart_frame(40, 1).to_csv(data / "good.csv", index=False)
    lines = _lines(200, 2)
    lines[170] = "abc,200.5,1,normal"  # not an integer age: only the range that holds it fails to read
    (data / "mixed.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    mlenv.endpoint()
    mlenv.mlflow(max_concurrency_per_instance=2)
    record = _invoke(mlenv, data, tmp_path / "out", "bad", "--split", "always")
    assert record["status"] == "Completed"
    assert (record["counts"]["items_succeeded"], record["counts"]["items_failed"]) == (1, 1)
    failed = [json.loads(x) for x in (mlenv.job_dir("bad") / "failed_items.jsonl").read_text().splitlines()]
    assert len(failed) == 1 and failed[0]["file"] == "mixed.csv"
    assert "row range 4 of 4" in failed[0]["reason"] and "abc" in failed[0]["reason"]
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "predictions.csv").read_text())))
    assert {r[-1] for r in rows} == {"good.csv"}, "no row of a failed file is published"
    assert [int(r[1]) for r in rows] == [int(p) for p in reference_predictions(reference_model, data / "good.csv")]


def test_parquet_and_jsonl_outputs_round_trip_with_kept_columns(mlenv, tmp_path: Path) -> None:
    import pandas as pd

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_bytes(("\n".join([HEADER, *_lines(120, 1, ("nörmal", "fixed"))]) + "\n").encode())
    heart_frame(90, 2).to_parquet(data / "b.parquet", row_group_size=30)
    mlenv.endpoint()
    mlenv.mlflow(max_concurrency_per_instance=2)
    keep = ("--keep-columns", "cp,age")
    _invoke(mlenv, data, tmp_path / "c", "c", "--split", "never", *keep)
    _invoke(mlenv, data, tmp_path / "p", "p", "--split", "always", "--set", "output_file_name=p.parquet", *keep)
    _invoke(mlenv, data, tmp_path / "j", "j", "--split", "always", "--set", "output_file_name=p.jsonl", *keep)
    columns = ["row", "cp", "age", "prediction", "file_name"]
    from_csv = pd.read_csv(tmp_path / "c" / "predictions.csv", header=None, names=columns, dtype={"cp": "str"})
    parquet = pd.read_parquet(tmp_path / "p" / "p.parquet")
    assert list(parquet.columns) == columns
    assert str(parquet["age"].dtype) == "int64" and str(parquet["prediction"].dtype) == "int64"
    assert parquet["cp"].map(type).eq(str).all(), "cp holds digits but is a string column in the input"
    lines = (tmp_path / "j" / "p.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert list(first) == columns and isinstance(first["cp"], str) and isinstance(first["age"], int)
    jsonl = pd.read_json(io.StringIO("\n".join(lines)), lines=True, dtype={"cp": "str"})
    assert len(parquet) == len(jsonl) == len(from_csv) == 210
    for frame in (parquet, jsonl):
        for column in columns:
            assert frame[column].astype(str).tolist() == from_csv[column].astype(str).tolist(), column


def test_a_missing_kept_column_fails_the_item_with_the_reason(mlenv, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with_region = heart_frame(8, 1).assign(region="north")
    with_region.to_csv(data / "a.csv", index=False)
    heart_frame(8, 2).to_csv(data / "b.csv", index=False)
    mlenv.endpoint()
    mlenv.mlflow()
    record = _invoke(mlenv, data, tmp_path / "out", "k", "--keep-columns", "region")
    assert (record["counts"]["items_succeeded"], record["counts"]["items_failed"]) == (1, 1)
    failed = [json.loads(x) for x in (mlenv.job_dir("k") / "failed_items.jsonl").read_text().splitlines()]
    assert [f["file"] for f in failed] == ["b.csv"]
    assert "--keep-columns" in failed[0]["reason"] and "'region' not in the input" in failed[0]["reason"]
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "predictions.csv").read_text())))
    assert [r[1] for r in rows] == ["north"] * 8 and {r[-1] for r in rows} == {"a.csv"}
