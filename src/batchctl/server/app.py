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
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from batchctl import __version__, api, notices
from batchctl.errors import (
    BatchctlError,
    ConflictError,
    NotFoundError,
)
from batchctl.execution.pool import WarmPools
from batchctl.server import rest
from batchctl.server.auth import WorkspaceKey, load_key, verify
from batchctl.server.queue import JobQueue, QueueClosedError
from batchctl.workspace import Workspace

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HOUSEKEEPING_SECONDS = 5.0


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


class StartBody(BaseModel):
    runner_pid: int | None = None
    # the caller's values of the `${env:NAME}` variables the job's deployment refers to (the CLI's
    # hand-over): the job reads them instead of the server's environment; kept in memory only
    environment: dict[str, str] | None = None


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

    def require_token(authorization: str | None = Header(None)) -> dict[str, Any]:
        return verify(state.key, authorization)

    router = APIRouter(dependencies=[Depends(require_token)])
    ws = state.ws

    @router.get("/health", tags=["server"])
    def health() -> dict[str, Any]:
        """The server is up: its workspace, queue and warm pools."""
        return {
            "status": "ok",
            "version": __version__,
            "workspace": str(ws.root),
            "workspace_id": state.key.workspace_id,
            "pid": os.getpid(),
            "url": state.url,
            "queue": state.queue.stats(),
            "pools": state.pools.stats(),
        }

    @router.get("/openapi.json", tags=["server"], include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @router.post("/endpoints/{endpoint}/jobs", tags=["jobs"])
    def invoke(
        endpoint: str,
        body: rest.InvokeBody,
        azureml_model_deployment: str | None = Header(None, alias="azureml-model-deployment"),
    ) -> dict[str, Any]:
        """Start a batch scoring job (Azure's invocation API; the header picks a deployment)."""
        if not state.queue.stats()["accepting"]:
            raise QueueClosedError("the server is shutting down and accepts no new job")
        record = api.get_endpoint(ws, endpoint)  # 404 before anything else
        roots = rest.allowed_roots(ws, state.settings.allow_paths)
        options = rest.submit_options(ws, record["name"], azureml_model_deployment or None, body, roots)
        job = api.submit_job(ws, **options)
        _enqueue(job["name"])
        return rest.job_resource(api.get_job(ws, job["name"]), state.url)

    @router.get("/endpoints/{endpoint}/jobs", tags=["jobs"])
    def list_endpoint_jobs(endpoint: str) -> dict[str, Any]:
        """The endpoint's jobs, oldest first."""
        record = api.get_endpoint(ws, endpoint)
        return {"value": [rest.job_resource(j, state.url) for j in api.list_jobs(ws, record["name"])]}

    @router.get("/endpoints/{endpoint}/jobs/{name}", tags=["jobs"])
    def get_endpoint_job(endpoint: str, name: str) -> dict[str, Any]:
        """One of the endpoint's jobs (`{scoring_uri}/{job}`, as Azure polls it)."""
        record = api.get_endpoint(ws, endpoint)
        job = api.get_job(ws, name)
        if job["endpoint_name"] != record["name"]:
            raise NotFoundError(f"job '{name}' not found in endpoint '{record['name']}'")
        return rest.job_resource(job, state.url)

    @router.get("/jobs/{name}", tags=["jobs"])
    def get_job(name: str) -> dict[str, Any]:
        """A job: `properties.status` is Queued, Running, Completed, Failed or Canceled."""
        return rest.job_resource(api.get_job(ws, name), state.url)

    @router.post("/jobs/{name}/cancel", tags=["jobs"])
    def cancel_job(name: str) -> dict[str, Any]:
        """Cancel a job: a queued one never starts; a running one stops its workers and publishes nothing."""
        api.get_job(ws, name)
        state.queue.withdraw(name)
        return rest.job_resource(api.cancel_job(ws, name), state.url)

    @router.post("/jobs/{name}/start", tags=["batchctl"])
    def start_job(name: str, body: StartBody) -> dict[str, Any]:
        """batchctl's own: run a Queued job that the CLI submitted (`endpoint invoke` with a server running)."""
        if not state.queue.stats()["accepting"]:
            raise QueueClosedError("the server is shutting down and accepts no new job")
        api.adopt_job(ws, name, body.runner_pid)
        _enqueue(name, body.environment)
        return rest.job_resource(api.get_job(ws, name), state.url)

    def _enqueue(name: str, environ: dict[str, str] | None = None) -> None:
        try:
            state.queue.enqueue(name, environ)
        except QueueClosedError:
            with contextlib.suppress(BatchctlError):
                api.cancel_job(ws, name)
            raise

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
    key = load_key(ws)
    ws.root.mkdir(parents=True, exist_ok=True)
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    scheme = "https" if settings.ssl_certfile else "http"
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "") else ("[::1]" if settings.host == "::" else settings.host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    url = f"{scheme}://{shown}:{port}"
    pools = WarmPools(settings.idle_timeout, scratch=str(ws.root / "server" / f"pools-{os.getpid()}"))
    state = ServerState(ws, settings, key, url, JobQueue(ws, settings.max_jobs, pools), pools)
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
