"""The Studio's Create job form and the job page, with its logs, download, cancel and resume."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from batchctl import api
from batchctl.errors import BatchctlError, NotFoundError, OutputExistsError, SpecError
from batchctl.server import rest
from batchctl.server.state import ServerState, server_state
from batchctl.server.studio import files, forms
from batchctl.server.studio.pages import (
    MAX_LOG_BYTES,
    TERMINAL,
    error_status,
    form_of,
    job_row,
    not_found,
    page,
    session_of,
)
from batchctl.server.studio.routes.endpoints import endpoint_context, every_version
from batchctl.server.studio.session import Session
from batchctl.workspace import Workspace

router = APIRouter(include_in_schema=False)

# ------------------------------------------------------------------------------------ Create job


def job_form_context(ws: Workspace, name: str, values: dict[str, str]) -> dict[str, Any]:
    context = endpoint_context(ws, name)
    data: dict[str, list[str]] = {}
    for asset in every_version(ws, api.list_data):
        data.setdefault(asset["name"], []).append(str(asset["version"]))
    return {**context, "data": data, "datastores": [d["name"] for d in api.list_datastores(ws)], "v": values}


@router.get("/studio/endpoints/{name}/jobs/new", include_in_schema=False)
def job_form(
    request: Request, name: str, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    try:
        context = job_form_context(ws, name, {})
    except NotFoundError as exc:
        return not_found(request, exc.message)
    context["v"] = {"deployment": context["default"] or "", "input_kind": "data", "input_type": "uri_folder"}
    return page(request, "job_new.html", title="Create job", errors={}, error=None, nav="endpoints", **context)


@router.post("/studio/endpoints/{name}/jobs/new", include_in_schema=False)
def job_submit(
    request: Request, name: str, form: dict[str, str] = Depends(form_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    values = {k: v for k, v in form.items() if k != "csrf"}
    try:
        context = job_form_context(ws, name, values)
    except NotFoundError as exc:
        return not_found(request, exc.message)
    job_request, errors = forms.job_options(values, context["ep"]["name"])
    error = errors.pop("input_kind", None)  # not a field the page shows: the form was not ours
    if not errors and not error:
        try:
            # whatever the form says the input is, its resolved URI and the output go through the same
            # confinement as a REST job's
            rest.confine(job_request, rest.allowed_roots(ws, state.settings.allow_paths))
            state.queue.check_accepting()
            job_request.overrides = forms.job_overrides(values)
            job = api.submit_job(ws, job_request)
        except OutputExistsError as exc:
            errors["output_path"] = exc.message
        except BatchctlError as exc:
            field = forms.field_of(exc.message, forms.JOB_FIELDS)
            if field is None and "input" in exc.message.lower()[:40]:
                field = {"data": "data_asset", "datastore": "datastore_path"}.get(
                    values.get("input_kind", ""), "public_path"
                )
            if field:
                errors[field] = exc.message
            else:
                error = exc.message
        else:
            state.queue.submit(job["name"])
            return RedirectResponse(f"/studio/jobs/{quote(job['name'], safe='')}", status_code=303)
    return page(request, "job_new.html", status=400, title="Create job", errors=errors, error=error,
                nav="endpoints", **context)  # fmt: skip


# ------------------------------------------------------------------------------------ the job page


def job_errors(ws: Workspace, name: str) -> list[dict[str, Any]] | None:
    with contextlib.suppress(BatchctlError):
        return [
            {**g, "message": rest.excerpt(g["message"]), "example": rest.excerpt(g.get("example") or "")}
            for g in api.job_errors(ws, name)
        ]
    return None


def shown_job(ws: Workspace, name: str) -> dict[str, Any]:
    """The record as a page shows it: its error cut to an excerpt (the logs keep the whole text)."""
    record = api.get_job(ws, name)
    return {**record, "error": rest.bounded_error(record.get("error"))}


@router.get("/studio/jobs/{name}", include_in_schema=False)
def job(
    request: Request, name: str, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    try:
        record = shown_job(ws, name)
    except (NotFoundError, SpecError) as exc:
        return not_found(request, exc.message)
    log_dir = Path(record.get("log_dir") or "")
    return page(
        request, "job.html", title=name, job=record, row=job_row(record), tree=files.tree(log_dir),
        groups=job_errors(ws, name), can_resume=True, terminal=TERMINAL, nav="jobs",
        viewing=None, text=None, error=None,
    )  # fmt: skip


@router.get("/studio/jobs/{name}/status.json", include_in_schema=False)
def job_status(
    name: str, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> dict[str, Any]:
    ws = state.ws
    record = shown_job(ws, name)
    return {**job_row(record), "counts": record.get("counts") or {}, "error": record.get("error")}


@router.get("/studio/jobs/{name}/logs/{path:path}", include_in_schema=False)
def job_log(
    request: Request,
    name: str,
    path: str,
    session: Session = Depends(session_of),
    state: ServerState = Depends(server_state),
) -> Response:
    ws = state.ws
    try:
        record = shown_job(ws, name)
        log_dir = Path(record.get("log_dir") or "")
        target = files.confined(log_dir, path)
    except (NotFoundError, SpecError) as exc:
        return not_found(request, exc.message)
    if not target.is_file():
        return not_found(request, f"'{path}' is not a log file of job '{name}'")
    with open(target, "rb") as handle:
        size = target.stat().st_size
        handle.seek(max(0, size - MAX_LOG_BYTES))
        text = handle.read().decode("utf-8", "replace")
    if request.query_params.get("raw"):
        return Response(text, media_type="text/plain; charset=utf-8", headers={"X-Content-Type-Options": "nosniff"})
    return page(
        request, "job.html", title=name, job=record, row=job_row(record), tree=files.tree(log_dir),
        groups=job_errors(ws, name), can_resume=True, terminal=TERMINAL, nav="jobs",
        viewing=target.relative_to(Path(os.path.realpath(log_dir))).as_posix(), text=text,
        truncated=size > MAX_LOG_BYTES, error=None,
    )  # fmt: skip


@router.get("/studio/jobs/{name}/download", include_in_schema=False)
def job_download(
    request: Request, name: str, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> Response:
    """The job's own results file, fetched through `api.download_job` (so a remote output works too)."""
    ws = state.ws
    folder = Path(tempfile.mkdtemp(prefix="batchctl-studio-dl-"))
    try:
        result = api.download_job(ws, name, "score", str(folder))
    except BatchctlError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, NotFoundError):
            return not_found(request, exc.message)
        return page(request, "error.html", status=error_status(exc), title="Download", message=exc.message)
    if not result["files"]:
        shutil.rmtree(folder, ignore_errors=True)
        return not_found(request, f"job '{name}' wrote no results file")
    first = Path(result["files"][0])
    return FileResponse(
        first, filename=first.name, media_type="text/csv" if first.suffix == ".csv" else "application/octet-stream",
        background=BackgroundTask(shutil.rmtree, folder, True),
    )  # fmt: skip


@router.post("/studio/jobs/{name}/cancel", include_in_schema=False)
def job_cancel(
    request: Request, name: str, form: dict[str, str] = Depends(form_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    try:
        api.get_job(ws, name)
        state.queue.withdraw(name)
        api.cancel_job(ws, name)
    except NotFoundError as exc:
        return not_found(request, exc.message)
    except BatchctlError as exc:
        return page(request, "error.html", status=error_status(exc), title="Cancel", message=exc.message)
    return RedirectResponse(f"/studio/jobs/{quote(name, safe='')}", status_code=303)


@router.post("/studio/jobs/{name}/resume", include_in_schema=False)
def job_resume(
    request: Request, name: str, form: dict[str, str] = Depends(form_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    try:
        record = api.resume_job(ws, name)
    except BatchctlError as exc:
        return page(request, "error.html", status=error_status(exc), title="Resume", message=exc.message)
    state.queue.submit(record["name"])
    return RedirectResponse(f"/studio/jobs/{quote(record['name'], safe='')}", status_code=303)
