"""Big files as row ranges: which files to cut (the automatic threshold, or the job's `split` setting),
into how many ranges, and how range results settle into one item per file (`FileLedger`).

Only the driver plans, and it reads no rows: a CSV needs its size and header line (local files are also
scanned for quote characters, which the OS page cache makes cheap); a Parquet file needs its footer.
Each range then becomes a unit of work scheduled like a mini-batch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from batchctl.execution.events import BatchResult
from batchctl.execution.partition import plan_batches
from batchctl.scoring.failures import ErrorInfo, ItemError
from batchctl.scoring.ranges import FileRange, open_input
from batchctl.storage import Location, remote

RANGE_MAX_BYTES = 32 << 20  # no range above this: bounds a worker's memory whatever the file's size
AUTO_MIN_BYTES = 8 << 20  # auto never cuts a file smaller than this: one read_csv is cheaper than several
RANGES_PER_WORKER = 2  # at least this many ranges per worker, so a slow range leaves little idle time
FAR_ABOVE_MEAN = 4.0  # auto cuts a file this many times above the mean size
SIZE_LOOKUPS = 64  # remote inputs with more files are sized by one listing, not one request per file
CSV_EXT = (".csv",)
PARQUET_EXT = (".parquet", ".pqt")
SPLIT_POLICIES = ("auto", "always", "never")
# A model whose files total less than this (linear models, small pipelines) predicts in about the time its
# rows take to parse: cutting a file then only spreads the parsing, and every extra range's worker must
# first start (imports and model load, 1.5-3 s of CPU). Auto then cuts only files above the memory bound.
CHEAP_MODEL_BYTES = 1 << 20
MODEL_SIZE_LOOKUPS = 1000  # a model folder with more files than this is not sized (and counts as costly)


@dataclass
class UnitPlan:
    """The job's units of work, in output order: `units[i]` is a mini-batch of files, or (when `i` is in
    `ranges`) the one file that `ranges[i]` is a range of."""

    units: list[list[str]]
    ranges: dict[int, FileRange] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # why files were or were not cut, for the job's log

    @property
    def split_files(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for unit, rng in self.ranges.items():
            out.setdefault(rng.file, []).append(unit)
        return out


def plan_units(
    root: Location,
    files: list[str],
    mini_batch_size: int,
    workers: int,
    policy: str,
    enabled: bool,
    cheap_predict: bool = False,
    sizes: dict[str, int] | None = None,
) -> UnitPlan:
    """Mini-batches as before, except that each file chosen for splitting becomes its ranges. Files keep
    their order, so the results come out in the same order as an unsplit run. `cheap_predict` (see
    `cheap_to_predict`): auto cuts only the files that one worker could not hold. `sizes`: the files'
    sizes when the listing gave them (no lookups then)."""
    if not enabled or policy == "never":
        return UnitPlan(plan_batches(files, mini_batch_size))
    chosen, notes = _choose(root, files, workers, policy, cheap_predict, sizes)
    plan = UnitPlan([], notes=notes)
    pending: list[str] = []
    for rel in files:
        ranges = chosen.get(rel)
        if not ranges:
            pending.append(rel)
            continue
        plan.units.extend(plan_batches(pending, mini_batch_size))
        pending = []
        for rng in ranges:
            plan.ranges[len(plan.units)] = rng
            plan.units.append([rel])
    plan.units.extend(plan_batches(pending, mini_batch_size))
    return plan


def _tabular(rel: str) -> str | None:
    ext = os.path.splitext(rel)[1].lower()
    return "csv" if ext in CSV_EXT else "parquet" if ext in PARQUET_EXT else None


def _sizes(root: Location, files: list[str]) -> dict[str, int]:
    if root.is_local:
        return {rel: os.path.getsize(os.path.join(root.url, rel)) for rel in files}
    if len(files) <= SIZE_LOOKUPS:
        sizes = {}
        for rel in files:
            fs, path = remote(root.join(rel))
            sizes[rel] = int(fs.info(path).get("size") or 0)
        return sizes
    fs, path = remote(root)
    base = fs._strip_protocol(path).rstrip("/")
    found = fs.find(path, detail=True)
    wanted = set(files)
    return {
        rel: int(info.get("size") or 0)
        for full, info in found.items()
        if (rel := full[len(base) :].lstrip("/")) in wanted
    }


def cheap_to_predict(model_path: str | None) -> bool:
    """True for a local model folder (or file) whose files total under CHEAP_MODEL_BYTES."""
    if not model_path:
        return False
    try:
        if os.path.isfile(model_path):
            return os.path.getsize(model_path) < CHEAP_MODEL_BYTES
        total, seen = 0, 0
        for folder, _, names in os.walk(model_path):
            for name in names:
                seen += 1
                total += os.path.getsize(os.path.join(folder, name))
                if total >= CHEAP_MODEL_BYTES or seen > MODEL_SIZE_LOOKUPS:
                    return False
        return seen > 0
    except OSError:  # unknown: the model counts as costly, so auto cuts as it always did
        return False


def _choose(
    root: Location,
    files: list[str],
    workers: int,
    policy: str,
    cheap_predict: bool = False,
    known: dict[str, int] | None = None,
) -> tuple[dict[str, list[FileRange]], list[str]]:
    candidates = [rel for rel in files if _tabular(rel)]
    if not candidates:
        return {}, []
    try:
        sizes = known if known is not None else _sizes(root, files)
    except Exception as exc:  # sizes are an optimisation: a file that cannot be sized is scored whole
        return {}, [f"split: file sizes unavailable ({type(exc).__name__}); no file was cut"]
    mean = sum(sizes.values()) / max(1, len(sizes))
    chosen: dict[str, list[FileRange]] = {}
    notes: list[str] = []
    for rel in candidates:
        size = sizes.get(rel, 0)
        if policy == "auto" and not _worth_it(size, mean, len(files), workers, cheap_predict):
            if cheap_predict and _worth_it(size, mean, len(files), workers):
                notes.append(
                    f"split: {rel} ({size} bytes) scored whole: the model is small (cheap to predict), so a "
                    "second worker's start would cost more than the parsing it shares (--split always cuts it)"
                )
            continue
        try:
            ranges, why_not = _cut(root, rel, size, workers)
        except Exception as exc:  # a file that cannot be planned is scored whole; the worker reports its errors
            ranges, why_not = [], f"cannot plan ranges ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        if len(ranges) > 1:
            chosen[rel] = ranges
            notes.append(f"split: {rel} ({size} bytes) -> {len(ranges)} row ranges")
        elif why_not:
            notes.append(f"split: {rel} scored whole: {why_not}")
    return chosen, notes


def _worth_it(size: int, mean: float, n_files: int, workers: int, cheap_predict: bool = False) -> bool:
    """Auto: cut a big file when that shortens the job (fewer files than workers, or a file far above the
    mean, which would leave the other workers idle), or when it is so big that one range bounds memory.
    For a model that is cheap to predict, only the latter."""
    if size < AUTO_MIN_BYTES:
        return False
    if size > 4 * RANGE_MAX_BYTES:
        return True
    if cheap_predict:
        return False
    return workers > 1 and (n_files < workers or size > FAR_ABOVE_MEAN * mean)


def range_count(data_bytes: int, workers: int) -> int:
    """How many ranges: RANGES_PER_WORKER per worker, more when ranges would exceed RANGE_MAX_BYTES."""
    if data_bytes <= 0:
        return 1
    wanted = max(-(-data_bytes // RANGE_MAX_BYTES), RANGES_PER_WORKER * max(1, workers))
    return max(1, min(wanted, data_bytes))


def _cut(root: Location, rel: str, size: int, workers: int) -> tuple[list[FileRange], str | None]:
    if _tabular(rel) == "parquet":
        return _cut_parquet(root, rel, size, workers)
    return _cut_csv(root, rel, size, workers)


def _cut_csv(root: Location, rel: str, size: int, workers: int) -> tuple[list[FileRange], str | None]:
    with open_input(root, rel) as handle:
        head = handle.read(1 << 20)
    end = header_end(head)
    if end < 0:
        return [], "no header line in its first MiB (a header only, blank lines only, or very long lines)"
    # the blank lines before the header travel with it: pandas skips them in each range as in the whole file
    header = head[:end]
    if b'"' in header:
        return [], "its header has quote characters"
    data_start = len(header)
    if not root.is_local and b'"' in head[data_start:]:
        return [], "it has quote characters: quoted fields may hold line breaks, so it cannot be cut by bytes"
    count = range_count(size - data_start, workers)
    step = -(-(size - data_start) // count)
    bounds = [min(size, data_start + i * step) for i in range(count + 1)]
    bounds[-1] = size
    first_rows: list[int | None] = [None] * count
    if root.is_local:  # one pass over the file: its quote characters and each range's first row
        scanned = _scan(os.path.join(root.url, rel), data_start, bounds)
        if scanned is None:
            return [], "it has quote characters: quoted fields may hold line breaks, so it cannot be cut by bytes"
        first_rows = list(scanned)
    return [
        FileRange(rel, "csv", i, count, bounds[i], bounds[i + 1], header, first_rows[i]) for i in range(count)
    ], None


def header_end(head: bytes) -> int:
    """The offset just past the header line, found as pandas finds it: the first line that is not blank
    (a blank line holds only spaces, tabs and a carriage return; a UTF-8 BOM may start the file). -1 when
    no complete non-blank line is in `head`."""
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    while True:
        end = head.find(b"\n", pos)
        if end < 0:
            return -1
        if head[pos:end].strip(b" \t\r"):
            return end + 1
        pos = end + 1


SCAN_BLOCK = 8 << 20  # bytes read at a time by the planning scan


def _scan(path: str, data_start: int, bounds: list[int]) -> list[int] | None:
    """Each range's first row number, counted from the line starts before it, or None when the data holds
    a quote character; one sequential pass in blocks (the page cache makes it cheap), stopping at the
    first quote. The row numbers are a hint: blank lines, which pandas skips, make them wrong, and the
    publisher then renumbers from the rows each range reported."""
    # lines that start in [bounds[i], bounds[i+1]) = newlines in [bounds[i]-1, bounds[i+1]-1)
    cuts = [b - 1 for b in bounds[1:-1]]  # a range's first row = the newlines before its cut
    out: list[int] = [0]
    rows = 0
    pos = data_start - 1  # the header's newline: the first data row starts right after it
    buf = bytearray(SCAN_BLOCK)
    with open(path, "rb") as handle:
        handle.seek(pos)
        while got := handle.readinto(buf):
            if buf.find(b'"', 0, got) >= 0:
                return None
            start = 0
            while cuts and cuts[0] < pos + got:
                cut = cuts.pop(0) - pos
                rows += buf.count(b"\n", start, cut)
                out.append(rows)
                start = cut
            rows += buf.count(b"\n", start, got)
            pos += got
    while cuts:  # cuts past the end of the data (an empty file's ranges)
        cuts.pop(0)
        out.append(rows)
    return out


def _cut_parquet(root: Location, rel: str, size: int, workers: int) -> tuple[list[FileRange], str | None]:
    import pyarrow.parquet as pq

    with open_input(root, rel) as handle:
        meta = pq.ParquetFile(handle).metadata
    groups = meta.num_row_groups
    if groups < 2:
        return [], "it has one row group (Parquet files are cut between row groups)"
    count = min(groups, range_count(size, workers))
    rows = [meta.row_group(i).num_rows for i in range(groups)]
    weights = [max(1, meta.row_group(i).total_byte_size) for i in range(groups)]
    total = sum(weights)
    ranges: list[tuple[int, int]] = []
    start, acc, first = 0, 0, 0
    for i in range(groups):
        acc += weights[i]
        last = i == groups - 1
        if last or acc >= total * (len(ranges) + 1) / count:
            ranges.append((start, i + 1))
            start = i + 1
    out = []
    for index, (lo, hi) in enumerate(ranges):
        out.append(FileRange(rel, "parquet", index, len(ranges), lo, hi, b"", first))
        first += sum(rows[lo:hi])
    return out, None


class FileLedger:
    """Settles range results into items: a split file is one item, succeeded when all its ranges
    succeeded, failed (once, with the first reason) as soon as one range fails."""

    def __init__(self, plan: UnitPlan) -> None:
        self.ranges = dict(plan.ranges)
        self.left = {rel: len(units) for rel, units in plan.split_files.items()}
        self.failed: dict[str, ErrorInfo] = {}

    def extend(self, ranges: dict[int, FileRange]) -> None:
        """More units planned (a streamed plan is planned a chunk at a time)."""
        self.ranges.update(ranges)
        for rng in ranges.values():
            self.left[rng.file] = self.left.get(rng.file, 0) + 1

    def settle(self, result: BatchResult) -> BatchResult:
        rng = self.ranges.get(result.batch)
        if rng is None:
            return result
        rel = rng.file
        info = None
        if not result.ok or result.failed:
            cause = (
                result.item_errors[0].info
                if result.item_errors
                else (result.error_info or ErrorInfo(None, result.error or "run() failed"))
            )
            info = ErrorInfo(cause.type, f"row range {rng.index + 1} of {rng.count}: {cause.message}", cause.frame)
        first_failure = info is not None and rel not in self.failed
        if first_failure:
            assert info is not None
            self.failed[rel] = info
        self.left[rel] -= 1
        succeeded = 1 if self.left[rel] == 0 and rel not in self.failed else 0
        return dataclasses.replace(
            result,
            succeeded=succeeded,
            failed=1 if first_failure else 0,
            item_errors=[ItemError(rel, self.failed[rel])] if first_failure else [],
        )

    def failed_units(self) -> set[int]:
        """The units whose rows must not be published: every range of a failed file."""
        return {unit for unit, rng in self.ranges.items() if rng.file in self.failed}

    def first_row(self, unit: int) -> int | None:
        rng = self.ranges.get(unit)
        return None if rng is None else (rng.first_row or 0)

    def range_of(self, unit: int) -> FileRange | None:
        return self.ranges.get(unit)


def range_key(rng: FileRange) -> str:
    """A range as its unit's fingerprint names it (jobs/results.py): the file and the span it covers."""
    return f"{rng.file}#{rng.kind}:{rng.index}/{rng.count}:{rng.start}-{rng.end}"
