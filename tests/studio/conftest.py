"""Fixtures for the Studio tests: a real MLflow model, the example's workspace, a real `batchctl serve`
subprocess, and Debian's chromium driven by Playwright (never Playwright's own browser download)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from studio_helpers import CHROMIUM, CHROMIUM_ARGS, ExampleWorkspace, InProcessStudio, StudioServer

from support.models import cached_heart_model


@pytest.fixture(scope="session")
def heart_model(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_heart_model(pytestconfig, tmp_path_factory)


@pytest.fixture
def example(tmp_path: Path, heart_model: Path) -> ExampleWorkspace:
    return ExampleWorkspace(tmp_path / "ws", heart_model)


@pytest.fixture
def server(example: ExampleWorkspace) -> Iterator[StudioServer]:
    started = StudioServer(example)
    yield started
    started.kill()


@pytest.fixture
def studio(example: ExampleWorkspace) -> Iterator[InProcessStudio]:
    """The server's app in this process (no `batchctl serve`): for route, session and CSRF tests."""
    app = InProcessStudio(example)
    yield app
    app.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server: StudioServer) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    context.close()
