"""The Studio pages: Azure ML Studio's batch-endpoint workflow in a local web UI, served by `batchctl serve`
under /studio/ (the routers in routes/, what they share in pages.py, Jinja2 templates and static files shipped
in this package)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchctl.server.studio.pages import HERE, CsrfError, LoginNeeded, on_csrf, on_login_needed
from batchctl.server.studio.routes import STUDIO_ROUTERS
from batchctl.server.studio.session import Sessions

if TYPE_CHECKING:
    from fastapi import FastAPI

    from batchctl.server.state import ServerState

__all__ = ["mount"]


def mount(app: FastAPI, state: ServerState) -> Sessions:
    """Add the Studio pages to the server's app; returns the sessions (whose one-time login `serve` prints)."""
    from starlette.staticfiles import StaticFiles

    sessions = Sessions()
    app.state.studio = sessions
    app.add_exception_handler(LoginNeeded, on_login_needed)
    app.add_exception_handler(CsrfError, on_csrf)
    app.mount("/studio/static", StaticFiles(directory=str(HERE / "static")), name="studio-static")
    for router in STUDIO_ROUTERS:
        app.include_router(router)
    return sessions
