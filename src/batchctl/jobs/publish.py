"""The results file, staged from the parts in mini-batch order: CSV and JSON-lines parts are joined
byte for byte, Parquet parts become row groups of one ParquetWriter, one part in memory at a time.

Row ranges of a split file (execution/splitting.py) were numbered from a planned first row; when the
rows the earlier ranges actually held say otherwise, the range's rows are renumbered here, so that
row numbers are those of the unsplit run. The ranges of a failed file are left out.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, BinaryIO

from batchctl.errors import BatchctlError

if TYPE_CHECKING:
    from batchctl.execution.splitting import FileLedger
    from batchctl.jobs.journal import JobJournal


class RangeShift:
    """The row number shift of each unit, visited in unit order: 0, except for the row ranges of a split
    file, renumbered from the rows its earlier ranges actually held."""

    def __init__(self, journal: JobJournal, ledger: FileLedger) -> None:
        self.journal, self.ledger = journal, ledger
        self.rows_before: dict[str, int] = {}

    def __call__(self, unit: int) -> int:
        rng = self.ledger.range_of(unit)
        if rng is None:
            return 0
        start = self.rows_before.get(rng.file, 0)
        self.rows_before[rng.file] = start + self.journal.batch_rows.get(unit, 0)
        return start - (rng.first_row or 0)


def ordered_parts(journal: JobJournal, ledger: FileLedger) -> list[tuple[str, int, int, int | None]]:
    """(part file, row number shift, offset, length) in output order, without the ranges of failed files."""
    skip = ledger.failed_units()
    shift_of = RangeShift(journal, ledger)
    out: list[tuple[str, int, int, int | None]] = []
    for unit in sorted(journal.ok_batches):
        if unit in skip:
            continue
        shift = shift_of(unit)
        part = journal.ok_batches[unit]
        if part:
            out.append((part, shift, 0, None))
    return out


def write_results(target: str, parts: list[tuple[str, int, int, int | None]], output_format: str) -> None:
    """Write the results file at `target` (a staging path) and fsync it. A part is (file, row shift,
    offset, length): length None is the whole file; a slice (a reused file's rows) is never shifted."""
    if output_format == "parquet":
        _write_parquet(target, [(part, shift) for part, shift, _offset, _length in parts])
        return
    with open(target, "wb") as out:
        for part, shift, offset, length in parts:
            with open(part, "rb") as src:
                if length is not None:
                    src.seek(offset)
                    _copy_exactly(src, out, length, part)
                elif shift == 0:
                    shutil.copyfileobj(src, out, 1 << 20)
                else:
                    _renumber(src, out, shift, b'{"row":' if output_format == "jsonl" else b"")
        out.flush()
        os.fsync(out.fileno())


def _copy_exactly(src: BinaryIO, out: BinaryIO, length: int, name: str) -> None:
    left = length
    while left > 0:
        chunk = src.read(min(left, 1 << 20))
        if not chunk:
            raise BatchctlError(f"a reused result ({name}) is shorter than its index says; nothing was published")
        out.write(chunk)
        left -= len(chunk)


def _renumber(src: BinaryIO, out: BinaryIO, shift: int, prefix: bytes) -> None:
    """Lines `<prefix><row>,...`: add `shift` to each row number, the rest of the line untouched."""
    skip = len(prefix)
    lines = []
    for line in src:
        comma = line.index(b",", skip)
        lines.append(b"%b%d%b" % (prefix, int(line[skip:comma]) + shift, line[comma:]))
        if len(lines) >= 65536:
            out.write(b"".join(lines))
            lines.clear()
    out.write(b"".join(lines))


def _write_parquet(target: str, parts: list[tuple[str, int]]) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    writer = None
    try:
        for part, shift in parts:
            reader = pq.ParquetFile(part)
            for group in range(reader.num_row_groups):
                table = reader.read_row_group(group)
                if shift:
                    index = table.schema.get_field_index("row")
                    table = table.set_column(index, "row", pc.add(table["row"], pa.scalar(shift, pa.int64())))
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                elif not table.schema.equals(writer.schema, check_metadata=False):
                    try:
                        table = table.cast(writer.schema)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                        raise BatchctlError(
                            f"parquet results: mini-batches returned different column types ({exc}); "
                            "nothing was published",
                            "write .csv or .jsonl results, or make the model return one type",
                        ) from exc
                writer.write_table(table)
        if writer is None:  # no rows at all: a valid file with the fixed columns
            empty = pa.table({"row": pa.array([], pa.int64()), "file_name": pa.array([], pa.string())})
            writer = pq.ParquetWriter(target, empty.schema)
            writer.write_table(empty)
    finally:
        if writer is not None:
            writer.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
