"""What every route of one server shares: its settings and `ServerState` (workspace, signing key, queue, warm
pools), built by `build_state`, and the dependencies that hand them to a route (`server_state`,
`require_token`). Routes take `state: ServerState = Depends(server_state)`; nothing is a closure."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Header, Request

from batchctl.execution.pool import WarmPools
from batchctl.server.auth import WorkspaceKey, load_key, verify
from batchctl.server.queue import JobQueue
from batchctl.workspace import Workspace


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    allow_paths: list[str] = field(default_factory=list)
    max_jobs: int = 1
    idle_timeout: float = 600.0
    shutdown_timeout: float = 30.0
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    log_level: str = "warning"


@dataclass
class ServerState:
    ws: Workspace
    settings: ServerSettings
    key: WorkspaceKey
    url: str
    queue: JobQueue
    pools: WarmPools
    hurry: Callable[[], bool] = lambda: False
    stopped: threading.Event = field(default_factory=threading.Event)
    shutdown_report: dict[str, Any] = field(default_factory=dict)


def build_state(ws: Workspace, settings: ServerSettings, url: str | None = None) -> ServerState:
    """The state of a server for `ws`: its signing key, warm pools and job queue (not started: the app's
    lifespan starts them). `url` is where clients reach it; by default `http://{host}:{port}`, which an
    in-process test (httpx's ASGITransport) uses as its base URL."""
    key = load_key(ws)
    ws.root.mkdir(parents=True, exist_ok=True)
    pools = WarmPools(settings.idle_timeout, scratch=str(ws.root / "server" / f"pools-{os.getpid()}"))
    queue = JobQueue(ws, settings.max_jobs, pools)
    return ServerState(ws, settings, key, url or f"http://{settings.host}:{settings.port}", queue, pools)


def server_state(request: Request) -> ServerState:
    """The state of the server that answers `request` (set by `create_app`)."""
    state: ServerState = request.app.state.batchctl
    return state


def require_token(
    state: ServerState = Depends(server_state), authorization: str | None = Header(None)
) -> dict[str, Any]:
    """Every REST route's guard: a valid bearer token for this workspace (401 otherwise)."""
    return verify(state.key, authorization)
