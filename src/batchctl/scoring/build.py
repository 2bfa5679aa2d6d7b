"""The scorer a worker builds from its ScorerRef: the built-in MLflow scorer or a custom script."""

from __future__ import annotations

from typing import Any

from batchctl.scoring.base import ScorerRef


def build_scorer(ref: ScorerRef) -> Any:
    if ref.kind == "mlflow":
        from batchctl.scoring.mlflow_model import MlflowScorer

        return MlflowScorer(ref)
    from batchctl.scoring.script import ScriptScorer

    return ScriptScorer(ref)
