"""The REST API's routers, one module per group of routes. `create_app` includes each of `API_ROUTERS`;
a new route goes into the module of its group (or a new module listed here), taking
`state: ServerState = Depends(server_state)`. Every router requires a bearer token."""

from __future__ import annotations

from fastapi import APIRouter

from batchctl.server.routes import health, jobs

API_ROUTERS: tuple[APIRouter, ...] = (health.router, jobs.router)
