"""The built-in MLflow driver (no scoring script): pyfunc loaded once per worker, one predict per file.

Rows are `row,prediction[,more outputs],file_name`, comma-separated, no header.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from batchctl.scoring import sklearn_direct
from batchctl.scoring.base import Outcome, ScorerRef
from batchctl.scoring.failures import ErrorInfo, ItemError, cap

log = logging.getLogger("batchctl.mlflow")
TABULAR = (".csv", ".parquet", ".pqt")
ACCEPTED = [".csv", ".parquet", ".pqt"]
SMALL_CSV_BYTES = 256 * 1024
_BLANK_LINE = re.compile(rb"(?:^|\n)[ \t\r]*\n")  # in bodies that each end with a newline


class MlflowScorer:
    def __init__(self, ref: ScorerRef) -> None:
        self.ref = ref
        self.model: Any = None
        self.dtypes: dict[str, Any] | None = None
        self.columns: list[str] | None = None
        self.row_wise = False
        self.kept_apart = False  # no signature: kept columns come from a second, text-only read of a CSV

    def init(self) -> None:
        # a scikit-learn model that pyfunc would only unpickle and call is scored without importing mlflow
        direct = sklearn_direct.load(self.ref.model_path)
        if direct is not None:
            self.model = direct
            self.dtypes = {name: kind for name, kind in direct.schema} if direct.schema else None
            self.columns = [name for name, _ in direct.schema] if direct.schema else None
            self.row_wise = True
        else:
            import mlflow.pyfunc

            # the driver has already compared the model's requirements with this interpreter (once, cheaply);
            # mlflow's own check maps every installed distribution and costs ~0.7 s in each worker
            self.model = mlflow.pyfunc.load_model(self.ref.model_path, suppress_warnings=True)
            self.dtypes, self.columns = _signature_dtypes(self.model)
            flavors = getattr(self.model.metadata, "flavors", None) or {}
            self.row_wise = "sklearn" in flavors
        if self.dtypes:
            from pandas.api.types import pandas_dtype

            # resolved once: read_csv re-parses dtype strings on every call (a quarter of its time here)
            self.dtypes = {name: pandas_dtype(kind) for name, kind in self.dtypes.items()}
        # A kept column outside the signature is read as text: a CSV has no types, and pandas would infer
        # one for each read, so a file cut into row ranges (or joined with others) could change its type
        # (an id empty from row 1,500: 0.0 in one read, 0 in another). Text is what the file says, for
        # every range. The model never reads such a column (or, without a signature, is given its own read).
        outside = [c for c in self.ref.keep_columns if not self.dtypes or c not in self.dtypes]
        if outside and self.dtypes:
            from pandas.api.types import pandas_dtype

            self.dtypes = {**self.dtypes, **{c: pandas_dtype("str") for c in outside}}
        self.kept_apart = bool(outside) and not self.dtypes

    def _read(self, path: str) -> Any:
        import pandas as pd

        ext = os.path.splitext(path)[1].lower()
        if ext == ".csv":
            if self.dtypes:
                return pd.read_csv(path, dtype=self.dtypes)
            return pd.read_csv(path)
        if ext in (".parquet", ".pqt"):
            return pd.read_parquet(path)
        raise ValueError(f"File type '{ext or '(none)'}' is not supported. Current accepted filetypes are: {ACCEPTED}")

    def score(self, files: list[str], names: list[str]) -> Outcome:
        file_rows: list[tuple[str, int]] = []  # each file's rows in the output (jobs/reuse.py indexes them)
        outcome = Outcome(ok=True, file_rows=file_rows)
        joined = None
        combined = self._read_small_csvs_at_once(files, names) if self.row_wise and len(files) > 1 else None
        if combined is not None:
            joined, frames = combined
        else:
            frames = []
            for path, name in zip(files, names, strict=True):
                try:
                    frames.append((name, self._read(path)))
                except Exception as exc:  # one unreadable file is one failed item
                    self._fail(outcome, name, exc)
        chunks: list[Any] = []
        csv_paths = {n: p for p, n in zip(files, names, strict=True) if p.lower().endswith(".csv")}
        predicted = self._predict_together(frames, joined) if self.row_wise and len(frames) > 1 else None
        if predicted is not None and self.ref.output_format == "csv" and not self.ref.keep_columns:
            # the rows of every file at once: one pass over the joint predictions, the bytes of file by file
            counts = [len(frame) for _, frame in frames]
            text = _format_files(predicted.joint, [name for name, _ in frames], counts)
            if text is not None:
                file_rows.extend((name, count) for (name, _), count in zip(frames, counts, strict=True))
                outcome.succeeded += len(frames)
                outcome.rows += sum(counts)
                outcome.data = text.encode()
                return outcome
        for index, (name, frame) in enumerate(frames):
            try:
                if predicted is not None:
                    predictions = predicted[index]
                else:  # a file with a header and no rows gives no rows, as it does when predicted together
                    frame = _materialized(frame)
                    predictions = self.model.predict(frame) if len(frame) else []
                if self.ref.keep_columns:
                    frame = _materialized(frame)
                chunk, rows = self._rows(predictions, name, frame, 0, csv_paths.get(name))
            except Exception as exc:  # a file whose prediction fails is one failed item
                self._fail(outcome, name, exc)
                continue
            chunks.append(chunk)
            outcome.succeeded += 1
            outcome.rows += rows
            file_rows.append((name, rows))
        outcome.data = render(chunks, self.ref.output_format)
        return outcome

    def _rows(self, predictions: Any, name: str, frame: Any, start: int, source: Any = None) -> tuple[Any, int]:
        """One file's (or range's) rows in the job's output format: CSV text, or a table (parquet, jsonl)."""
        if self.ref.output_format == "csv" and not self.ref.keep_columns:
            return _format_rows(predictions, name, start)
        table = _results_table(predictions, name, start, self._kept(frame, source))
        if self.ref.output_format == "csv":
            return table.to_csv(header=False, index=False, lineterminator="\n"), len(table)
        return table, len(table)

    def _kept(self, frame: Any, source: Any) -> Any:
        """The --keep-columns columns of one file or range; `source` (a CSV's path or bytes) is read again,
        kept columns only and as text, when the model has no signature to type the first read."""
        columns = self.ref.keep_columns
        out = kept(frame, columns, len(frame))
        if out is None or not self.kept_apart or source is None:
            return out
        import io

        import pandas as pd

        data = io.BytesIO(source) if isinstance(source, bytes) else source
        text = pd.read_csv(data, usecols=lambda c: c in columns, dtype="str")
        if len(text) != len(frame):
            raise ValueError("--keep-columns: the kept columns could not be read back as text")
        return text[list(columns)].reset_index(drop=True)

    def score_range(self, root: Any, rng: Any) -> Outcome:
        """One row range of a big file (scoring/ranges.py), read with ranged reads; numbered from the
        range's first row when the plan knows it (the publisher renumbers otherwise)."""
        from batchctl.errors import StorageUnavailableError
        from batchctl.scoring.ranges import csv_range_data, read_range

        outcome = Outcome(ok=True)
        try:
            frame = read_range(root, rng, self.dtypes)
            predictions = self.model.predict(frame) if len(frame) else []
            source = csv_range_data(root, rng) if self.kept_apart and rng.kind == "csv" else None
            chunk, rows = self._rows(predictions, rng.file, frame, rng.first_row or 0, source)
            if isinstance(chunk, str) and chunk.count("\n") != rows:
                raise ValueError("an output row holds a line break, so this range's rows cannot be renumbered")
        except StorageUnavailableError:
            raise  # the store is down, not the file: the attempt fails and is retried
        except Exception as exc:  # the range's file is one failed item
            self._fail(outcome, rng.file, exc)
            return outcome
        outcome.succeeded, outcome.rows = 1, rows
        outcome.data = render([chunk], self.ref.output_format)
        return outcome

    def _fail(self, outcome: Outcome, name: str, exc: BaseException) -> None:
        message = _one_line(exc)
        outcome.failed += 1
        outcome.item_errors.append(ItemError(name, ErrorInfo(type(exc).__name__, message)))
        log.error(f"Error processing input file: '{name}'. Exception: {message}")

    def _read_small_csvs_at_once(self, files: list[str], names: list[str]) -> tuple[Any, list[tuple[str, Any]]] | None:
        """Small CSV files with one header: one read_csv over their concatenated rows, cut back per file.

        read_csv costs ~0.5 ms per call before it reads a byte, which dominates files of a few rows.
        Only plain files qualify (no quotes, no blank lines, same header); anything else, or any parse
        error, returns None and the files are read one by one, so failures stay attributed to files.
        """
        import io

        import pandas as pd

        if any(not path.lower().endswith(".csv") for path in files):
            return None
        header = None
        bodies: list[bytes] = []
        counts: list[int] = []
        for path in files:  # per file only what must be: the read, the header's match, the line count
            try:
                raw = _head(path, SMALL_CSV_BYTES + 1)
            except OSError:
                return None
            if len(raw) > SMALL_CSV_BYTES:
                return None
            head, sep, body = raw.partition(b"\n")
            if not sep or (header is not None and head != header):
                return None
            header = head
            if body and not body.endswith(b"\n"):
                body += b"\n"
            bodies.append(body)
            counts.append(body.count(b"\n"))
        if header is None:
            return None
        blob = b"".join(bodies)
        # the checks of every file at once, over the bytes of all of them: no quotes, no byte-order mark, no
        # blank line (an empty or whitespace-only line)
        if b'"' in header or b'"' in blob or header.startswith(b"\xef\xbb\xbf") or _BLANK_LINE.search(blob):
            return None
        try:
            joined = pd.read_csv(io.BytesIO(header + b"\n" + blob), dtype=self.dtypes)
        except Exception:  # attribute the failure by reading the files one by one
            return None
        if len(joined) != sum(counts):
            return None
        frames: list[tuple[str, Any]] = []
        start = 0
        for name, count in zip(names, counts, strict=True):
            frames.append((name, _Slice(joined, start, start + count)))
            start += count
        return joined, frames

    def _predict_together(self, frames: list[tuple[str, Any]], joined: Any = None) -> _Joint | None:
        """One predict call for the files of a mini-batch (row-wise flavors only); None to go file by file.

        scikit-learn predictions are row-wise, so predicting the concatenated rows and cutting them
        back per file gives the same values as one call per file, without the per-call overhead.
        """
        import numpy as np
        import pandas as pd

        if joined is None:  # slices of one joined read share its columns; separate reads must agree
            first = frames[0][1]
            columns, dtypes = list(first.columns), list(first.dtypes)
            if any(list(f.columns) != columns or list(f.dtypes) != dtypes for _, f in frames[1:]):
                return None
        lengths = [len(f) for _, f in frames]
        try:
            if joined is None:
                joined = pd.concat([f for _, f in frames], ignore_index=True)
            predictions = self.model.predict(joined)
        except Exception:  # attribute the failure to files by predicting them one by one
            return None
        if isinstance(predictions, pd.DataFrame | pd.Series):
            if len(predictions) != sum(lengths):
                return None
            return _Joint(predictions, lengths)
        arr = np.asarray(predictions)
        if arr.ndim == 0 or len(arr) != sum(lengths):
            return None
        return _Joint(arr, lengths)


class _Joint:
    """The predictions of a mini-batch's files made in one call; `[i]` is file i's, cut when asked."""

    __slots__ = ("joint", "cuts")

    def __init__(self, joint: Any, lengths: list[int]) -> None:
        import numpy as np

        self.joint = joint
        self.cuts = np.cumsum([0, *lengths]).tolist()

    def __getitem__(self, index: int) -> Any:
        start, stop = self.cuts[index], self.cuts[index + 1]
        if hasattr(self.joint, "iloc"):
            return self.joint.iloc[start:stop]
        return self.joint[start:stop]


def _head(path: str, limit: int) -> bytes:
    """Up to `limit` bytes of a file, with the fewest calls: a tiny file is one open, one read, one close."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        size = 0
        while size < limit:
            chunk = os.read(fd, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Slice:
    """One file's rows [start, stop) of a mini-batch's joined read, cut from the joined frame only when
    something needs them as a frame (a file-by-file predict, --keep-columns): slicing 500 one-row
    files one by one took a third of scoring them."""

    __slots__ = ("joined", "start", "stop")

    def __init__(self, joined: Any, start: int, stop: int) -> None:
        self.joined, self.start, self.stop = joined, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def frame(self) -> Any:
        return self.joined.iloc[self.start : self.stop]


def _materialized(frame: Any) -> Any:
    return frame.frame() if isinstance(frame, _Slice) else frame


def _one_line(exc: BaseException) -> str:
    return cap(" ".join(str(exc).split()) or type(exc).__name__)


def _signature_dtypes(model: Any) -> tuple[dict[str, Any] | None, list[str] | None]:
    """Column types from the model signature, used to read CSV files (Azure's driver does the same)."""
    try:
        schema = model.metadata.get_input_schema()
    except Exception:  # a model without metadata is scored untyped
        return None, None
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None, None
    dtypes: dict[str, Any] = {}
    for col in schema.inputs:
        name = getattr(col, "name", None)
        kind = getattr(getattr(col, "type", None), "name", None)
        mapped = sklearn_direct.SIGNATURE_DTYPES.get(str(kind))
        if name and mapped:
            dtypes[name] = mapped
    return (dtypes or None), schema.input_names()


def kept(frame: Any, columns: tuple[str, ...], rows: int) -> Any:
    """The input columns named by --keep-columns; a missing one fails the item."""
    if not columns:
        return None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"--keep-columns: column(s) {', '.join(map(repr, missing))} not in the input "
            f"(its columns: {', '.join(map(str, frame.columns))}); `job resume` keeps the job's columns: "
            "score with others in a new job, `batchctl job rerun -n <job> --set keep_columns=<columns>`"
        )
    return frame[list(columns)].reset_index(drop=True)


def render(chunks: list[Any], output_format: str) -> bytes:
    """The bytes of a part: CSV text joined, JSON lines, or one Parquet file (one row group per part)."""
    from batchctl.scoring.formats import jsonl_text, parquet_bytes

    if output_format == "csv":
        return "".join(chunks).encode()
    tables = [c for c in chunks if len(c)]
    if not tables:
        return b""
    if output_format == "jsonl":
        return "".join(jsonl_text(t) for t in tables).encode()
    return parquet_bytes(tables)


def _results_table(predictions: Any, name: str, start: int = 0, keep: Any = None) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        out = predictions.reset_index(drop=True).copy()
    elif isinstance(predictions, pd.Series):
        out = pd.DataFrame({"prediction": predictions.reset_index(drop=True)})
    elif isinstance(predictions, dict):
        out = pd.DataFrame({k: np.asarray(v).tolist() if np.ndim(v) > 1 else v for k, v in predictions.items()})
    else:
        arr = np.asarray(predictions)
        if arr.ndim == 2:
            out = pd.DataFrame(arr, columns=[f"prediction_{i}" for i in range(arr.shape[1])])
        elif arr.ndim <= 1:
            out = pd.DataFrame({"prediction": arr.reshape(-1)})
        else:
            out = pd.DataFrame({"prediction": [str(x.tolist()) for x in arr]})
    if keep is not None:
        clash = [c for c in keep.columns if c in out.columns or c in ("row", "file_name")]
        if clash:
            raise ValueError(f"--keep-columns: {', '.join(map(repr, clash))} would clash with an output column")
        out = pd.concat([keep, out], axis=1)
    out.insert(0, "row", np.arange(start, start + len(out), dtype=np.int64))
    out["file_name"] = name
    return out


_PLAIN_KINDS = "iub"  # integers, unsigned, booleans: str() is exactly what pandas writes


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n\r') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _value_texts(predictions: Any) -> list[str] | None:
    """Each prediction as pandas' to_csv writes it, for 1-D integer/boolean/float64 predictions; None for
    anything else (a table, strings, other dtypes), which goes through pandas."""
    import numpy as np
    import pandas as pd

    arr = predictions.to_numpy() if isinstance(predictions, pd.Series) else predictions
    if not (isinstance(arr, np.ndarray) and arr.ndim == 1):
        return None
    if arr.dtype.kind in _PLAIN_KINDS:  # ints as str(); booleans print True/False, as pandas writes them
        return [str(v) for v in arr.tolist()]
    if arr.dtype != np.float64:
        return None
    if np.isnan(arr).any():  # pandas writes a missing float as an empty field
        return [repr(v) if v == v else "" for v in arr.tolist()]
    return [repr(v) for v in arr.tolist()]


def _format_rows(predictions: Any, name: str, start: int = 0) -> tuple[str, int]:
    """`row,prediction...,file_name` lines; a fast path for 1-D integer/boolean/float64 predictions."""
    texts = _value_texts(predictions)
    if texts is not None:
        if not texts:
            return "", 0
        tail = f",{_csv_field(name)}\n"
        # f-strings in a list comprehension: twice as fast as str.format mapped over the rows
        return tail.join([f"{i},{v}" for i, v in enumerate(texts, start)]) + tail, len(texts)
    table = _results_table(predictions, name, start)
    return table.to_csv(header=False, index=False, lineterminator="\n"), len(table)


def _format_files(predictions: Any, names: list[str], counts: list[int]) -> str | None:
    """The rows of several files predicted in one call (`counts[i]` rows of file `names[i]`, each file
    numbered from 0): what `_format_rows` gives file by file, joined; None where it would use pandas."""
    texts = _value_texts(predictions)
    if texts is None:
        return None
    lines: list[str] = []
    position = 0
    for name, count in zip(names, counts, strict=True):
        tail = f",{_csv_field(name)}\n"
        if count == 1:  # the tiny-file case: one line, no inner loop
            lines.append(f"0,{texts[position]}{tail}")
        else:
            lines.extend([f"{i},{v}{tail}" for i, v in enumerate(texts[position : position + count])])
        position += count
    return "".join(lines)
