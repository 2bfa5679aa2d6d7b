"""Row ranges of one big CSV or Parquet file: what a worker is told to score (`FileRange`, plain and
picklable) and how it reads its own range with ranged reads (a local file or any fsspec store), so that
nobody downloads the whole file.

CSV: a range is a byte span [start, end) of the file; it owns the lines that *start* inside it (a line
starts at the first data byte or right after a newline), and the file's header line is put in front of
it. Parquet: a range is a span [start, end) of row-group indices.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

from batchctl.storage import Location, remote

QUOTE = b'"'
READ_BLOCK = 1 << 16  # how far a CSV range reads past its end to find the start of the next line


class QuotedCsvError(ValueError):
    """A CSV range holds a quote character: a quoted field may hide a newline, so bytes cannot cut it."""


@dataclass(frozen=True)
class FileRange:
    """One row range of one file: `index` of `count` ranges of `file` (relative to the task's root)."""

    file: str
    kind: str  # "csv" | "parquet"
    index: int
    count: int
    start: int  # CSV: first byte; Parquet: first row group
    end: int  # CSV: byte after the span; Parquet: row group after the span
    header: bytes = b""  # CSV: the header line with its line end (and any blank lines before it)
    first_row: int | None = None  # the file's row number of the range's first row, when known at planning


def open_input(root: Location, rel: str) -> Any:
    """A seekable binary handle on one input file; remote files are read with ranged reads."""
    if root.is_local:
        return open(os.path.join(root.url, rel), "rb")  # noqa: SIM115 - the caller closes it
    fs, path = remote(root.join(rel))
    return fs.open(path, "rb", block_size=1 << 22, cache_type="none")


def _line_start_at_or_after(handle: Any, pos: int, data_start: int) -> int:
    """The first line start >= pos (a line starts at data_start or right after a b'\\n')."""
    if pos <= data_start:
        return data_start
    handle.seek(pos - 1)
    offset = pos - 1
    while True:
        block = handle.read(READ_BLOCK)
        if not block:
            return offset  # end of file
        found = block.find(b"\n")
        if found >= 0:
            return offset + found + 1
        offset += len(block)


def csv_range_bytes(handle: Any, rng: FileRange, data_start: int) -> bytes:
    """The bytes of the lines that start inside [rng.start, rng.end), read with seeks and bounded reads."""
    begin = _line_start_at_or_after(handle, rng.start, data_start)
    stop = _line_start_at_or_after(handle, rng.end, data_start)
    if stop <= begin:
        return b""
    handle.seek(begin)
    body = handle.read(stop - begin)
    quote = body.find(QUOTE)
    if quote >= 0:
        raise QuotedCsvError(
            f"a quote character at byte {begin + quote}: quoted fields may hold line breaks, so "
            "the file cannot be cut into byte ranges; run the job with --split never to score it whole"
        )
    return body


def csv_range_data(root: Location, rng: FileRange) -> bytes:
    """The range as a CSV of its own: the header line(s), then the range's lines."""
    with open_input(root, rng.file) as handle:
        return rng.header + csv_range_bytes(handle, rng, len(rng.header))


def read_csv_range(root: Location, rng: FileRange, dtypes: Any) -> Any:
    import pandas as pd

    data = io.BytesIO(csv_range_data(root, rng))
    return pd.read_csv(data, dtype=dtypes) if dtypes else pd.read_csv(data)


def read_parquet_range(root: Location, rng: FileRange) -> Any:
    import pyarrow.parquet as pq

    with open_input(root, rng.file) as handle:
        parquet = pq.ParquetFile(handle)
        table = parquet.read_row_groups(list(range(rng.start, rng.end)))
        widen = _nulls_elsewhere(parquet, table)
    frame = table.to_pandas()
    for name in widen:
        # as pandas converts the whole file, which has a null in this column: integers become float64,
        # booleans objects; without this, a range with no null would keep int64/bool and differ
        frame[name] = frame[name].astype("float64" if frame[name].dtype.kind in "iu" else object)
    return frame


def _nulls_elsewhere(parquet: Any, table: Any) -> list[str]:
    """The integer and boolean columns with no null in this range but a null elsewhere in the file (from
    the row groups' statistics in the footer; a column without them is read whole to count)."""
    import pyarrow as pa

    meta = parquet.metadata
    paths = {meta.schema.column(j).path: j for j in range(meta.num_columns)}
    out = []
    for name in table.column_names:
        column = table.column(name)
        kind = column.type
        if column.null_count or not (pa.types.is_integer(kind) or pa.types.is_boolean(kind)) or name not in paths:
            continue
        nulls = 0
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(paths[name]).statistics
            if stats is None or not stats.has_null_count:
                nulls = parquet.read(columns=[name]).column(name).null_count
                break
            nulls += stats.null_count
        if nulls:
            out.append(name)
    return out


def read_range(root: Location, rng: FileRange, dtypes: Any) -> Any:
    """The range's rows as a DataFrame, typed as a whole-file read would type them. A transport error is
    a StorageError (StorageUnavailableError when the store cannot be reached: the attempt is retried)."""
    from batchctl.errors import BatchctlError
    from batchctl.storage.faults import _is_connect_error, _storage_error

    try:
        if rng.kind == "csv":
            return read_csv_range(root, rng, dtypes)
        return read_parquet_range(root, rng)
    except (BatchctlError, QuotedCsvError):
        raise
    except Exception as exc:
        if root.is_local or not (_is_connect_error(exc) or isinstance(exc, OSError)):
            raise  # a parse error: the item fails with the reader's own message
        raise _storage_error("read", root.join(rng.file).url, exc, root.join(rng.file)) from exc
