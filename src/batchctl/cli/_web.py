"""`show --web`: open the object's page of the local Studio that `batchctl serve` runs, as `az ml ... show
--web` opens Azure ML Studio.

A running server records `<workspace>/server.json` = {"url": "http://127.0.0.1:PORT", "pid": N,
"start_ticks": ...}. When that process is alive (the pid and its start time, so a reused pid does not
count), the CLI, which holds the workspace's key, asks that server for a one-time login link that lands
on the page (`POST /studio/login-url`), so the browser opens the page signed in rather than on "Sign in".
The page opens with Python's `webbrowser`; when no browser can be started, its URL (the login link) is
printed. A server that cannot give a link (no key here, an older server) gets the plain page URL.
With no server, the URL `batchctl serve` would give is printed with how to start it. The command's own
output (the record) is printed as without `--web`, and the exit code stays 0."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any
from urllib.parse import quote

import typer

from batchctl.cli import _console

SERVER_FILE = "server.json"
# `batchctl serve`'s default address, shown when no server is running (the server branch: jobs/serverinfo.py)
DEFAULT_SERVER_URL = "http://127.0.0.1:8765"

WebOpt = Annotated[
    bool, typer.Option("--web", help="Open the page in the local Studio (`batchctl serve`), or print its URL.")
]


def job_page(name: str) -> str:
    return f"/studio/jobs/{quote(name)}"


def endpoint_page(name: str) -> str:
    return f"/studio/endpoints/{quote(name)}"


def deployment_page(endpoint: str, name: str) -> str:
    return f"/studio/endpoints/{quote(endpoint)}/deployments/{quote(name)}"


def running_server(ws: Any) -> str | None:
    """The URL of the server recorded in the workspace, if its process is alive."""
    from batchctl.processes import runner_alive

    try:
        data = json.loads((ws.root / SERVER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not isinstance(data.get("pid"), int):
        return None
    if not runner_alive({"pid": data["pid"], "start_ticks": data.get("start_ticks")}):
        return None
    return data["url"].rstrip("/")


def _may_start_a_browser() -> bool:
    """On Linux with no display, webbrowser would fall back to a text browser inside this terminal;
    only $BROWSER is honoured there."""
    if os.environ.get("BROWSER"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def open_page(ws: Any, page: str) -> None:
    url = running_server(ws)
    if url is None:
        _console.notice(
            f"No batchctl server is running for this workspace; start one with `batchctl serve`, "
            f"then open {DEFAULT_SERVER_URL}{page}"
        )
        return
    import webbrowser

    target = login_link(ws, url, page) or url + page
    if _may_start_a_browser() and webbrowser.open(target):
        _console.notice(f"Opened {target}")
    else:
        _console.notice(f"No browser could be started; open {target}")


def login_link(ws: Any, url: str, page: str) -> str | None:
    """A one-time login URL of the server at `url` that lands on `page`, asked for with a short-lived
    token minted from the workspace's key; None when it cannot be had."""
    from batchctl.cli._server_client import _client

    made = _client({"url": url}, ws)
    if made is None:
        return None
    client, _key = made
    import httpx

    with client:
        try:
            response = client.post("/studio/login-url", json={"page": page}, timeout=5.0)
            link = response.json().get("url") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
    return link if isinstance(link, str) and link.startswith(f"{url}/studio/login?token=") else None
