"""Fixtures for the command tests: a real MLflow model (trained once per session), a scoring-code folder,
and helpers to compare the registry's bytes before and after a bad command."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from support.models import cached_heart_model


def load_root_helper(name: str) -> Any:
    """A helper of tests/conftest.py. Every conftest.py is imported as the module `conftest`, so with
    several of them `from conftest import ...` gets whichever was imported last; load it by path instead."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_batchctl_tests_root_conftest", Path(__file__).resolve().parents[1] / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


@pytest.fixture(scope="session")
def run_batchctl() -> Any:
    """tests/conftest.py's run_batchctl: the real installed entry point in a subprocess."""
    return load_root_helper("run_batchctl")


@pytest.fixture(scope="session")
def mlflow_model(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved MLflow model folder (MLmodel + model.pkl), trained once per machine: read-only."""
    return cached_heart_model(pytestconfig, tmp_path_factory)


@pytest.fixture
def score_code(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(
        "import os\n\n\ndef init():\n    global model_dir\n"
        "    model_dir = os.environ['AZUREML_MODEL_DIR']\n\n\n"
        "def run(mini_batch):\n    return [os.path.basename(p) for p in mini_batch]\n"
    )
    return code


@pytest.fixture
def custom_model(tmp_path: Path) -> Path:
    folder = tmp_path / "custom-model"
    folder.mkdir()
    (folder / "weights.json").write_text(json.dumps({"w": [1, 2, 3]}))
    (folder / "sub").mkdir()
    (folder / "sub" / "vocab.txt").write_text("a\nb\n")
    return folder


@pytest.fixture
def home() -> Path:
    return Path(os.environ["BATCHCTL_HOME"])


@pytest.fixture
def registry(home: Path) -> Any:
    class Registry:
        path = home / "registry.json"

        def bytes(self) -> bytes | None:
            return self.path.read_bytes() if self.path.exists() else None

        def data(self) -> dict[str, Any]:
            return json.loads(self.path.read_text())

    return Registry()


def _out(result: Any) -> Any:
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def out() -> Any:
    """out(result): the command's JSON stdout, after checking it exited 0 with nothing on stderr."""
    return _out


@pytest.fixture
def deployment_file(write_spec: Any, mlflow_model: Path) -> Any:
    """deployment_file(name, endpoint, **fields) -> a deployment YAML with the session's MLflow model."""

    def make(name: str, endpoint: str, file: str | None = None, **fields: Any) -> Path:
        data = {
            "$schema": "https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json",
            "name": name,
            "endpoint_name": endpoint,
            "type": "model",
            "model": {"path": str(mlflow_model), "type": "mlflow_model", "name": "heart"},
            **fields,
        }
        return write_spec(file or f"{endpoint}-{name}.yml", data)

    return make
