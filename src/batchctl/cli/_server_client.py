"""`endpoint invoke` / `job create` through a running `batchctl serve`: the job is checked and queued here,
exactly as without a server (same errors, same record), then handed to the server over REST
(`POST /jobs/{name}/start`, with a token minted from the workspace key), which runs it with warm workers.
The command then follows the job's record until it ends, as it would follow its own run.

`--no-server` or BATCHCTL_NO_SERVER=1 keeps the in-process path. A server that does not answer, or
refuses the job, leaves it to this process, with a warning."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from batchctl import api

POLL_SECONDS = 0.1


def disabled_by_env() -> bool:
    return os.environ.get("BATCHCTL_NO_SERVER", "").lower() in ("1", "true", "yes")


def _client(info: dict[str, Any], ws: Any) -> Any:
    """An httpx client with a fresh short-lived token, or None when the server extra is not installed or
    the workspace has no key (a server was never started here)."""
    try:
        import httpx

        from batchctl.server.auth import load_key, mint
    except ImportError:
        return None
    from batchctl.errors import BatchctlError

    try:
        key = load_key(ws, create=False)
    except BatchctlError:
        return None
    token = mint(key, 300, subject="batchctl-cli")["accessToken"]
    return httpx.Client(base_url=info["url"], headers={"Authorization": f"Bearer {token}"}, timeout=10.0), key


def hand_over(ws: Any, record: dict[str, Any]) -> bool:
    """True when the workspace's server took the Queued job; False: run it here."""
    from batchctl.notices import notify

    info = api.server_info(ws)
    if info is None:
        return False
    made = _client(info, ws)
    if made is None:
        return False
    client, key = made
    import httpx

    with client:
        try:
            health = client.get("/health", timeout=3.0)
            if health.status_code != 200 or health.json().get("workspace_id") != key.workspace_id:
                notify(f"the server at {info['url']} did not answer as this workspace's; running the job here")
                return False
            response = client.post(f"/jobs/{record['name']}/start", json={"runner_pid": os.getpid()})
        except httpx.HTTPError as exc:
            notify(f"the server at {info['url']} is not reachable ({type(exc).__name__}); running the job here")
            return False
    if response.status_code == 200:
        return True
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}"
    notify(f"the server at {info['url']} did not take the job ({message}); running it here")
    return False


def follow(ws: Any, record: dict[str, Any]) -> dict[str, Any]:
    """Follow a job the server runs until it ends, drawing progress from its record; Ctrl-C cancels it
    (as it does a job run in this process)."""
    from batchctl.cli._progress import ProgressRenderer
    from batchctl.execution.events import BatchEvent, EventKind
    from batchctl.jobs.model import JobCounts, JobProgress, JobState

    name = record["name"]
    renderer = ProgressRenderer(
        record["counts"]["mini_batches"], record["counts"]["files"], name, bool(record["counts"].get("listing"))
    )
    seen: dict[str, Any] = {}
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cancels, as for a job run here
    try:
        try:
            while True:
                current = api.get_job(ws, name)
                counts = current.get("counts") or {}
                if counts != seen:
                    seen = counts
                    renderer(JobProgress(event=BatchEvent(EventKind.FINAL), counts=JobCounts(**counts)))
                if current["status"] in ("Completed", "Failed", "Canceled"):
                    break
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            current = api.cancel_job(ws, name)
        final_counts = JobCounts(**(current.get("counts") or {}))
        renderer(JobProgress(event=None, counts=final_counts, status=JobState(current["status"])))
    finally:
        renderer.close()
        signal.signal(signal.SIGTERM, previous)
    return current


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
