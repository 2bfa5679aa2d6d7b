"""Fixtures for the Ray executor tests: one real local Ray instance for the session (2 CPUs, started in
a helper process and shut down after), a real MLflow model, a custom scoring script, and a helper
that makes the same deployment on `local` and on a ray compute."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_helpers import heart_frame

from testkit import model_requirements

# The helper process: starts a local instance, prints its GCS address, stops it when stdin closes.
HEAD = textwrap.dedent(
    """
    import logging, sys
    import ray
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    print(ray.get_runtime_context().gcs_address, flush=True)
    sys.stdin.read()
    ray.shutdown()
    """
)


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a 2-CPU local Ray instance (token authentication on, as Ray 2.5x+ does by default)."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"  # drivers connecting by explicit address must send the token
    log = tmp_path_factory.mktemp("ray-head") / "head.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHCTL_", "RAY_ADDRESS"))}
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", HEAD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: GCS, raylet and workers are ended with it
        )
    try:
        address = _read_line(proc, 120)
        if not address:
            raise RuntimeError(f"the Ray head did not start: {log.read_text()[-2000:]}")
        yield address
    finally:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        _wait_group_gone(proc.pid, 30)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    import selectors

    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        return ""
    return proc.stdout.readline().strip()


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Ray's processes of the helper's group must be gone (kill stragglers of our group only)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in psutil.process_iter() if _pgid(p.pid) == pgid]
        if not left:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


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
