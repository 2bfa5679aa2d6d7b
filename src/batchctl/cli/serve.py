"""`batchctl serve` and `batchctl token`. The server package (fastapi, uvicorn, PyJWT) is imported inside
the commands only, so that the rest of the CLI starts without it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from batchctl.cli._common import command, workspace

INSTALL_HINT = "pip install 'batchctl[server]'"


def _need_server_extra(what: str, modules: tuple[str, ...]) -> None:
    import importlib.util

    from batchctl.errors import MissingDependencyError

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(missing)
        raise MissingDependencyError(f"{what} needs the server extra ({names} not installed)", INSTALL_HINT)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback unless you say otherwise).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port; 0 picks a free one and prints it.")] = 8765,
    allow_path: Annotated[
        list[str] | None,
        typer.Option("--allow-path", help="A folder REST callers may read and write (repeatable)."),
    ] = None,
    max_jobs: Annotated[
        int | None, typer.Option("--max-jobs", help="Jobs running at once (default: half the cores, at least 1).")
    ] = None,
    idle_timeout: Annotated[
        float, typer.Option("--idle-timeout", help="Seconds a warm worker waits for the next job (0: no warm pools).")
    ] = 600.0,
    shutdown_timeout: Annotated[
        float,
        typer.Option("--shutdown-timeout", help="On Ctrl-C/SIGTERM, seconds running jobs may finish before cancel."),
    ] = 30.0,
    ssl_keyfile: Annotated[str | None, typer.Option("--ssl-keyfile", help="TLS key (passed to uvicorn).")] = None,
    ssl_certfile: Annotated[str | None, typer.Option("--ssl-certfile", help="TLS certificate (uvicorn).")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's: warning, info, debug.")] = "warning",
) -> object:
    """Serve the workspace's endpoints over REST (Azure's invocation API), with warm workers."""
    import os

    from batchctl.errors import SpecError

    _need_server_extra("batchctl serve", ("fastapi", "uvicorn", "jwt", "jinja2"))
    from batchctl.server.app import ServerSettings, default_max_jobs
    from batchctl.server.app import serve as run_server

    if not 0 <= port <= 65535:
        raise SpecError(f"--port: {port} is not a port number")
    if max_jobs is not None and max_jobs < 1:
        raise SpecError("--max-jobs must be at least 1")
    if idle_timeout < 0 or shutdown_timeout < 0:
        raise SpecError("--idle-timeout and --shutdown-timeout must not be negative")
    if bool(ssl_keyfile) != bool(ssl_certfile):
        raise SpecError("--ssl-keyfile and --ssl-certfile go together")
    if ssl_keyfile and ssl_certfile:
        from batchctl.notices import notify
        from batchctl.server.tls import check_pair

        for warning in check_pair(ssl_certfile, ssl_keyfile):
            notify(warning)
    roots = []
    for path in allow_path or []:
        if not os.path.isdir(path):
            raise SpecError(f"--allow-path: '{path}' is not a folder")
        roots.append(os.path.abspath(path))
    settings = ServerSettings(
        host=host,
        port=port,
        allow_paths=roots,
        max_jobs=max_jobs or default_max_jobs(),
        idle_timeout=idle_timeout,
        shutdown_timeout=shutdown_timeout,
        ssl_keyfile=ssl_keyfile,
        ssl_certfile=ssl_certfile,
        log_level=log_level,
    )
    ws = workspace()

    def listening(url: str) -> None:
        sys.stdout.write(f"batchctl serve: listening on {url} (workspace {ws.root}); Ctrl-C stops\n")
        sys.stdout.flush()

    def studio(login_url: str) -> None:
        sys.stdout.write(f"batchctl serve: Studio (one-time login link): {login_url}\n")
        sys.stdout.flush()

    report = run_server(ws, settings, listening, studio)
    canceled = report.get("canceled_running", []) + report.get("canceled_queued", [])
    sys.stdout.write("batchctl serve: stopped" + (f"; canceled {', '.join(canceled)}" if canceled else "") + "\n")
    return None


def token(
    expires_in: Annotated[int, typer.Option("--expires-in", help="Seconds the token is valid.")] = 3600,
    resource: Annotated[
        str | None, typer.Option("--resource", help="Accepted for az compatibility (https://ml.azure.com).")
    ] = None,
) -> object:
    """Print a bearer token for the workspace's server (as `az account get-access-token`)."""
    _need_server_extra("batchctl token", ("jwt",))
    from batchctl.server.auth import load_key, mint

    return mint(load_key(workspace()), expires_in)


def register(root: typer.Typer) -> None:
    command(root, "serve", render=False)(serve)
    command(root, "token")(token)
