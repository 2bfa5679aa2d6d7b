"""Fixtures for the server tests (helpers in server_helpers.py): a real MLflow model, a workspace with an
endpoint and two deployments, and real `batchctl serve` subprocesses stopped by PID at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Server, Workspace

from support.models import cached_heart_model
from support.workspaces import WorkspaceTemplates


@pytest.fixture(scope="session")
def heart_model(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_heart_model(pytestconfig, tmp_path_factory)


@pytest.fixture(scope="session")
def reference(heart_model: Path) -> Callable[[Path], list[str]]:
    """The rows batchctl must write for one CSV file: `row,prediction,file_name`, from the model loaded here."""
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(heart_model))

    def rows(path: Path, name: str | None = None) -> list[str]:
        frame = pd.read_csv(path, dtype={"thal": "str"})
        return [f"{i},{p},{name or path.name}" for i, p in enumerate(model.predict(frame))]

    return rows


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    heart_model: Path,
    workspace_templates: WorkspaceTemplates,
) -> Iterator[tuple[Workspace, Server]]:
    """One workspace (a copy of the session's) and one `batchctl serve` shared by the tests of a module."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    root = workspace_templates.copy("server", lambda r: Workspace(r, heart_model), folder / "ws")
    ws = Workspace(root, heart_model, built=True)
    server = Server(ws)
    try:
        yield ws, server
    finally:
        server.kill()


@pytest.fixture
def workspace(tmp_path: Path, heart_model: Path, workspace_templates: WorkspaceTemplates) -> Workspace:
    """A copy of the session's server workspace (built once: tests/support/workspaces.py)."""
    root = workspace_templates.copy("server", lambda r: Workspace(r, heart_model), tmp_path / "ws")
    return Workspace(root, heart_model, built=True)


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(ws: Workspace, *args: str, **kwargs: Any) -> Server:
        server = Server(ws, *args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
