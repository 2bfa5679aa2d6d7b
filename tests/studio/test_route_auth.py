"""Every route of `batchctl serve`, enumerated from the application itself (so a route added later is
covered without editing this test): the REST API refuses a request without a bearer token (401), a
Studio page without a session (a redirect to the login page, or 401 for JSON and POST), and a Studio
form POST without its CSRF token (403)."""

from __future__ import annotations

import re
from typing import Any

from studio_helpers import InProcessStudio

# the only routes reachable without credentials: they are how a session is obtained
LOGIN_ROUTES = {("GET", "/studio/login"), ("GET", "/studio/login-needed")}
# a Studio route that takes the REST API's bearer token instead of a session
BEARER_STUDIO_ROUTES = {("POST", "/studio/login-url")}


def _routes(app: Any) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) for every route of `app` (built as `batchctl serve`
    builds it: `build_state`, `create_app`)."""
    from fastapi.routing import APIRoute

    out = []
    pending = list(app.routes)
    while pending:
        route = pending.pop(0)
        # an included router (FastAPI wraps it; its routes are those of `original_router`) or a mount
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested is not None:
            pending.extend(nested)
        if not isinstance(route, APIRoute):
            continue
        path = re.sub(r"\{path:path\}", "sys/master_role.txt", route.path)
        path = re.sub(r"\{[^}]+\}", "heart", path)
        out.extend((method, path) for method in sorted(route.methods))
    return out


def test_every_route_refuses_a_request_without_credentials(studio: InProcessStudio) -> None:
    routes = _routes(studio.app)
    # the enumeration reaches both halves of the server
    assert ("POST", "/endpoints/heart/jobs") in routes and ("POST", "/studio/jobs/heart/cancel") in routes
    assert ("GET", "/studio/jobs") in routes and ("GET", "/studio/data") in routes  # the Jobs and Data pages
    checked: dict[str, int] = {"rest": 0, "page": 0, "post": 0}
    with studio.client() as anon:
        for method, path in routes:
            if (method, path) in LOGIN_ROUTES:
                continue
            response = anon.request(method, path, data={"csrf": "x"} if method == "POST" else None)
            where = (method, path, response.status_code, response.text[:200])
            if not path.startswith("/studio") or (method, path) in BEARER_STUDIO_ROUTES:
                assert response.status_code == 401, where
                assert response.headers["www-authenticate"].startswith("Bearer"), where
                checked["rest"] += 1
            elif method == "GET" and not path.endswith(".json"):
                assert response.status_code == 303, where
                assert response.headers["location"] == "/studio/login-needed", where
                checked["page"] += 1
            else:
                assert response.status_code == 401, where
                checked["post"] += 1
    assert all(checked.values()), checked


def test_every_studio_form_post_refuses_a_missing_or_wrong_csrf_token(studio: InProcessStudio) -> None:
    posts = [
        path
        for method, path in _routes(studio.app)
        if method == "POST" and path.startswith("/studio") and (method, path) not in BEARER_STUDIO_ROUTES
    ]
    assert "/studio/create" in posts and "/studio/jobs/heart/resume" in posts
    with studio.session_client() as client:
        for path in posts:
            for data in ({}, {"csrf": ""}, {"csrf": "not-the-token"}):
                refused: Any = client.post(path, data=data)
                assert refused.status_code == 403, (path, data, refused.status_code, refused.text[:200])
