"""`endpoint invoke` / `job create` through a running `batchctl serve`: the job is checked and queued here,
exactly as without a server (same errors, same record), then handed to the server over REST
(`POST /jobs/{name}/start`, with a token minted from the workspace key), which runs it with warm workers.
The command then follows the job's record until it ends, as it would follow its own run.

`--no-server` or BATCHCTL_NO_SERVER=1 keeps the in-process path. A server that does not answer, or
refuses the job, leaves it to this process, with a warning.

`${env:NAME}` references are read from the caller's environment, as when the job runs here: the values of
the names the deployment refers to go with the start request (never to a file), and the server's job reads
them instead of the server's own environment. A server reached over the network without TLS does not get
them: the job runs here, with a warning."""

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
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.Client(base_url=info["url"], headers=headers, timeout=10.0, verify=_trust(info)), key


def _trust(info: dict[str, Any]) -> Any:
    """An https server that recorded its certificate in server.json is trusted by exactly that certificate
    (pinned: no other CA, whatever name it carries); otherwise the system's CAs (and SSL_CERT_FILE)."""
    import ssl

    pem = info.get("certificate")
    if not str(info.get("url", "")).startswith("https://") or not isinstance(pem, str) or not pem.strip():
        return True
    try:
        context = ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        return True
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the server's own certificate is the trust anchor
    context.check_hostname = False  # the pinned certificate identifies the server, not the URL's host name
    return context


def _unreachable(url: str, exc: Exception) -> str:
    """Why the server could not be used, as a warning: a certificate problem is named as such."""
    import ssl

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return f"the server at {url} is not reachable ({type(exc).__name__}); running the job here"
    reason = cause.verify_message or str(cause)
    if "expired" in reason:
        return (
            f"the server at {url} presents an expired certificate ({reason}); running the job here "
            "(renew the certificate and restart `batchctl serve`)"
        )
    return (
        f"the server at {url} presents a certificate this machine does not trust ({reason}); running the job "
        "here (restart `batchctl serve` with this version, which records its certificate in server.json for the "
        "CLI to trust, or set SSL_CERT_FILE to the certificate's file)"
    )


def _private(url: str) -> bool:
    """The request stays on this machine (loopback) or is encrypted (https)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.hostname or "") in ("127.0.0.1", "localhost", "::1")


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

    names = api.referenced_variables(ws, record["name"])
    if names and not _private(info["url"]):
        client.close()
        notify(
            f"the deployment reads {', '.join(names)} from the environment, and the server at {info['url']} is "
            "reached without TLS; running the job here, with this shell's values"
        )
        return False
    environment = {name: os.environ[name] for name in names if name in os.environ}

    with client:
        try:
            health = client.get("/health", timeout=3.0)
            if health.status_code != 200 or health.json().get("workspace_id") != key.workspace_id:
                notify(f"the server at {info['url']} did not answer as this workspace's; running the job here")
                return False
            response = client.post(
                f"/jobs/{record['name']}/start", json={"runner_pid": os.getpid(), "environment": environment}
            )
        except httpx.HTTPError as exc:
            notify(_unreachable(info["url"], exc))
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
