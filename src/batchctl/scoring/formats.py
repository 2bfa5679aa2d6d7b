"""Output formats chosen by the results file's name: `.csv` (Azure's headerless `row,prediction...,
file_name` lines), `.parquet` (the same columns, typed and named) and `.jsonl` (one JSON object per row).

A worker writes its part in the job's format; the publisher (jobs/publish.py) joins the parts. A Parquet
part is a small Parquet file holding one row group; a JSON-lines part is text whose every line starts
with `{"row":N,` so that rows can be renumbered without parsing them.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pqt": "parquet", ".jsonl": "jsonl"}


def output_format(file_name: str | None) -> str:
    """csv, parquet or jsonl from the results file's name; any other name is Azure's CSV."""
    return FORMATS.get(os.path.splitext(file_name or "")[1].lower(), "csv")


def _json_values(series: Any) -> list[str]:
    """One column as JSON texts: exact floats (repr round-trips), null for missing values."""
    import numpy as np
    import pandas as pd

    kind = series.dtype.kind
    values = series.tolist()
    if kind in "iu":
        return [str(v) for v in values]
    if kind == "b":
        return ["true" if v else "false" for v in values]
    if kind == "f":
        return [repr(v) if math.isfinite(v) else "null" for v in values]
    out = []
    for v in values:
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and not math.isfinite(v)):
            out.append("null")
        elif isinstance(v, bool | np.bool_):
            out.append("true" if v else "false")
        elif isinstance(v, int | np.integer):
            out.append(str(int(v)))
        elif isinstance(v, float | np.floating):
            out.append(repr(float(v)))
        elif isinstance(v, str):
            out.append(json.dumps(v, ensure_ascii=False))
        elif isinstance(v, list | dict):
            out.append(json.dumps(v, ensure_ascii=False, default=str))
        else:  # timestamps, decimals, bytes...: their text
            out.append(json.dumps(str(v), ensure_ascii=False))
    return out


def jsonl_text(table: Any) -> str:
    """The table's rows as JSON lines; the `row` column first."""
    names = [json.dumps(str(c), ensure_ascii=False) for c in table.columns]
    columns = [_json_values(table[c]) for c in table.columns]
    prefixes = ["{" + names[0] + ":"] + ["," + n + ":" for n in names[1:]]
    lines = []
    for cells in zip(*columns, strict=True):
        lines.append("".join(p + c for p, c in zip(prefixes, cells, strict=True)) + "}\n")
    return "".join(lines)


def parquet_bytes(tables: list[Any]) -> bytes:
    """One Parquet file (one row group) holding the tables of a part."""
    import io

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=max(1, len(frame)))
    return sink.getvalue()
