"""Helpers for the Studio tests: a workspace like the example's (a real MLflow model `heart-classifier`
and a data asset `heart-unlabeled`), a REAL `batchctl serve --port 0` subprocess whose one-time login
URL is read from its stdout, and page checks (labels, keyboard reach)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.servers import ServeProcess

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
# the screenshots in docs/studio/ are refreshed with BATCHCTL_UPDATE_SCREENSHOTS=1; otherwise (CI) they
# are still taken, into a scratch folder, so a clone's tracked files are never rewritten by a test run
SHOTS = (
    ROOT / "docs" / "studio"
    if os.environ.get("BATCHCTL_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "batchctl-studio-shots"
)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def heart_folder(folder: Path, files: int = 3, rows: int = 8) -> Path:
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        rng = np.random.default_rng(i)
        frame = pd.DataFrame(
            {
                "age": rng.uniform(30, 80, rows).round(2),
                "chol": rng.uniform(120, 400, rows).round(2),
                "thal": rng.choice(["normal", "fixed", "reversible"], rows),
            }
        )
        frame.to_csv(folder / f"heart-{i:02d}.csv", index=False)
    return folder


class ExampleWorkspace:
    """The example's registered assets; endpoints and deployments are made through the pages."""

    def __init__(self, root: Path, model: Path) -> None:
        from batchctl import api
        from batchctl.workspace import Workspace

        self.root = root
        self.ws = Workspace(root)
        api.create_model(self.ws, name="heart-classifier", type="mlflow_model", path=str(model))
        data = heart_folder(root.parent / "heart-unlabeled")
        api.create_data(self.ws, name="heart-unlabeled", type="uri_folder", path=str(data))


class StudioServer(ServeProcess):
    """`python -m batchctl serve --port 0` (support.servers), its one-time login link read from its stdout."""

    login_url: str

    def __init__(self, ws: ExampleWorkspace) -> None:
        super().__init__(ws.root, ws.root.parent / "server-logs", wait_for_login=True)

    def kill(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped within 30 s."""
        if self.proc.poll() is None:
            try:
                self.stop(signal.SIGTERM, timeout=30)
            except AssertionError:
                pass  # killed by stop()

    @contextlib.contextmanager
    def session_client(self) -> Iterator[Any]:
        """An httpx client holding a Studio session (it redeems the one-time login URL)."""
        import httpx

        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            response = client.get(self.login_url.replace(self.url, ""))
            assert response.status_code == 303 and response.headers["location"] == "/studio/"
            yield client


def csrf_of(html: str) -> str:
    import re

    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


UNLABELED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => !el.labels || el.labels.length === 0).map(el => el.name || el.id)"""
UNREACHABLE = """() => [...document.querySelectorAll('[onclick], [tabindex="-1"]:not(main), a:not([href])')]
    .map(el => el.outerHTML.slice(0, 80))"""


def check_page(page: Any, shot: str | None = None) -> None:
    """Every form field has a <label>; every action is a link, button or field (reachable with Tab);
    optionally a 1280x800 screenshot for docs/studio.md."""
    assert page.evaluate(UNLABELED) == []
    assert page.evaluate(UNREACHABLE) == []
    if shot:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{shot}.png"))


class InProcessStudio:
    """The app `batchctl serve` runs, in this process (starlette's TestClient over httpx: no socket, no
    subprocess), built as `serve` builds it (`build_state`, `create_app`) and with the same attributes as
    StudioServer: `url`, `login_url`, `session_client()`; `client()` is an anonymous one. For the tests of
    routes, sessions, CSRF and escaping; the browser, lifecycle and signal tests keep a real server."""

    def __init__(self, ws: ExampleWorkspace) -> None:
        import warnings

        with warnings.catch_warnings():  # starlette asks for `httpx2` instead of httpx; both do the same here
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        from batchctl.server.app import create_app
        from batchctl.server.state import ServerSettings, build_state

        self.url = "http://testserver"
        self.state = build_state(ws.ws, ServerSettings(idle_timeout=0, shutdown_timeout=5), self.url)
        self.app = create_app(self.state)
        self._client_class = TestClient
        self._lifespan = TestClient(self.app, base_url=self.url)
        self._lifespan.__enter__()  # the app's start-up: the queue's runner threads, the server file
        self.login_url = f"{self.url}/studio/login?token={self.app.state.studio.issue_login()}"

    def client(self) -> Any:
        """An httpx client without credentials that, like httpx's default, does not follow redirects."""
        return self._client_class(self.app, base_url=self.url, follow_redirects=False)

    @contextlib.contextmanager
    def session_client(self) -> Iterator[Any]:
        """A client holding a Studio session (it redeems a new one-time login URL)."""
        with self.client() as client:
            token = self.app.state.studio.issue_login()
            response = client.get(f"/studio/login?token={token}")
            assert response.status_code == 303 and response.headers["location"] == "/studio/"
            yield client

    def close(self) -> None:
        self._lifespan.__exit__(None, None, None)
