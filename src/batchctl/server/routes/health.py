"""The server's own routes: /health and the OpenAPI document (behind the token like every route)."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Depends, Request

from batchctl import __version__
from batchctl.server.state import ServerState, require_token, server_state

router = APIRouter(dependencies=[Depends(require_token)], tags=["server"])


@router.get("/health")
def health(state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """The server is up: its workspace, queue and warm pools."""
    return {
        "status": "ok",
        "version": __version__,
        "workspace": str(state.ws.root),
        "workspace_id": state.key.workspace_id,
        "pid": os.getpid(),
        "url": state.url,
        "queue": state.queue.stats(),
        "pools": state.pools.stats(),
    }


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()
