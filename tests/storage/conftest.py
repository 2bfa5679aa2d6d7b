"""Fixtures for the remote-storage tests: a real MLflow model behind a real endpoint, CSV inputs uploaded to
the session's Azurite, and the CLI as a subprocess (helpers in storage_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from storage_helpers import ENDPOINT, Batchctl

from support.models import cached_heart_model
from support.workspaces import WorkspaceTemplates


@pytest.fixture(scope="session")
def storage_model(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_heart_model(pytestconfig, tmp_path_factory, rows=60, seed=1)  # storage_helpers.train_model's


@pytest.fixture
def bctl(tmp_path: Path, isolation: Path) -> Batchctl:
    return Batchctl(isolation, tmp_path)


def build_heart(root: Path, model: Path) -> None:
    """An endpoint `heart` whose default deployment scores with the real MLflow model; 1 worker."""
    from testkit import Cli

    cli = Cli()
    ws = ("--workspace", str(root))
    assert cli(*ws, "model", "create", "--name", "heart", "--type", "mlflow_model", "--path", str(model)).exit_code == 0
    assert cli(*ws, "endpoint", "create", "-n", ENDPOINT).exit_code == 0
    spec = root.parent / "deployment.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "mlflow-dpl",
                "endpoint_name": ENDPOINT,
                "type": "model",
                "model": "azureml:heart@latest",
                "settings": {
                    "max_concurrency_per_instance": 1,
                    "mini_batch_size": 2,
                    "retry_settings": {"max_retries": 1, "timeout": 60},
                },
            }
        )
    )
    result = cli(*ws, "deployment", "create", "-f", str(spec), "--set-default")
    assert result.exit_code == 0, result.output


@pytest.fixture
def heart(bctl: Batchctl, storage_model: Path, workspace_templates: WorkspaceTemplates) -> Batchctl:
    """An endpoint `heart` whose default deployment scores with the real MLflow model; 1 worker: a copy of
    the session's (built once, support.workspaces) at the test's workspace."""
    assert not bctl.home.exists(), "heart copies a whole workspace: request it before anything writes one"
    workspace_templates.copy("storage-heart", lambda root: build_heart(root, storage_model), bctl.home)
    return bctl


@pytest.fixture
def upload(azurite: Any) -> Callable[[str, dict[str, bytes]], None]:
    def put(container: str, files: dict[str, bytes], prefix: str = "") -> None:
        fs = azurite.fs()
        for rel, data in files.items():
            fs.pipe_file(f"{container}/{prefix}{rel}", data)

    return put


@pytest.fixture
def blob_reader(azurite: Any) -> Callable[[str], bytes | None]:
    def read(path: str) -> bytes | None:
        fs = azurite.fs()
        fs.invalidate_cache()
        return fs.cat_file(path) if fs.exists(path) else None

    return read


@pytest.fixture
def no_leftover_tmp(tmp_path: Path) -> Iterator[Path]:
    """A TMPDIR for the CLI and its workers; the test can check it is empty afterwards (scratch removed)."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    yield tmp
