"""What a worker needs to score (plain, picklable data) and what one attempt returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from batchctl.scoring.failures import ErrorInfo, ItemError


@dataclass(frozen=True)
class ScorerRef:
    """Everything a worker process needs to build its scorer; checked to pickle before spawning."""

    kind: str  # "mlflow" | "script"
    model_dir: str  # AZUREML_MODEL_DIR: the folder that holds the model folder
    model_path: str  # the model folder (or file) itself
    code_dir: str | None
    scoring_script: str | None
    output_action: str  # append_row | summary_only
    output_dir: str  # AZUREML_BI_OUTPUT_PATH (a local folder)
    logging_level: str
    environment_variables: dict[str, str] = field(default_factory=dict)
    output_format: str = "csv"  # csv | parquet | jsonl: how the no-code scorer writes its rows
    keep_columns: tuple[str, ...] = ()  # input columns copied before the predictions
    masked: tuple[str, ...] = ()  # resolved `${env:NAME}` values: the worker masks them in its output
    # an isolated environment (batchctl.envs): the interpreter a local worker starts with and its whole
    # sys.path (the environment's own, plus batchctl's package alone); None: this interpreter
    python: str | None = None
    python_path: tuple[str, ...] = ()
    env_key: str | None = None  # part of a warm pool's key through the ref


@dataclass
class Outcome:
    """One attempt at one mini-batch, as the worker reports it."""

    ok: bool  # False: the attempt failed as a whole and may be retried
    succeeded: int = 0
    failed: int = 0
    rows: int = 0
    data: bytes = b""  # the append_row lines of this mini-batch
    error: str | None = None  # the attempt's failure (a traceback, for a failed run())
    error_info: ErrorInfo | None = None  # the same, as type, message and user-code frame
    item_errors: list[ItemError] = field(default_factory=list)
    # (file, rows) of each succeeded file, in order, when the rows are per file (the no-code scorer):
    # what lets a later job reuse one file's rows (jobs/reuse.py)
    file_rows: list[tuple[str, int]] | None = None


class Scorer(Protocol):
    def init(self) -> None:
        """Called once per worker process before any mini-batch."""

    def score(self, files: list[str], names: list[str]) -> Outcome:
        """Score local files (names: how they appear in results and logs)."""
