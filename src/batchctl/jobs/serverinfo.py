"""Where the workspace's server is: `<workspace>/server.json`, written by `batchctl serve` while it runs.

`{"url": "http://127.0.0.1:8765", "pid": N, "start_ticks": ..., "started_at": ..., "workspace": ...}`. The
file is written atomically when the server is listening and removed on a clean shutdown; a file whose
process is gone (the server was killed) is ignored, with the same liveness test as a job's runner.

One server per workspace: `claim()` takes `<workspace>/server/serve.lock` (an exclusive `flock`, never
waited for) before anything else and the server holds it for its whole life, so two `batchctl serve`
started at the same moment cannot both pass the check; the kernel releases it when the process ends,
even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from batchctl.fsutil import atomic_write_json
from batchctl.processes import process_start_ticks, runner_alive
from batchctl.workspace import Workspace, now

SERVER_FILE = "server.json"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
NOT_RUNNING = "no server is running; these are the URLs `batchctl serve` would use"


LOCK_FILE = "serve.lock"


def claim(ws: Workspace) -> Any:
    """Take the workspace's server lock for this process's life, or None when another process holds it.
    The caller keeps the returned handle open (closing it releases the lock)."""
    import fcntl

    folder = ws.root / "server"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(folder / LOCK_FILE, "a+b")  # noqa: SIM115 - held until the server ends
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def default_url() -> str:
    return f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def info_path(ws: Workspace) -> Path:
    return ws.root / SERVER_FILE


def write(ws: Workspace, url: str, certificate: str | None = None) -> dict[str, Any]:
    """Record this process as the workspace's server; an https server records its certificate (PEM, public),
    which the CLI on this machine then trusts, and only it, to reach the server."""
    pid = os.getpid()
    info: dict[str, Any] = {
        "url": url,
        "pid": pid,
        "start_ticks": process_start_ticks(pid),
        "started_at": now(),
        "workspace": str(ws.root),
    }
    if certificate:
        info["certificate"] = certificate
    ws.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(info_path(ws), info)
    return info


def remove(ws: Workspace) -> None:
    """Remove server.json if it names this process (a newer server's file is left alone)."""
    path = info_path(ws)
    try:
        info = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return
    if isinstance(info, dict) and info.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def read(ws: Workspace) -> dict[str, Any] | None:
    """The running server of this workspace, or None (no file, an unreadable one, or its process died)."""
    try:
        info = json.loads(info_path(ws).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("url"), str) or not info.get("pid"):
        return None
    if not runner_alive({"pid": info["pid"], "start_ticks": info.get("start_ticks")}):
        return None
    return info


def endpoint_uris(ws: Workspace, record: dict[str, Any]) -> dict[str, Any]:
    """An endpoint record with Azure's `scoring_uri` and `openapi_uri` on the running server, or on the URL
    that `batchctl serve` would use, saying so."""
    info = read(ws)
    base = info["url"] if info else default_url()
    out = dict(record)
    out["scoring_uri"] = f"{base}/endpoints/{record['name']}/jobs"
    out["openapi_uri"] = f"{base}/openapi.json"
    out["server"] = (
        {"running": True, "url": base, "pid": info["pid"]}
        if info
        else {
            "running": False,
            "url": base,
            "note": NOT_RUNNING,
        }
    )
    return out
