"""The Studio routes. Every page needs a session (session.py); every form POST carries the session's CSRF
token; every action goes through `batchctl.api`, as the CLI's commands do, and jobs started here run in
the server's queue like REST jobs.

URLs (`job show --web` opens them): /studio/ (-> endpoints), /studio/endpoints, /studio/endpoints/{name}
(tabs Details and Runs: ?tab=runs), /studio/endpoints/{ep}/deployments/{name}, /studio/models,
/studio/jobs (every job; ?status=&endpoint= filter it), /studio/jobs/{name}, /studio/data (data assets and
datastores), /studio/create (the wizard), /studio/endpoints/{name}/jobs/new (Create job).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask
from starlette.staticfiles import StaticFiles

from batchctl import api
from batchctl.errors import BatchctlError, NotFoundError, OutputExistsError, SpecError
from batchctl.server import rest
from batchctl.server.auth import verify
from batchctl.server.studio import files, forms
from batchctl.server.studio.session import COOKIE, HOME, Session, Sessions, studio_page

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
    "logging_level": "info", "set_default": "on",
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


def _job_row(job: dict[str, Any]) -> dict[str, Any]:
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


def mount(app: FastAPI, state: ServerState) -> Sessions:
    """Add the Studio pages to the server's app; returns the sessions (whose one-time login `serve` prints)."""
    ws = state.ws
    sessions = Sessions()
    env = _templates()
    secure_cookie = state.url.startswith("https://")
    app.state.studio = sessions

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = getattr(request.state, "studio_session", None)
        values = {"nav": "", "error": None, "errors": {}, **context}
        html = env.get_template(template).render(
            csrf=session.csrf if session else "", server_url=state.url, request_path=request.url.path, **values
        )
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def session_of(request: Request) -> Session:
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

    app.add_exception_handler(LoginNeeded, on_login_needed)
    app.add_exception_handler(CsrfError, on_csrf)
    app.mount("/studio/static", StaticFiles(directory=str(HERE / "static")), name="studio-static")

    def not_found(request: Request, message: str) -> HTMLResponse:
        return page(request, "error.html", status=404, title="Not found", message=message)

    # ------------------------------------------------------------------------------------ login

    @app.get("/studio/login", include_in_schema=False)
    def login(request: Request, token: str | None = None) -> Response:
        redeemed = sessions.redeem(token)
        if redeemed is None:
            return RedirectResponse("/studio/login-needed?expired=1", status_code=303)
        session, target = redeemed
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE, session.id, httponly=True, samesite="strict", secure=secure_cookie, path="/studio",
            max_age=int(sessions.session_ttl),
        )  # fmt: skip
        return response

    @app.get("/studio/login-needed", include_in_schema=False)
    def login_needed(request: Request, expired: int = 0) -> HTMLResponse:
        return page(request, "login.html", status=401, title="Sign in", expired=bool(expired))

    @app.post("/studio/login-url", include_in_schema=False)
    async def new_login_url(request: Request) -> Response:
        """A fresh one-time login URL, for a bearer-token holder (the workspace's owner): `show --web`
        sends {"page": "/studio/jobs/NAME"} to land there once signed in."""
        verify(state.key, request.headers.get("authorization"))
        body = await request.body()
        target = HOME
        if body.strip():
            try:
                sent = json.loads(body)
            except ValueError:
                sent = None
            asked = studio_page(sent.get("page")) if isinstance(sent, dict) else None
            if asked is None:
                return JSONResponse(
                    {"error": {"code": "BadRequest", "message": 'send {"page": "/studio/..."}, a Studio page'}},
                    status_code=400,
                )
            target = asked
        return JSONResponse({"url": f"{state.url}/studio/login?token={sessions.issue_login(target)}"})

    # ------------------------------------------------------------------------------------ endpoints

    @app.get("/studio", include_in_schema=False)
    @app.get("/studio/", include_in_schema=False)
    def home(session: Session = Depends(session_of)) -> Response:
        return RedirectResponse("/studio/endpoints", status_code=303)

    @app.get("/studio/endpoints", include_in_schema=False)
    def endpoints(request: Request, session: Session = Depends(session_of)) -> HTMLResponse:
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

    def endpoint_context(name: str) -> dict[str, Any]:
        ep = api.get_endpoint(ws, name)
        deployments = api.list_deployments(ws, ep["name"])
        return {"ep": ep, "deployments": deployments, "default": (ep.get("defaults") or {}).get("deployment_name")}

    @app.get("/studio/endpoints/{name}", include_in_schema=False)
    def endpoint(request: Request, name: str, tab: str = "details", session: Session = Depends(session_of)) -> Response:
        try:
            context = endpoint_context(name)
        except NotFoundError as exc:
            return not_found(request, exc.message)
        runs = [_job_row(j) for j in api.list_jobs(ws, context["ep"]["name"])] if tab == "runs" else []
        return page(
            request, "endpoint.html", title=name, tab="runs" if tab == "runs" else "details", runs=runs,
            nav="endpoints", error=None, **context,
        )  # fmt: skip

    @app.get("/studio/endpoints/{name}/runs.json", include_in_schema=False)
    def endpoint_runs(name: str, session: Session = Depends(session_of)) -> dict[str, Any]:
        record = api.get_endpoint(ws, name)
        return {"value": [_job_row(j) for j in api.list_jobs(ws, record["name"])]}

    @app.post("/studio/endpoints/{name}/default", include_in_schema=False)
    def update_default(request: Request, name: str, form: dict[str, str] = Depends(form_of)) -> Response:
        try:
            api.set_default_deployment(ws, name, form.get("deployment", ""))
        except BatchctlError as exc:
            context = endpoint_context(name)
            return page(request, "endpoint.html", status=_status(exc), title=name, tab="details", runs=[],
                        nav="endpoints", error=exc.message, **context)  # fmt: skip
        return RedirectResponse(f"/studio/endpoints/{quote(name, safe='')}", status_code=303)

    @app.get("/studio/endpoints/{name}/delete", include_in_schema=False)
    def confirm_delete_endpoint(request: Request, name: str, session: Session = Depends(session_of)) -> Response:
        try:
            context = endpoint_context(name)
        except NotFoundError as exc:
            return not_found(request, exc.message)
        return page(request, "delete_endpoint.html", title=f"Delete {name}", nav="endpoints", **context)

    @app.post("/studio/endpoints/{name}/delete", include_in_schema=False)
    def delete_endpoint(request: Request, name: str, form: dict[str, str] = Depends(form_of)) -> Response:
        try:
            api.delete_endpoint(ws, name)
        except NotFoundError as exc:
            return not_found(request, exc.message)
        return RedirectResponse("/studio/endpoints", status_code=303)

    @app.get("/studio/endpoints/{ep}/deployments/{name}", include_in_schema=False)
    def deployment(request: Request, ep: str, name: str, session: Session = Depends(session_of)) -> Response:
        try:
            context = endpoint_context(ep)
            dep = api.get_deployment(ws, name, ep)
        except NotFoundError as exc:
            return not_found(request, exc.message)
        return page(request, "deployment.html", title=name, dep=dep, nav="endpoints", error=None, **context)

    @app.post("/studio/endpoints/{ep}/deployments/{name}/delete", include_in_schema=False)
    def delete_deployment(request: Request, ep: str, name: str, form: dict[str, str] = Depends(form_of)) -> Response:
        try:
            api.delete_deployment(ws, name, ep)
        except NotFoundError as exc:
            return not_found(request, exc.message)
        except BatchctlError as exc:
            context = endpoint_context(ep)
            dep = api.get_deployment(ws, name, ep)
            return page(request, "deployment.html", status=_status(exc), title=name, dep=dep, nav="endpoints",
                        error=exc.message, **context)  # fmt: skip
        return RedirectResponse(f"/studio/endpoints/{quote(ep, safe='')}", status_code=303)

    # ------------------------------------------------------------------------------------ models

    def every_version(listing: Any) -> list[dict[str, Any]]:
        """Every version of every asset, by name, newest version first (`api.list_models(ws)` and
        `api.list_data(ws)` give each asset's latest version only)."""
        out: list[dict[str, Any]] = []
        for latest in listing(ws):
            out.extend(reversed(listing(ws, latest["name"])))
        return out

    @app.get("/studio/models", include_in_schema=False)
    def models(request: Request, session: Session = Depends(session_of)) -> HTMLResponse:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for model in every_version(api.list_models):
            grouped.setdefault(model["name"], []).append(model)
        return page(request, "models.html", title="Models", models=grouped, nav="models")

    # ------------------------------------------------------------------------------------ jobs and data

    @app.get("/studio/jobs", include_in_schema=False)
    def jobs(
        request: Request, status: str = "", endpoint: str = "", session: Session = Depends(session_of)
    ) -> HTMLResponse:
        """Every job, newest first (as `job list`), filtered by status and endpoint (a GET form)."""
        error = None
        every = api.list_jobs(ws)
        try:
            shown = api.list_jobs(ws, endpoint or None, status=status or None) if status or endpoint else every
        except BatchctlError as exc:
            shown, error = [], exc.message
        rows = [_job_row(j) for j in shown]
        known = {e["name"] for e in api.list_endpoints(ws)}
        names = sorted(known | {j.get("endpoint_name") or "" for j in every} - {""})
        return page(
            request, "jobs.html", status=400 if error else 200, title="Jobs", rows=rows, nav="jobs",
            error=error, statuses=["Queued", "Running", "Completed", "Failed", "Canceled"],
            endpoint_names=names, known_endpoints=known, f={"status": status, "endpoint": endpoint},
        )  # fmt: skip

    @app.get("/studio/data", include_in_schema=False)
    def data(request: Request, session: Session = Depends(session_of)) -> HTMLResponse:
        """Data assets (every version) and datastores, as Azure Studio's Data page."""
        return page(
            request, "data.html", title="Data", assets=every_version(api.list_data),
            datastores=api.list_datastores(ws), nav="data",
        )  # fmt: skip

    # ------------------------------------------------------------------------------------ the wizard

    def wizard_context(values: dict[str, str]) -> dict[str, Any]:
        return {
            "models": every_version(api.list_models),
            "endpoints": [e["name"] for e in api.list_endpoints(ws)],
            "computes": [c["name"] for c in api.list_computes(ws)],
            "v": values,
        }

    @app.get("/studio/create", include_in_schema=False)
    def wizard(
        request: Request, model: str = "", endpoint: str = "", session: Session = Depends(session_of)
    ) -> HTMLResponse:
        values = {
            **WIZARD_DEFAULTS, "model": model, "endpoint_mode": "existing" if endpoint else "new",
            "existing_endpoint": endpoint, "set_default": "" if endpoint else "on",
        }  # fmt: skip
        return page(
            request, "wizard.html", title="Create batch endpoint" if not endpoint else "Add deployment",
            fixed_endpoint=endpoint, errors={}, error=None, nav="endpoints", **wizard_context(values),
        )  # fmt: skip

    @app.post("/studio/create", include_in_schema=False)
    def wizard_post(request: Request, form: dict[str, str] = Depends(form_of)) -> Response:
        import yaml

        from batchctl.specs.deployment import DeploymentSpec
        from batchctl.specs.endpoint import EndpointSpec
        from batchctl.specs.load import validate_data

        values = {
            **WIZARD_DEFAULTS,
            "set_default": "",
            **{k: v for k, v in form.items() if k not in ("csrf", "action")},
        }
        fixed = form.get("fixed_endpoint", "")
        endpoint_spec, deployment_spec = forms.wizard_specs(values)
        errors: dict[str, str] = {}
        error = None

        def fail(message: str) -> None:
            nonlocal error
            field = forms.field_of(message, forms.WIZARD_FIELDS)
            if field == "endpoint_name" and values.get("endpoint_mode") == "existing":
                field = "existing_endpoint"
            if field in forms.hidden_fields(values, forms.WIZARD_PANELS):
                # a field the chosen option hides (e.g. the scoring script of a registered model that is not
                # an MLflow model): the message goes beside the choice that shows
                field = "model" if field in forms.WIZARD_PANELS["model_kind"]["custom"] else None
            if field:
                errors[field] = message
            else:
                error = message

        if values.get("model_kind") == "custom":  # local folders the server copies: confined as job paths
            roots = rest.allowed_roots(ws, state.settings.allow_paths)
            for field in ("model_path", "code_path"):
                if values.get(field, "").strip():
                    try:
                        rest.check_path(values[field].strip(), roots, field)
                    except BatchctlError as exc:
                        errors[field] = exc.message
        try:
            if endpoint_spec is not None:
                validate_data(EndpointSpec, endpoint_spec, "endpoint.yml")
                with contextlib.suppress(NotFoundError):
                    api.get_endpoint(ws, endpoint_spec["name"])
                    raise SpecError(
                        f"endpoint.yml: name: endpoint '{endpoint_spec['name']}' exists already; choose Existing"
                    )
            validate_data(DeploymentSpec, deployment_spec, "deployment.yml")
        except BatchctlError as exc:
            fail(exc.message)
        yaml_text = {
            "endpoint": yaml.safe_dump(endpoint_spec, sort_keys=False) if endpoint_spec else None,
            "deployment": yaml.safe_dump(deployment_spec, sort_keys=False),
        }
        if not (errors or error) and form.get("action") in ("review", "create"):
            # what Create would refuse (a registered model that is not an MLflow model without a scoring
            # script, a missing code folder, model or endpoint) is said here, before Review, not after Create
            with tempfile.TemporaryDirectory(prefix="batchctl-studio-") as scratch:
                (Path(scratch) / "deployment.yml").write_text(yaml_text["deployment"])
                try:
                    api.check_deployment(ws, str(Path(scratch) / "deployment.yml"), new_endpoint=bool(endpoint_spec))
                except BatchctlError as exc:
                    fail(exc.message)
        title = "Create batch endpoint" if not fixed else "Add deployment"
        if errors or error or form.get("action") not in ("review", "create"):
            return page(request, "wizard.html", status=400 if (errors or error) else 200, title=title,
                        fixed_endpoint=fixed, errors=errors, error=error, nav="endpoints",
                        **wizard_context(values))  # fmt: skip
        if form.get("action") == "review":
            return page(request, "review.html", title="Review", yaml_text=yaml_text, values=values,
                        fixed_endpoint=fixed, nav="endpoints")  # fmt: skip
        # Create: the same YAML the Review showed, through the api as `endpoint create -f` / `deployment create -f`
        folder = Path(tempfile.mkdtemp(prefix="batchctl-studio-"))
        created_endpoint = False
        try:
            if endpoint_spec is not None:
                (folder / "endpoint.yml").write_text(yaml_text["endpoint"] or "")
                api.create_endpoint(ws, file=str(folder / "endpoint.yml"))
                created_endpoint = True
            (folder / "deployment.yml").write_text(yaml_text["deployment"])
            set_default = endpoint_spec is not None or values.get("set_default") == "on"
            api.create_deployment(ws, str(folder / "deployment.yml"), set_default=set_default)
        except BatchctlError as exc:
            # lose nothing, leave nothing half made: the new endpoint goes again
            if created_endpoint and endpoint_spec is not None:
                with contextlib.suppress(BatchctlError):
                    api.delete_endpoint(ws, endpoint_spec["name"])
            fail(exc.message)
            return page(request, "wizard.html", status=_status(exc), title=title, fixed_endpoint=fixed,
                        errors=errors, error=error, nav="endpoints", **wizard_context(values))  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        target = quote(deployment_spec["endpoint_name"], safe="")
        return RedirectResponse(f"/studio/endpoints/{target}", status_code=303)

    # ------------------------------------------------------------------------------------ Create job

    def job_form_context(name: str, values: dict[str, str]) -> dict[str, Any]:
        context = endpoint_context(name)
        data: dict[str, list[str]] = {}
        for asset in every_version(api.list_data):
            data.setdefault(asset["name"], []).append(str(asset["version"]))
        return {**context, "data": data, "datastores": [d["name"] for d in api.list_datastores(ws)], "v": values}

    @app.get("/studio/endpoints/{name}/jobs/new", include_in_schema=False)
    def job_form(request: Request, name: str, session: Session = Depends(session_of)) -> Response:
        try:
            context = job_form_context(name, {})
        except NotFoundError as exc:
            return not_found(request, exc.message)
        context["v"] = {"deployment": context["default"] or "", "input_kind": "data", "input_type": "uri_folder"}
        return page(request, "job_new.html", title="Create job", errors={}, error=None, nav="endpoints", **context)

    @app.post("/studio/endpoints/{name}/jobs/new", include_in_schema=False)
    def job_submit(request: Request, name: str, form: dict[str, str] = Depends(form_of)) -> Response:
        values = {k: v for k, v in form.items() if k != "csrf"}
        try:
            context = job_form_context(name, values)
        except NotFoundError as exc:
            return not_found(request, exc.message)
        options, errors = forms.job_options(values, context["ep"]["name"])
        error = errors.pop("input_kind", None)  # not a field the page shows: the form was not ours
        if not errors and not error:
            try:
                # whatever the form says the input is, its resolved URI and the output go through the same
                # confinement as a REST job's
                rest.confine(options, rest.allowed_roots(ws, state.settings.allow_paths))
                state.queue.check_accepting()
                job = api.submit_job(ws, **options)
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

    def job_errors(name: str) -> list[dict[str, Any]] | None:
        with contextlib.suppress(BatchctlError):
            return [
                {**g, "message": rest.excerpt(g["message"]), "example": rest.excerpt(g.get("example") or "")}
                for g in api.job_errors(ws, name)
            ]
        return None

    def shown_job(name: str) -> dict[str, Any]:
        """The record as a page shows it: its error cut to an excerpt (the logs keep the whole text)."""
        record = api.get_job(ws, name)
        return {**record, "error": rest.bounded_error(record.get("error"))}

    @app.get("/studio/jobs/{name}", include_in_schema=False)
    def job(request: Request, name: str, session: Session = Depends(session_of)) -> Response:
        try:
            record = shown_job(name)
        except (NotFoundError, SpecError) as exc:
            return not_found(request, exc.message)
        log_dir = Path(record.get("log_dir") or "")
        return page(
            request, "job.html", title=name, job=record, row=_job_row(record), tree=files.tree(log_dir),
            groups=job_errors(name), can_resume=True, terminal=TERMINAL, nav="jobs",
            viewing=None, text=None, error=None,
        )  # fmt: skip

    @app.get("/studio/jobs/{name}/status.json", include_in_schema=False)
    def job_status(name: str, session: Session = Depends(session_of)) -> dict[str, Any]:
        record = shown_job(name)
        return {**_job_row(record), "counts": record.get("counts") or {}, "error": record.get("error")}

    @app.get("/studio/jobs/{name}/logs/{path:path}", include_in_schema=False)
    def job_log(request: Request, name: str, path: str, session: Session = Depends(session_of)) -> Response:
        try:
            record = shown_job(name)
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
            request, "job.html", title=name, job=record, row=_job_row(record), tree=files.tree(log_dir),
            groups=job_errors(name), can_resume=True, terminal=TERMINAL, nav="jobs",
            viewing=target.relative_to(Path(os.path.realpath(log_dir))).as_posix(), text=text,
            truncated=size > MAX_LOG_BYTES, error=None,
        )  # fmt: skip

    @app.get("/studio/jobs/{name}/download", include_in_schema=False)
    def job_download(request: Request, name: str, session: Session = Depends(session_of)) -> Response:
        """The job's own results file, fetched through `api.download_job` (so a remote output works too)."""
        folder = Path(tempfile.mkdtemp(prefix="batchctl-studio-dl-"))
        try:
            result = api.download_job(ws, name, "score", str(folder))
        except BatchctlError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, NotFoundError):
                return not_found(request, exc.message)
            return page(request, "error.html", status=_status(exc), title="Download", message=exc.message)
        if not result["files"]:
            shutil.rmtree(folder, ignore_errors=True)
            return not_found(request, f"job '{name}' wrote no results file")
        first = Path(result["files"][0])
        return FileResponse(
            first, filename=first.name, media_type="text/csv" if first.suffix == ".csv" else "application/octet-stream",
            background=BackgroundTask(shutil.rmtree, folder, True),
        )  # fmt: skip

    @app.post("/studio/jobs/{name}/cancel", include_in_schema=False)
    def job_cancel(request: Request, name: str, form: dict[str, str] = Depends(form_of)) -> Response:
        try:
            api.get_job(ws, name)
            state.queue.withdraw(name)
            api.cancel_job(ws, name)
        except NotFoundError as exc:
            return not_found(request, exc.message)
        except BatchctlError as exc:
            return page(request, "error.html", status=_status(exc), title="Cancel", message=exc.message)
        return RedirectResponse(f"/studio/jobs/{quote(name, safe='')}", status_code=303)

    @app.post("/studio/jobs/{name}/resume", include_in_schema=False)
    def job_resume(request: Request, name: str, form: dict[str, str] = Depends(form_of)) -> Response:
        try:
            record = api.resume_job(ws, name)
        except BatchctlError as exc:
            return page(request, "error.html", status=_status(exc), title="Resume", message=exc.message)
        state.queue.submit(record["name"])
        return RedirectResponse(f"/studio/jobs/{quote(record['name'], safe='')}", status_code=303)

    return sessions


def _status(exc: BatchctlError) -> int:
    """The page's status: the same mapping as the REST API's (`BatchctlError.http_status`)."""
    return exc.http_status
