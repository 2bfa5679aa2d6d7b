"""The Studio routes. Every page needs a session (session.py); every form POST carries the session's CSRF
token; every action goes through `batchctl.api`, as the CLI's commands do, and jobs started here run in
the server's queue like REST jobs.

URLs (`job show --web` opens them): /studio/ (-> endpoints), /studio/endpoints, /studio/endpoints/{name}
(tabs Details and Runs: ?tab=runs), /studio/endpoints/{ep}/deployments/{name}, /studio/models,
/studio/jobs (every job; ?status=&endpoint= filter it), /studio/jobs/{name}, /studio/data (data assets and
datastores), /studio/create (the wizard), /studio/endpoints/{name}/jobs/new (Create job).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from batchctl.errors import BatchctlError
from batchctl.server.studio.session import COOKIE, Session, Sessions

if TYPE_CHECKING:
    from batchctl.server.state import ServerState

HERE = Path(__file__).parent
TERMINAL = ("Completed", "Failed", "Canceled")
MAX_LOG_BYTES = 512 * 1024
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


WIZARD_DEFAULTS = {
    "model_kind": "registered", "model": "", "model_path": "", "code_path": "", "scoring_script": "",
    "endpoint_mode": "new", "endpoint_name": "", "endpoint_description": "", "existing_endpoint": "",
    "deployment_name": "", "deployment_description": "", "compute": "local", "instance_count": "1",
    "max_concurrency_per_instance": "1", "mini_batch_size": "10", "output_action": "append_row",
    "output_file_name": "predictions.csv", "max_retries": "3", "timeout": "30", "error_threshold": "-1",
    "logging_level": "info", "set_default": "on", "env_kind": "none", "environment": "", "conda_file": "",
}  # fmt: skip


class LoginNeeded(Exception):
    """A request without a valid session."""


class CsrfError(Exception):
    """A form POST without the session's CSRF token."""


def _templates() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every template, whatever its name: user text is always escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["urlpart"] = lambda value: quote(str(value), safe="")
    env.filters["duration"] = _duration
    env.filters["path"] = _path_breaks
    env.filters["when"] = lambda value: (value or "").replace("T", " ")[:19]
    return env


def _duration(seconds: Any) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes} min {sec} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _progress(job: dict[str, Any]) -> dict[str, Any]:
    """The progress bar: `done` (0-100) is the share of mini-batches that ended, split into `ok` and `failed`
    (percent of the bar) by the items that succeeded and failed, so a job whose items all failed shows a
    red bar, never a full blue one."""
    counts = job.get("counts") or {}
    total = counts.get("mini_batches") or 0
    mb_ok, mb_failed = counts.get("mini_batches_completed") or 0, counts.get("mini_batches_failed") or 0
    if job.get("status") == "Completed":
        done = 100
    elif not total:
        done = 0
    else:
        done = min(100, int(100 * (mb_ok + mb_failed) / total))
    items_ok, items_failed = counts.get("items_succeeded") or 0, counts.get("items_failed") or 0
    if items_ok + items_failed:
        ok = round(done * items_ok / (items_ok + items_failed))
    elif mb_ok + mb_failed:
        ok = round(done * mb_ok / (mb_ok + mb_failed))
    else:
        ok = done if job.get("status") == "Completed" else 0
    text = f"{items_ok} item{'' if items_ok == 1 else 's'} succeeded, {items_failed} failed"
    if total and job.get("status") != "Completed":
        text += f"; {mb_ok + mb_failed} of {total} mini-batches ended"
    return {"done": done, "ok": ok, "failed": done - ok, "text": text}


def job_row(job: dict[str, Any]) -> dict[str, Any]:
    counts = job.get("counts") or {}
    bar = _progress(job)
    return {
        "name": job["name"],
        "endpoint": job.get("endpoint_name"),
        "deployment": job.get("deployment_name"),
        "status": job.get("status"),
        "created": (job.get("created_at") or "").replace("T", " ")[:19],
        "duration": _duration(job.get("duration_seconds")),
        "succeeded": counts.get("items_succeeded", 0),
        "failed": counts.get("items_failed", 0),
        "progress": bar["done"],
        "bar": bar,
    }


def _path_breaks(value: Any) -> Any:
    """A path or URL, escaped, cut after each separator into spans that studio.css keeps whole (so a long path
    wraps between its parts, never inside a name such as a job's UUID; a part wider than the column still
    wraps inside itself)."""
    from markupsafe import Markup

    text = "" if value is None else str(value)
    return Markup("").join(Markup('<span class="seg">{}</span>').format(p) for p in _split_after(text, "/\\?&") if p)


def _split_after(text: str, separators: str) -> list[str]:
    """`text` cut after each separator character."""
    pieces, start = [], 0
    for i, char in enumerate(text):
        if char in separators:
            pieces.append(text[start : i + 1])
            start = i + 1
    pieces.append(text[start:])
    return pieces


@functools.cache
def _env() -> Any:
    return _templates()


def studio_sessions(request: Request) -> Sessions:
    """The Studio sessions of the server that answers `request` (set by `mount`)."""
    sessions: Sessions = request.app.state.studio
    return sessions


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    state: ServerState = request.app.state.batchctl
    session = getattr(request.state, "studio_session", None)
    values = {"nav": "", "error": None, "errors": {}, **context}
    html = (
        _env()
        .get_template(template)
        .render(csrf=session.csrf if session else "", server_url=state.url, request_path=request.url.path, **values)
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def session_of(request: Request, sessions: Sessions = Depends(studio_sessions)) -> Session:
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise LoginNeeded()
    request.state.studio_session = session
    return session


async def form_of(request: Request, session: Session = Depends(session_of)) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    data = dict(parse_qsl(body, keep_blank_values=True))
    if not Sessions.csrf_ok(session, data.get("csrf")):
        raise CsrfError()
    return data


def on_login_needed(request: Request, exc: Exception) -> Response:
    wants_html = request.method == "GET" and not request.url.path.endswith(".json")
    if wants_html:
        return RedirectResponse("/studio/login-needed", status_code=303)
    return JSONResponse(
        {
            "error": {
                "code": "Unauthorized",
                "message": "no Studio session; open the login URL `batchctl serve` printed",
            }
        },
        status_code=401,
    )


def on_csrf(request: Request, exc: Exception) -> Response:
    return HTMLResponse(
        "<!doctype html><title>Forbidden</title><p>Error: this form's CSRF token is missing or wrong; "
        "reload the page and try again.</p>",
        status_code=403,
    )


def not_found(request: Request, message: str) -> HTMLResponse:
    return page(request, "error.html", status=404, title="Not found", message=message)


def error_status(exc: BatchctlError) -> int:
    """The page's status: the same mapping as the REST API's (`BatchctlError.http_status`)."""
    return exc.http_status
