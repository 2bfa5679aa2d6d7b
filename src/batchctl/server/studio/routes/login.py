"""The Studio's sign-in: a one-time login URL becomes a session cookie."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from batchctl.server.auth import verify
from batchctl.server.state import ServerState, server_state
from batchctl.server.studio.pages import (
    page,
    studio_sessions,
)
from batchctl.server.studio.session import COOKIE, HOME, studio_page

router = APIRouter(include_in_schema=False)

# ------------------------------------------------------------------------------------ login


@router.get("/studio/login", include_in_schema=False)
def login(request: Request, token: str | None = None, state: ServerState = Depends(server_state)) -> Response:
    sessions = studio_sessions(request)
    redeemed = sessions.redeem(token)
    if redeemed is None:
        return RedirectResponse("/studio/login-needed?expired=1", status_code=303)
    session, target = redeemed
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE, session.id, httponly=True, samesite="strict", secure=state.url.startswith("https://"), path="/studio",
        max_age=int(sessions.session_ttl),
    )  # fmt: skip
    return response


@router.get("/studio/login-needed", include_in_schema=False)
def login_needed(request: Request, expired: int = 0) -> HTMLResponse:
    return page(request, "login.html", status=401, title="Sign in", expired=bool(expired))


@router.post("/studio/login-url", include_in_schema=False)
async def new_login_url(request: Request, state: ServerState = Depends(server_state)) -> Response:
    """A fresh one-time login URL, for a bearer-token holder (the workspace's owner): `show --web`
    sends {"page": "/studio/jobs/NAME"} to land there once signed in."""
    verify(state.key, request.headers.get("authorization"))
    body = await request.body()
    target = HOME
    if body.strip():
        try:
            sent = json.loads(body)
        except ValueError:
            sent = None
        asked = studio_page(sent.get("page")) if isinstance(sent, dict) else None
        if asked is None:
            return JSONResponse(
                {"error": {"code": "BadRequest", "message": 'send {"page": "/studio/..."}, a Studio page'}},
                status_code=400,
            )
        target = asked
    return JSONResponse({"url": f"{state.url}/studio/login?token={studio_sessions(request).issue_login(target)}"})
