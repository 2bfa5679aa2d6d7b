"""The FastAPI application of `batchctl serve` and the uvicorn process around it.

One workspace per server. Every route needs `Authorization: Bearer <token>` (server/auth.py). Errors are
Azure's body, `{"error": {"code": ..., "message": ...}}`, with the status that fits: 400 a bad body or
argument, 401 no valid token, 403 a local path outside the allowed roots, 404 an unknown endpoint,
deployment or job, 409 a conflict (an output that exists, a job name taken), 503 while shutting down.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from batchctl import __version__, api, notices
from batchctl.errors import (
    BatchctlError,
    ConflictError,
    NotFoundError,
)
from batchctl.server import rest
from batchctl.server.routes import API_ROUTERS
from batchctl.server.state import ServerSettings, ServerState, build_state
from batchctl.workspace import Workspace

__all__ = ["ServerSettings", "ServerState", "build_state", "create_app", "serve"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HOUSEKEEPING_SECONDS = 5.0


def default_max_jobs() -> int:
    """One job at a time on a 2-core machine: a job already uses every core through its workers."""
    return max(1, (os.cpu_count() or 2) // 2)


# ------------------------------------------------------------------------------------------- errors


def error_response(status: int, code: str, message: str, hint: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if hint:
        body["error"]["hint"] = hint
    headers = {"WWW-Authenticate": 'Bearer realm="batchctl"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _batchctl_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BatchctlError)
    message = rest.excerpt(exc.message)  # a message can quote input data; the logs keep the whole text
    return error_response(exc.http_status, exc.http_code, message, exc.hint)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return error_response(400, "BadRequest", "; ".join(parts) or "the request body is not valid")


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized", 400: "BadRequest"}
    return error_response(exc.status_code, codes.get(exc.status_code, "Error"), str(exc.detail))


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    notices.notify(f"unexpected {type(exc).__name__} on {request.method} {request.url.path}: {exc}")
    return error_response(500, "InternalServerError", f"unexpected {type(exc).__name__}; see the server's log")


# ------------------------------------------------------------------------------------------- the app


def create_app(state: ServerState) -> FastAPI:
    """The application for one workspace; `state` holds its queue, pools and signing key."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start(state)
        try:
            yield
        finally:
            import anyio

            await anyio.to_thread.run_sync(stop, state)

    app = FastAPI(
        title="batchctl",
        version=__version__,
        description="Azure ML batch endpoints on this machine: Azure's invocation API for the workspace "
        f"{state.ws.root}. Every route needs `Authorization: Bearer <token>` (`batchctl token`).",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the token like every route
    )
    app.state.batchctl = state
    app.add_exception_handler(BatchctlError, _batchctl_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

    for router in API_ROUTERS:
        app.include_router(router)
    from batchctl.server import studio

    studio.mount(app, state)  # the Studio pages under /studio/ (session login, not bearer tokens)
    return app


# ------------------------------------------------------------------------------------------- lifecycle


def start(state: ServerState) -> None:
    from batchctl.jobs import serverinfo

    api.list_jobs(state.ws)  # jobs a killed server left Queued or Running read Failed from now on
    state.queue.start()
    state.pools.start_reaper()
    threading.Thread(target=_housekeeping, args=(state,), name="batchctl-housekeeping", daemon=True).start()
    certificate = None
    if state.settings.ssl_certfile:
        from batchctl.server.tls import certificates

        certificate = "\n".join(certificates(state.settings.ssl_certfile)) or None
    serverinfo.write(state.ws, state.url, certificate)


def stop(state: ServerState) -> None:
    from batchctl.jobs import serverinfo

    state.stopped.set()
    try:
        state.shutdown_report = state.queue.shutdown(state.settings.shutdown_timeout, state.hurry)
    finally:
        state.pools.close()
        serverinfo.remove(state.ws)


def _housekeeping(state: ServerState) -> None:
    """Drop the warm pools of a deployment that changed or was deleted."""
    while not state.stopped.wait(HOUSEKEEPING_SECONDS):
        for owner, tags in state.pools.owners().items():
            endpoint, _, deployment = owner.partition("/")
            try:
                current = api.get_deployment(state.ws, deployment, endpoint).get("spec_hash")
            except NotFoundError:
                current = None
            except BatchctlError:
                continue
            if any(tag != current for tag in tags):
                state.pools.drop(functools.partial(_stale, owner, current))


def _stale(owner: str, current: str | None, pool_owner: str, tag: str | None) -> bool:
    """A warm pool of `owner` whose tag is no longer the deployment's current spec hash."""
    return pool_owner == owner and tag != current


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConflictError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", "choose another --port") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server_class() -> Any:
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, telling when it listens, and ending normally after a graceful stop (uvicorn
        re-raises the signal it caught, which would kill the process before `serve` reports)."""

        def __init__(self, config: Any, listening: Callable[[], None]) -> None:
            super().__init__(config)
            self.listening = listening

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                self.listening()

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    return Server


def serve(
    ws: Workspace,
    settings: ServerSettings,
    on_listening: Callable[[str], None] | None = None,
    on_studio: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the server until SIGTERM or Ctrl-C; returns what the shutdown did. `on_studio` gets the Studio's
    one-time login URL once the server listens."""
    from batchctl.jobs import serverinfo

    running = serverinfo.read(ws)
    if running is not None and running.get("pid") != os.getpid():
        raise ConflictError(
            f"a server already serves {ws.root} at {running['url']} (pid {running['pid']})",
            "stop it first, or use another --workspace",
        )
    claimed = serverinfo.claim(ws)  # the check above is for the message; this lock is the rule
    if claimed is None:
        running = serverinfo.read(ws)
        where = f" at {running['url']} (pid {running['pid']})" if running else " (it is starting)"
        raise ConflictError(f"a server already serves {ws.root}{where}", "stop it first, or use another --workspace")
    try:
        return _serve(ws, settings, on_listening, on_studio)
    finally:
        claimed.close()


def _serve(
    ws: Workspace,
    settings: ServerSettings,
    on_listening: Callable[[str], None] | None,
    on_studio: Callable[[str], None] | None,
) -> dict[str, Any]:
    import uvicorn

    if settings.host not in LOOPBACK:
        notices.notify(
            f"listening on {settings.host}, not loopback: anyone who can reach this port and holds a token "
            "can start jobs; use --ssl-keyfile/--ssl-certfile on a network"
        )
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    scheme = "https" if settings.ssl_certfile else "http"
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "") else ("[::1]" if settings.host == "::" else settings.host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    url = f"{scheme}://{shown}:{port}"
    state = build_state(ws, settings, url)
    app = create_app(state)
    config = uvicorn.Config(
        app,
        log_level=settings.log_level,
        ssl_keyfile=settings.ssl_keyfile,
        ssl_certfile=settings.ssl_certfile,
        timeout_graceful_shutdown=10,
        lifespan="on",
    )

    def listening() -> None:
        if on_listening is not None:
            on_listening(url)
        if on_studio is not None:
            on_studio(f"{url}/studio/login?token={app.state.studio.issue_login()}")

    server = _server_class()(config, listening)
    state.hurry = lambda: bool(server.force_exit)
    previous = notices.set_sink(lambda message: print(f"Warning: {message}", file=sys.stderr, flush=True))
    try:
        server.run(sockets=[sock])
    finally:
        notices.set_sink(previous)
        with contextlib.suppress(OSError):
            sock.close()
    return {"url": url, **state.shutdown_report}
