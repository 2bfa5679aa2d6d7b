"""The Studio's wizard: a new batch endpoint and deployment, or a deployment added to an endpoint."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from batchctl import api
from batchctl.errors import BatchctlError, NotFoundError, SpecError
from batchctl.server import rest
from batchctl.server.state import ServerState, server_state
from batchctl.server.studio import forms
from batchctl.server.studio.pages import (
    WIZARD_DEFAULTS,
    error_status,
    form_of,
    page,
    session_of,
)
from batchctl.server.studio.routes.endpoints import every_version
from batchctl.server.studio.session import Session
from batchctl.workspace import Workspace

router = APIRouter(include_in_schema=False)

# ------------------------------------------------------------------------------------ the wizard


def wizard_context(ws: Workspace, values: dict[str, str]) -> dict[str, Any]:
    return {
        "models": every_version(ws, api.list_models),
        "endpoints": [e["name"] for e in api.list_endpoints(ws)],
        "computes": [c["name"] for c in api.list_computes(ws)],
        "environments": every_version(ws, api.list_environments),
        "v": values,
    }


@router.get("/studio/create", include_in_schema=False)
def wizard(
    request: Request,
    model: str = "",
    endpoint: str = "",
    session: Session = Depends(session_of),
    state: ServerState = Depends(server_state),
) -> HTMLResponse:
    ws = state.ws
    values = {
        **WIZARD_DEFAULTS, "model": model, "endpoint_mode": "existing" if endpoint else "new",
        "existing_endpoint": endpoint, "set_default": "" if endpoint else "on",
    }  # fmt: skip
    return page(
        request, "wizard.html", title="Create batch endpoint" if not endpoint else "Add deployment",
        fixed_endpoint=endpoint, errors={}, error=None, nav="endpoints", **wizard_context(ws, values),
    )  # fmt: skip


@router.post("/studio/create", include_in_schema=False)
def wizard_post(
    request: Request, form: dict[str, str] = Depends(form_of), state: ServerState = Depends(server_state)
) -> Response:
    import yaml

    from batchctl.specs.deployment import DeploymentSpec
    from batchctl.specs.endpoint import EndpointSpec
    from batchctl.specs.load import validate_data

    ws = state.ws

    values = {
        **WIZARD_DEFAULTS,
        "set_default": "",
        **{k: v for k, v in form.items() if k not in ("csrf", "action")},
    }
    fixed = form.get("fixed_endpoint", "")
    endpoint_spec, deployment_spec = forms.wizard_specs(values)
    errors = _custom_model_errors(state, values)
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
            errors.setdefault(field, message)  # a check made first (confinement) says it best
        else:
            error = message

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
                    **wizard_context(ws, values))  # fmt: skip
    if form.get("action") == "review":
        return page(request, "review.html", title="Review", yaml_text=yaml_text, values=values,
                    fixed_endpoint=fixed, nav="endpoints")  # fmt: skip
    try:
        _create(
            ws, yaml_text, endpoint_spec, set_default=endpoint_spec is not None or values.get("set_default") == "on"
        )
    except BatchctlError as exc:
        fail(exc.message)
        return page(request, "wizard.html", status=error_status(exc), title=title, fixed_endpoint=fixed,
                    errors=errors, error=error, nav="endpoints", **wizard_context(ws, values))  # fmt: skip
    target = quote(deployment_spec["endpoint_name"], safe="")
    return RedirectResponse(f"/studio/endpoints/{target}", status_code=303)


def _custom_model_errors(state: ServerState, values: dict[str, str]) -> dict[str, str]:
    """A custom model's local folders and conda file, confined as a job's paths (the server copies the
    folders into the workspace and reads the conda file at each job), and its environment choice."""
    errors: dict[str, str] = {}
    if values.get("model_kind") != "custom":
        return errors
    roots = rest.allowed_roots(state.ws, state.settings.allow_paths)
    kind = values.get("env_kind", "none")
    conda = values.get("conda_file", "").strip()
    if kind == "conda" and not os.path.isabs(conda):  # not azureml:, https:// or relative: a file here
        errors["conda_file"] = f"conda_file: give the absolute path of a conda file on the server, not '{conda}'"
    for field in ("model_path", "code_path", "conda_file"):
        value = values.get(field, "").strip()
        if value and field not in errors and (field != "conda_file" or kind == "conda"):
            try:
                rest.check_path(value, roots, field)
            except BatchctlError as exc:
                errors[field] = exc.message
    if kind == "conda" and "conda_file" not in errors:
        from batchctl.envs.spec import from_conda_file

        try:
            if not Path(conda).is_file():
                raise SpecError(f"conda_file: '{conda}' does not exist or is not a file")
            from_conda_file(Path(conda), "conda_file")
        except BatchctlError as exc:
            errors["conda_file"] = exc.message
    elif kind == "registered" and not values.get("environment", "").strip():
        errors["environment"] = "environment: choose a registered environment"
    elif kind not in forms.WIZARD_PANELS["env_kind"]:
        errors["environment"] = f"env_kind: '{kind}' is not one of {', '.join(forms.WIZARD_PANELS['env_kind'])}"
    return errors


def _create(
    ws: Workspace, yaml_text: dict[str, str | None], endpoint_spec: dict[str, Any] | None, *, set_default: bool
) -> None:
    """Create: the same YAML the Review showed, through the api as `endpoint create -f` / `deployment create
    -f`. Lose nothing, leave nothing half made: when the deployment fails, the endpoint made for it goes again."""
    folder = Path(tempfile.mkdtemp(prefix="batchctl-studio-"))
    created_endpoint = False
    try:
        if endpoint_spec is not None:
            (folder / "endpoint.yml").write_text(yaml_text["endpoint"] or "")
            api.create_endpoint(ws, file=str(folder / "endpoint.yml"))
            created_endpoint = True
        (folder / "deployment.yml").write_text(yaml_text["deployment"] or "")
        api.create_deployment(ws, str(folder / "deployment.yml"), set_default=set_default)
    except BatchctlError:
        if created_endpoint and endpoint_spec is not None:
            with contextlib.suppress(BatchctlError):
                api.delete_endpoint(ws, endpoint_spec["name"])
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
