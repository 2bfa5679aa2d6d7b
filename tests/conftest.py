"""Test isolation (hatch style): every test gets its own workspace and a plain, wide terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import scheduling
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


# With pytest-xdist (`make test` runs `-n 3 --dist loadgroup`), a group's tests run in one worker, one
# after the other. These folders share one costly session fixture each (a Ray head, a browser), so each
# is one group; every other test file is a group of its own, so that its module fixtures start once.
SHARED_GROUPS = ("ray", "studio")


def _group(path: Path) -> str:
    rel = path.relative_to(ROOT / "tests") if path.is_relative_to(ROOT / "tests") else path
    return scheduling.group_of(rel.as_posix(), SHARED_GROUPS)


def _loadgroup(config: pytest.Config) -> bool:
    """`--dist loadgroup`: on xdist's controller, or in one of its workers (which it sets to `dist=no`)."""
    return getattr(config.option, "dist", "no") == "loadgroup" or bool(getattr(config.option, "loadgroup", False))


def pytest_configure(config: pytest.Config) -> None:
    # xdist would hand the groups out by their number of tests; the order of the collection (longest
    # first, below) is kept instead (tests/support/scheduling.py)
    if getattr(config.option, "dist", "no") == "loadgroup":
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("timeout") is None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.timeout(FAST_TEST_TIMEOUT))
        group = _group(Path(str(item.path)))
        item.add_marker(pytest.mark.xdist_group(group))
        groups.setdefault(group, []).append(item)
    if not _loadgroup(config):
        return
    cache = getattr(config, "cache", None)
    measured = scheduling.measured_seconds(cache)
    counts = {
        name: (
            sum(1 for i in its if i.get_closest_marker("slow")),
            sum(1 for i in its if not i.get_closest_marker("slow")),
        )
        for name, its in groups.items()
    }
    items[:] = [item for name in scheduling.order_groups(counts, measured) for item in groups[name]]


_RUN_SECONDS: dict[str, float] = {}


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own (a plain LoadGroupScheduling)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The groups above, found from each test's path (tests/support/scheduling.py says why)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return scheduling.make_scheduler(config, log, SHARED_GROUPS)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """The controller sums each group's seconds (setup, call and teardown of every test)."""
    group = scheduling.group_of_nodeid(report.nodeid, SHARED_GROUPS)
    _RUN_SECONDS[group] = _RUN_SECONDS.get(group, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    cache = getattr(config, "cache", None)
    # the controller of an xdist run (a worker has `workerinput`): the next run hands the groups out by
    # these figures
    if cache is None or hasattr(config, "workerinput") or not _RUN_SECONDS:
        return
    if not _loadgroup(config):
        return
    cache.set(scheduling.CACHE_KEY, scheduling.merge_seconds(cache.get(scheduling.CACHE_KEY, {}), _RUN_SECONDS))


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
