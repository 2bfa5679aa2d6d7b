"""Fixtures for the Ray executor tests: one real local Ray instance for the session (2 CPUs, started in
a helper process and shut down after), a real MLflow model, a custom scoring script, and a helper
that makes the same deployment on `local` and on a ray compute."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_helpers import RayHead, heart_frame

from testkit import model_requirements


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a 2-CPU local Ray instance (token authentication on, as Ray 2.5x+ does by default)."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"  # drivers connecting by explicit address must send the token
    head = RayHead(tmp_path_factory.mktemp("ray-head") / "head.log")
    try:
        yield head.address
    finally:
        head.stop()
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


# ------------------------------------------------------------------------------ model, data, script


@pytest.fixture(scope="session")
def ray_heart_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scikit-learn pipeline saved with mlflow in the cloudpickle format (read-only)."""
    import logging

    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = heart_frame(200, 0)
    y = ((X["age"] > 55) ^ (X["thal"] == "normal")).astype("int64")
    pipeline = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["thal"]),
                        ("num", StandardScaler(), ["age", "chol"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    target = tmp_path_factory.mktemp("ray-model") / "model"
    mlflow.sklearn.save_model(
        pipeline,
        str(target),
        signature=infer_signature(X, pipeline.predict(X)),
        serialization_format="cloudpickle",
        pip_requirements=model_requirements(),
    )
    return target
