"""The built-in MLflow driver (no scoring script): pyfunc loaded once per worker, one predict per file.

Rows are `row,prediction[,more outputs],file_name`, comma-separated, no header.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any

from batchctl.scoring.base import Outcome, ScorerRef

log = logging.getLogger("batchctl.mlflow")
TABULAR = (".csv", ".parquet", ".pqt")
ACCEPTED = [".csv", ".parquet", ".pqt"]


class MlflowScorer:
    def __init__(self, ref: ScorerRef) -> None:
        self.ref = ref
        self.model: Any = None
        self.dtypes: dict[str, Any] | None = None
        self.columns: list[str] | None = None

    def init(self) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(self.ref.model_path)
        self.dtypes, self.columns = _signature_dtypes(self.model)

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
        outcome = Outcome(ok=True)
        buffer = io.StringIO()
        for path, name in zip(files, names, strict=True):
            try:
                frame = self._read(path)
                predictions = self.model.predict(frame)
                table = _results_table(predictions, len(frame), name)
            except Exception as exc:  # one file failing is one failed item, not a failed mini-batch
                reason = f"Error processing input file: '{name}'. Exception: {_one_line(exc)}"
                outcome.failed += 1
                outcome.item_errors.append((name, reason))
                log.error(reason)
                continue
            table.to_csv(buffer, header=False, index=False, lineterminator="\n")
            outcome.succeeded += 1
            outcome.rows += len(table)
        outcome.data = buffer.getvalue().encode()
        return outcome


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


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
        mapped = {
            "string": "string",
            "double": "float64",
            "float": "float32",
            "long": "int64",
            "integer": "int32",
            "boolean": "boolean",
        }.get(str(kind))
        if name and mapped:
            dtypes[name] = mapped
    return (dtypes or None), schema.input_names()


def _results_table(predictions: Any, n_rows: int, name: str) -> Any:
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
    out.insert(0, "row", range(len(out)))
    out["file_name"] = name
    return out
