"""Fixtures for the job tests: real MLflow models (trained once per session), input folders, a
behaviour-driven custom scoring script, and helpers to create endpoints/deployments and run jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.scripts import script_text
from support.waiting import wait_for  # noqa: F401 - re-exported for the tests that import it from here
from testkit import model_requirements

# The heart data: a numeric int column, a float column and two string columns. `cp` holds digits
# ("1".."4"), so pandas would read it as int64 without the signature's types, and the model refuses it.
COLUMNS = ["age", "chol", "cp", "thal"]
STRING_COLUMNS = {"cp": "str", "thal": "str"}


def heart_frame(n: int, seed: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(30, 80, n).astype("int64"),
            "chol": rng.uniform(120, 400, n).round(2),
            "cp": rng.choice(["1", "2", "3", "4"], n),
            "thal": rng.choice(["normal", "fixed", "reversible"], n),
        }
    )


def _save(pipeline: Any, X: Any, y: Any, target: Path) -> Path:
    import logging

    import mlflow.sklearn
    from mlflow.models import infer_signature

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    pipeline.fit(X, y)
    mlflow.sklearn.save_model(
        pipeline,
        str(target),
        signature=infer_signature(X, pipeline.predict(X)),
        serialization_format="cloudpickle",
        pip_requirements=model_requirements(),
    )
    return target


def train_classifier(target: Path) -> Path:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = heart_frame(300, 0)
    y = ((X["age"] > 55) ^ (X["thal"] == "normal") | (X["cp"] == "4")).astype("int64")
    pipeline = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["cp", "thal"]),
                        ("num", StandardScaler(), ["age", "chol"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    )
    return _save(pipeline, X, y, target)


@pytest.fixture(scope="session")
def heart_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved MLflow model folder (read-only): string columns, so the signature's types matter."""
    return train_classifier(tmp_path_factory.mktemp("heart-model") / "model")


@pytest.fixture(scope="session")
def reference_model(heart_model: Path) -> Any:
    """The model loaded in the test process, to compute the expected predictions."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(heart_model))


def reference_predictions(model: Any, path: Path) -> list[Any]:
    import pandas as pd

    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype={"age": "int64", "chol": "float64", **STRING_COLUMNS})
    else:
        frame = pd.read_parquet(path)
    return list(model.predict(frame))


@pytest.fixture
def heart_data(tmp_path: Path) -> Callable[..., Path]:
    """heart_data(n_files, rows=..., name=...) -> a folder of heart CSV files part-000.csv ..."""

    def make(n_files: int = 5, rows: int = 7, name: str = "data") -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_files):
            heart_frame(rows, 100 + i).to_csv(folder / f"part-{i:03d}.csv", index=False)
        return folder

    return make


# ------------------------------------------------------------------------------ the behaviour script

# Every input file holds one command; run() acts on it. State that must survive a worker (flaky items,
# PIDs) lives in $STATE_DIR. RETURN=frame returns a DataFrame instead of a list. Every file run() reaches
# leaves $STATE_DIR/ran/<name>. Gates replace sleeps: "gate NAME" waits until $STATE_DIR/gates/NAME
# exists (the test, or "open NAME" in another mini-batch, creates it); a gate never opened fails the
# attempt after 120 s instead of hanging.
BEHAVIOUR_SCRIPT = script_text("behaviour_score")


def write_inputs(folder: Path, commands: dict[str, str]) -> Path:
    """Files named by the keys (sub-folders allowed), each holding a behaviour command."""
    for rel, command in commands.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(command + "\n")
    return folder


# ------------------------------------------------------------------------------ workspace helpers


def ok_json(result: Any) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.stdout)
    return json.loads(result.stdout)


class Env:
    """Creates endpoints and deployments through the CLI and runs jobs."""

    def __init__(self, cli: Any, tmp_path: Path, heart_model: Path | None) -> None:
        self.cli = cli
        self.tmp = tmp_path
        self.heart_model = heart_model
        self.state = tmp_path / "state"
        self.state.mkdir(exist_ok=True)
        self.home = Path(os.environ["BATCHCTL_HOME"])

    def endpoint(self, name: str = "heart") -> str:
        ok_json(self.cli("endpoint", "create", "-n", name))
        return name

    def _deploy(self, data: dict[str, Any], *extra: str) -> dict[str, Any]:
        import yaml

        spec = self.tmp / "specs" / f"{data['endpoint_name']}-{data['name']}.yml"
        spec.parent.mkdir(exist_ok=True)
        spec.write_text(yaml.safe_dump(data, sort_keys=False))
        return ok_json(self.cli("deployment", "create", "-f", str(spec), *extra))

    def mlflow(self, name: str = "mlflow", endpoint: str = "heart", **settings: Any) -> dict[str, Any]:
        assert self.heart_model is not None
        return self._deploy(
            {
                "name": name,
                "endpoint_name": endpoint,
                "type": "model",
                "model": {"path": str(self.heart_model), "type": "mlflow_model", "name": "heart"},
                "settings": {"max_concurrency_per_instance": 1, **settings},
            }
        )

    def script(
        self,
        name: str = "custom",
        endpoint: str = "heart",
        source: str = BEHAVIOUR_SCRIPT,
        env: dict[str, str] | None = None,
        model: dict[str, Any] | str | None = None,
        files: dict[str, str] | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        code = self.tmp / f"code-{name}"
        code.mkdir(exist_ok=True)
        (code / "score.py").write_text(source)
        for rel, text in (files or {}).items():
            (code / rel).write_text(text)
        if model is None:
            model_dir = self.tmp / "custom-model"
            model_dir.mkdir(exist_ok=True)
            (model_dir / "weights.txt").write_text("w=1\n")
            model = {"path": str(model_dir), "type": "custom_model", "name": "weights"}
        return self._deploy(
            {
                "name": name,
                "endpoint_name": endpoint,
                "type": "model",
                "model": model,
                "code_configuration": {"code": str(code), "scoring_script": "score.py"},
                "settings": {
                    "max_concurrency_per_instance": 1,
                    "environment_variables": {"STATE_DIR": str(self.state), **(env or {})},
                    **settings,
                },
            }
        )

    def invoke(self, endpoint: str, *args: str) -> Any:
        return self.cli("endpoint", "invoke", "-n", endpoint, *args)

    def show(self, job: str) -> dict[str, Any]:
        return ok_json(self.cli("job", "show", "-n", job))

    def job_dir(self, job: str) -> Path:
        return self.home / "jobs" / job

    def pids(self) -> set[int]:
        folder = self.state / "pids"
        return {int(p.name) for p in folder.iterdir()} if folder.is_dir() else set()

    def ran(self) -> set[str]:
        """The input files run() reached (every attempt of every worker)."""
        folder = self.state / "ran"
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def open_gate(self, name: str) -> None:
        (self.state / "gates").mkdir(exist_ok=True)
        (self.state / "gates" / name).touch()


@pytest.fixture
def env(cli: Any, tmp_path: Path) -> Env:
    """For custom-script deployments (no MLflow model trained)."""
    return Env(cli, tmp_path, None)


@pytest.fixture
def mlenv(cli: Any, tmp_path: Path, heart_model: Path) -> Env:
    return Env(cli, tmp_path, heart_model)


# ------------------------------------------------------------------------------ processes


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def batchctl_proc(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "batchctl", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
        **kwargs,
    )


def batchctl_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchctl", *args],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=timeout,
    )


def read_job(home: Path, name: str) -> dict[str, Any]:
    return json.loads((home / "jobs" / name / "job.json").read_text())


def start_detached(home: Path, data: Path, out: Path, job: str, *args: str) -> tuple[dict[str, Any], int]:
    """`endpoint invoke -n heart --no-wait` in a real process: the record it printed, and its runner's pid."""
    result = batchctl_run(
        "endpoint", "invoke", "-n", "heart", "--input", str(data), "--output-path", str(out),
        "--job-name", job, "--no-wait", "-o", "json", *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    runner = read_job(home, job)["runner"]
    assert runner and runner["pid"]
    return json.loads(result.stdout), runner["pid"]


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
