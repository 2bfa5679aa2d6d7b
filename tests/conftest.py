"""Test isolation (hatch style): every test gets its own workspace and a plain, wide terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.workspaces import WorkspaceTemplates
from testkit import Cli

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["azurite_fixture"]

# Variables that would point a test at the developer's own storage, identity or tracking server.
CLEARED_PREFIXES = ("AZURE_STORAGE_", "AZURE_CLIENT_")
CLEARED_NAMES = {"AZURE_TENANT_ID", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"}
# A test without its own timeout marker that is not marked slow must end within this (pyproject.toml
# sets 600 s for the rest): a hang fails with a traceback instead of stalling the run.
FAST_TEST_TIMEOUT = 120


def _hypothesis_profiles() -> None:
    """CI (CI=true) runs a derandomized profile, so a failure found there reproduces anywhere."""
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.register_profile("dev", print_blob=True)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")


_hypothesis_profiles()


def _interruptible_children() -> None:
    """A shell starts a background command (`make test &`, nohup) with SIGINT ignored, and that survives
    exec: every batchctl the tests start would then ignore the SIGINT that the Ctrl-C tests send. A
    handler is reset to the default at exec, so installing Python's own makes the children interruptible
    however pytest was started."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_interruptible_children()


# With pytest-xdist (`make test` runs `-n 2 --dist loadgroup`), a group's tests run in one worker, one
# after the other. These folders share one costly session fixture each (a Ray head, a browser), so each
# is one group; every other test file is a group of its own, so that its module fixtures start once.
SHARED_GROUPS = ("ray", "studio")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.timeout(FAST_TEST_TIMEOUT))
        path = Path(str(item.path))
        rel = path.relative_to(ROOT / "tests") if path.is_relative_to(ROOT / "tests") else path
        group = rel.parts[0] if rel.parts[0] in SHARED_GROUPS else str(rel)
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def isolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ws"
    monkeypatch.setenv("BATCHCTL_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("BATCHCTL_DEBUG", raising=False)
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    from batchctl.cli import _common

    monkeypatch.setitem(_common._STATE, "workspace", None)
    monkeypatch.setitem(_common._STATE, "debug", False)
    return home


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture(scope="session")
def workspace_templates(tmp_path_factory: pytest.TempPathFactory) -> WorkspaceTemplates:
    """Workspaces built once per session, copied per test (tests/support/workspaces.py)."""
    return WorkspaceTemplates(tmp_path_factory)


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str, dict[str, Any]], Path]:
    def write(name: str, data: dict[str, Any]) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def run_batchctl(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """The real installed entry point in a subprocess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "batchctl", *args], capture_output=True, text=True, env=full_env, **kwargs
    )
