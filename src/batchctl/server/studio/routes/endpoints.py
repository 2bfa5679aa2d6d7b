"""The Studio's lists and objects: endpoints, deployments, models, jobs and data."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from batchctl import api
from batchctl.errors import BatchctlError, NotFoundError
from batchctl.server.state import ServerState, server_state
from batchctl.server.studio.pages import (
    error_status,
    form_of,
    job_row,
    not_found,
    page,
    session_of,
)
from batchctl.server.studio.session import Session
from batchctl.workspace import Workspace

router = APIRouter(include_in_schema=False)

# ------------------------------------------------------------------------------------ endpoints


@router.get("/studio", include_in_schema=False)
@router.get("/studio/", include_in_schema=False)
def home(session: Session = Depends(session_of)) -> Response:
    return RedirectResponse("/studio/endpoints", status_code=303)


@router.get("/studio/endpoints", include_in_schema=False)
def endpoints(
    request: Request, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> HTMLResponse:
    ws = state.ws
    jobs = api.list_jobs(ws)
    last: dict[str, dict[str, Any]] = {}
    for job in jobs:  # newest first (as `job list`): the first one of each endpoint wins
        last.setdefault(job.get("endpoint_name") or "", job)
    rows = []
    for ep in api.list_endpoints(ws):
        rows.append(
            {
                "name": ep["name"],
                "description": ep.get("description"),
                "default": (ep.get("defaults") or {}).get("deployment_name"),
                "deployments": len(api.list_deployments(ws, ep["name"])),
                "last_job": last.get(ep["name"]),
                "created": ep.get("created_at"),
            }
        )
    return page(request, "endpoints.html", title="Endpoints", rows=rows, nav="endpoints")


def endpoint_context(ws: Workspace, name: str) -> dict[str, Any]:
    ep = api.get_endpoint(ws, name)
    deployments = api.list_deployments(ws, ep["name"])
    return {"ep": ep, "deployments": deployments, "default": (ep.get("defaults") or {}).get("deployment_name")}


@router.get("/studio/endpoints/{name}", include_in_schema=False)
def endpoint(
    request: Request,
    name: str,
    tab: str = "details",
    session: Session = Depends(session_of),
    state: ServerState = Depends(server_state),
) -> Response:
    ws = state.ws
    try:
        context = endpoint_context(ws, name)
    except NotFoundError as exc:
        return not_found(request, exc.message)
    runs = [job_row(j) for j in api.list_jobs(ws, context["ep"]["name"])] if tab == "runs" else []
    return page(
        request, "endpoint.html", title=name, tab="runs" if tab == "runs" else "details", runs=runs,
        nav="endpoints", error=None, **context,
    )  # fmt: skip


@router.get("/studio/endpoints/{name}/runs.json", include_in_schema=False)
def endpoint_runs(
    name: str, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> dict[str, Any]:
    ws = state.ws
    record = api.get_endpoint(ws, name)
    return {"value": [job_row(j) for j in api.list_jobs(ws, record["name"])]}


@router.post("/studio/endpoints/{name}/default", include_in_schema=False)
def update_default(
    request: Request, name: str, form: dict[str, str] = Depends(form_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    try:
        api.set_default_deployment(ws, name, form.get("deployment", ""))
    except BatchctlError as exc:
        context = endpoint_context(ws, name)
        return page(request, "endpoint.html", status=error_status(exc), title=name, tab="details", runs=[],
                    nav="endpoints", error=exc.message, **context)  # fmt: skip
    return RedirectResponse(f"/studio/endpoints/{quote(name, safe='')}", status_code=303)


@router.get("/studio/endpoints/{name}/delete", include_in_schema=False)
def confirm_delete_endpoint(
    request: Request, name: str, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    try:
        context = endpoint_context(ws, name)
    except NotFoundError as exc:
        return not_found(request, exc.message)
    return page(request, "delete_endpoint.html", title=f"Delete {name}", nav="endpoints", **context)


@router.post("/studio/endpoints/{name}/delete", include_in_schema=False)
def delete_endpoint(
    request: Request, name: str, form: dict[str, str] = Depends(form_of), state: ServerState = Depends(server_state)
) -> Response:
    ws = state.ws
    try:
        api.delete_endpoint(ws, name)
    except NotFoundError as exc:
        return not_found(request, exc.message)
    return RedirectResponse("/studio/endpoints", status_code=303)


@router.get("/studio/endpoints/{ep}/deployments/{name}", include_in_schema=False)
def deployment(
    request: Request,
    ep: str,
    name: str,
    session: Session = Depends(session_of),
    state: ServerState = Depends(server_state),
) -> Response:
    ws = state.ws
    try:
        context = endpoint_context(ws, ep)
        dep = api.get_deployment(ws, name, ep)
    except NotFoundError as exc:
        return not_found(request, exc.message)
    return page(request, "deployment.html", title=name, dep=dep, nav="endpoints", error=None, **context)


@router.post("/studio/endpoints/{ep}/deployments/{name}/delete", include_in_schema=False)
def delete_deployment(
    request: Request,
    ep: str,
    name: str,
    form: dict[str, str] = Depends(form_of),
    state: ServerState = Depends(server_state),
) -> Response:
    ws = state.ws
    try:
        api.delete_deployment(ws, name, ep)
    except NotFoundError as exc:
        return not_found(request, exc.message)
    except BatchctlError as exc:
        context = endpoint_context(ws, ep)
        dep = api.get_deployment(ws, name, ep)
        return page(request, "deployment.html", status=error_status(exc), title=name, dep=dep, nav="endpoints",
                    error=exc.message, **context)  # fmt: skip
    return RedirectResponse(f"/studio/endpoints/{quote(ep, safe='')}", status_code=303)


# ------------------------------------------------------------------------------------ models


def every_version(ws: Workspace, listing: Any) -> list[dict[str, Any]]:
    """Every version of every asset, by name, newest version first (`api.list_models(ws)` and
    `api.list_data(ws)` give each asset's latest version only)."""
    out: list[dict[str, Any]] = []
    for latest in listing(ws):
        out.extend(reversed(listing(ws, latest["name"])))
    return out


@router.get("/studio/models", include_in_schema=False)
def models(
    request: Request, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> HTMLResponse:
    ws = state.ws
    grouped: dict[str, list[dict[str, Any]]] = {}
    for model in every_version(ws, api.list_models):
        grouped.setdefault(model["name"], []).append(model)
    return page(request, "models.html", title="Models", models=grouped, nav="models")


# ------------------------------------------------------------------------------------ jobs and data


@router.get("/studio/jobs", include_in_schema=False)
def jobs(
    request: Request,
    status: str = "",
    endpoint: str = "",
    session: Session = Depends(session_of),
    state: ServerState = Depends(server_state),
) -> HTMLResponse:
    """Every job, newest first (as `job list`), filtered by status and endpoint (a GET form)."""
    ws = state.ws
    error = None
    every = api.list_jobs(ws)
    try:
        shown = api.list_jobs(ws, endpoint or None, status=status or None) if status or endpoint else every
    except BatchctlError as exc:
        shown, error = [], exc.message
    rows = [job_row(j) for j in shown]
    known = {e["name"] for e in api.list_endpoints(ws)}
    names = sorted(known | {j.get("endpoint_name") or "" for j in every} - {""})
    return page(
        request, "jobs.html", status=400 if error else 200, title="Jobs", rows=rows, nav="jobs",
        error=error, statuses=["Queued", "Running", "Completed", "Failed", "Canceled"],
        endpoint_names=names, known_endpoints=known, f={"status": status, "endpoint": endpoint},
    )  # fmt: skip


@router.get("/studio/data", include_in_schema=False)
def data(
    request: Request, session: Session = Depends(session_of), state: ServerState = Depends(server_state)
) -> HTMLResponse:
    """Data assets (every version) and datastores, as Azure Studio's Data page."""
    ws = state.ws
    return page(
        request, "data.html", title="Data", assets=every_version(ws, api.list_data),
        datastores=api.list_datastores(ws), nav="data",
    )  # fmt: skip
