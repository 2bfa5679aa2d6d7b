"""The Studio's routers, one module per part of the Studio; `studio.mount` includes each of `STUDIO_ROUTERS`.
A route takes `state: ServerState = Depends(server_state)` and, for a page, `session: Session =
Depends(session_of)` (a form POST: `form = Depends(form_of)`, which checks the CSRF token)."""

from __future__ import annotations

from fastapi import APIRouter

from batchctl.server.studio.routes import endpoints, jobs, login, wizard

STUDIO_ROUTERS: tuple[APIRouter, ...] = (login.router, endpoints.router, wizard.router, jobs.router)
