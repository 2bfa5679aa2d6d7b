"""Custom scoring scripts with Azure's contract: init() once per worker, run(mini_batch) per mini-batch.

run() returns a DataFrame or a list; its length is the number of items that succeeded.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import sys
import traceback
from typing import Any

from batchctl.scoring.base import Outcome, ScorerRef
from batchctl.scoring.failures import ErrorInfo, ItemError

RUN_CONTRACT = (
    "The run() method in the entry script should return a list or a pandas DataFrame. "
    "The length of returned result is considered as succeeded number of items."
)


class ScriptScorer:
    def __init__(self, ref: ScorerRef) -> None:
        self.ref = ref
        self.module: Any = None

    def init(self) -> None:
        assert self.ref.code_dir and self.ref.scoring_script
        script = os.path.join(self.ref.code_dir, self.ref.scoring_script)
        module_name = os.path.splitext(os.path.basename(script))[0]
        spec = importlib.util.spec_from_file_location(module_name, script)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load scoring script {script}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        for required in ("init", "run"):
            if not callable(getattr(module, required, None)):
                raise AttributeError(f"scoring script {self.ref.scoring_script} defines no {required}() function")
        self.module = module
        module.init()

    def score(self, files: list[str], names: list[str]) -> Outcome:
        try:
            result = self.module.run(list(files))
        except BaseException as exc:  # KeyboardInterrupt or SystemExit raised by run() is reported by type too
            info = ErrorInfo.from_exception(exc, self.ref.code_dir)
            return Outcome(ok=False, error=traceback.format_exc(), error_info=info)
        if result is None:
            return Outcome(ok=False, error=f"run() returned None. {RUN_CONTRACT}")
        try:
            count, data = _format(result, self.ref.output_action == "append_row")
        except TypeError as exc:
            return Outcome(ok=False, error=f"{exc}. {RUN_CONTRACT}")
        succeeded = min(count, len(files))
        failed = len(files) - succeeded
        outcome = Outcome(ok=True, succeeded=succeeded, failed=failed, rows=count, data=data)
        if failed:
            outcome.error = (
                f"run() returned {count} results for {len(files)} files: {failed} items counted as failed; "
                "which files failed cannot be told"
            )
            outcome.item_errors.append(ItemError(None, ErrorInfo(None, outcome.error)))
        return outcome


def _format(result: Any, append: bool) -> tuple[int, bytes]:
    """Count the results and, for append_row, render them: DataFrame rows as CSV, list items one per line."""
    try:
        import pandas as pd

        is_frame = isinstance(result, pd.DataFrame)
    except ImportError:  # pragma: no cover - pandas is a core dependency
        is_frame = False
    if is_frame:
        if not append:
            return len(result), b""
        return len(result), result.to_csv(header=False, index=False, lineterminator="\n").encode()
    if isinstance(result, list | tuple):
        if not append:
            return len(result), b""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for item in result:
            if isinstance(item, list | tuple):
                writer.writerow(item)
            else:
                text = item if isinstance(item, str) else str(item)
                buffer.write(text if text.endswith("\n") else text + "\n")
        return len(result), buffer.getvalue().encode()
    raise TypeError(f"run() returned a {type(result).__name__}")
