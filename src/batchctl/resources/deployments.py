"""Batch deployments: a model (and scoring code) with settings, under an endpoint; routing to them."""

from __future__ import annotations

import ast
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import ConflictError, NotFoundError, SpecError
from batchctl.resources._common import deployment_key, deployment_names, same_record, stamp
from batchctl.resources.computes import get_compute
from batchctl.resources.endpoints import get_endpoint, stored_endpoint, update_endpoint
from batchctl.resources.environments import resolve_environment_ref
from batchctl.resources.models import (
    check_model_path,
    register_mlflow_uri_model,
    register_model_files,
    resolve_model_ref,
)
from batchctl.resources.records import DeploymentRecord, EndpointRecord
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace, content_hash, copy_into, now

if TYPE_CHECKING:
    from batchctl.specs.deployment import DeploymentSpec, PipelineDeploymentSpec

# `job create -f pipeline-job.yml` keeps the job's validated spec here (jobs/pipelines/api.py writes it):
# a deployment made from the job (`job_definition: azureml:<job>`) copies it
PIPELINE_JOB_SPEC = "pipeline-spec.json"


def _check_code(spec: DeploymentSpec, source: str, skip_script_validation: bool) -> None:
    code_config = spec.code_configuration
    if code_config is None:
        return
    code = Path(code_config.code)
    if not code.is_dir():
        raise SpecError(f"{source}: code_configuration.code: folder '{code}' does not exist")
    script = code / code_config.scoring_script
    if not script.is_file():
        raise SpecError(
            f"{source}: code_configuration.scoring_script: '{code_config.scoring_script}' not found in '{code}'"
        )
    if skip_script_validation:
        return
    try:
        ast.parse(script.read_bytes(), filename=str(script))
    except SyntaxError as exc:
        raise SpecError(
            f"{source}: Failed to submit deployment {spec.name} due to syntax errors in scoring script "
            f"{code_config.scoring_script}. Error on line {exc.lineno}: {exc.msg}",
            "fix the script, or pass --skip-script-validation",
        ) from exc
    except ValueError as exc:
        raise SpecError(f"{source}: code_configuration.scoring_script: {exc}") from exc


def _refuse_folders_holding_workspace(ws: Workspace, spec: DeploymentSpec, source: str) -> None:
    """Checked before anything is copied or registered (the model is copied before the code)."""
    from batchctl.specs.deployment import InlineModel

    if isinstance(spec.model, InlineModel):
        ws.refuse_source_holding_workspace(Path(spec.model.path), f"{source}: model.path")
    if spec.code_configuration is not None:
        ws.refuse_source_holding_workspace(Path(spec.code_configuration.code), f"{source}: code_configuration.code")


def _snapshot_code(ws: Workspace, code: Path) -> str:
    """Copy the code folder into `<workspace>/code/<hash>/src` (once per content); its path as stored:
    relative to the workspace root, so the workspace can be moved or copied."""
    digest = content_hash(code)[:20]
    target = ws.code_dir / digest
    if not target.exists():
        staging = copy_into(code, ws.code_dir)
        try:
            os.rename(staging / code.name, staging / "src")
            os.rename(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():
                raise
    return ws.stored_path(target / "src")


def _resolve_deployment_model(ws: Workspace, spec: DeploymentSpec, source: str) -> dict[str, Any]:
    from batchctl.specs.deployment import InlineModel

    model = spec.model
    if isinstance(model, InlineModel):
        path = Path(model.path)
        check_model_path(path, model.type, source)
        name = model.name or f"{spec.endpoint_name}-{spec.name}-model"
        spec_load.validate_name("model", name)
        meta = {"description": model.description, "tags": model.tags, "properties": model.properties}
        return register_model_files(ws, name, model.version, model.type, path, meta)
    if model.startswith(("models:/", "runs:/")):
        return register_mlflow_uri_model(ws, model, spec.name)
    return resolve_model_ref(ws, model)


def create_deployment(
    ws: Workspace,
    file: str,
    name: str | None = None,
    endpoint_name: str | None = None,
    overrides: Iterable[str] = (),
    set_default: bool = False,
    skip_script_validation: bool = False,
) -> DeploymentRecord:
    """Create or overwrite a deployment; the endpoint's first deployment becomes its default."""
    from batchctl.specs.deployment import DeploymentSpec, PipelineDeploymentSpec, deployment_spec_class

    data = spec_load.apply_overrides(spec_load.read_yaml(Path(file)), overrides)
    if deployment_spec_class(data) is PipelineDeploymentSpec:
        pipeline = spec_load.load_spec(
            "deployment",
            PipelineDeploymentSpec,
            file,
            overrides,
            fields={"name": name, "endpoint_name": endpoint_name.lower() if endpoint_name is not None else None},
        )
        job_spec = pipeline_job_spec(ws, pipeline.job_definition) if pipeline.job_definition else None
        return save_pipeline_deployment(ws, pipeline, Path(file).absolute().parent, set_default, job_spec)
    spec = spec_load.load_spec(
        "deployment",
        DeploymentSpec,
        file,
        overrides,
        fields={"name": name, "endpoint_name": endpoint_name.lower() if endpoint_name is not None else None},
    )
    return _save_deployment(ws, spec, Path(file).name, set_default, skip_script_validation)


def _save_deployment(
    ws: Workspace, spec: DeploymentSpec, source: str, set_default: bool, skip_script_validation: bool
) -> DeploymentRecord:
    record = _deployment_to_store(ws, spec, source, skip_script_validation)
    return DeploymentRecord.from_registry(_store(ws, spec.endpoint_name, spec.name, record, set_default), ws.root)


def _deployment_to_store(
    ws: Workspace, spec: DeploymentSpec, source: str, skip_script_validation: bool
) -> dict[str, Any]:
    """Check the spec against the workspace, register its model and snapshot its code: the dict to store."""
    state = ws.store.read()
    get_endpoint(ws, spec.endpoint_name, state)
    compute = get_compute(ws, spec.compute, state)
    _refuse_folders_holding_workspace(ws, spec, source)
    _check_code(spec, source, skip_script_validation)
    # before the model, which may be registered: a bad environment reference leaves the registry untouched
    environment = resolve_environment_ref(spec.environment, state) if isinstance(spec.environment, str) else None
    model = _resolve_deployment_model(ws, spec, source)
    _require_code_for(spec, model["type"], model["id"], source)
    _warn_literal_secrets(spec, source)
    record = spec.model_dump(mode="json")
    # `settings.instance_count` is the SDK's alias of `resources.instance_count`, already moved there by
    # the spec: an empty copy would print as `settings.instance_count=` beside the real value
    if record["settings"].get("instance_count") is None:
        record["settings"].pop("instance_count", None)
    record["model"] = model["id"]
    record["model_type"] = model["type"]
    if environment is not None:
        record["environment"] = environment["id"]  # @latest pinned, as the model is
    if spec.code_configuration is not None:
        record["code_configuration"]["source_code"] = spec.code_configuration.code
        record["code_configuration"]["code"] = _snapshot_code(ws, Path(spec.code_configuration.code))
    record["compute_type"] = compute.type
    record["provisioning_state"] = "Succeeded"
    record["spec_hash"] = spec_load.spec_hash(spec)
    return record


def _store(ws: Workspace, endpoint_name: str, name: str, record: dict[str, Any], set_default: bool) -> dict[str, Any]:
    """Write the deployment (unchanged records keep their timestamps); the endpoint's first becomes its default."""
    key = deployment_key(endpoint_name, name)
    with ws.store.transaction() as state:
        endpoint = stored_endpoint(state, endpoint_name)
        previous = state["deployments"].get(key)
        if not same_record(previous, record):
            stamp(record, previous)
            state["deployments"][key] = record
        else:
            record = dict(previous)
        current_default = endpoint["defaults"].get("deployment_name")
        if (
            set_default
            or current_default is None
            or deployment_key(endpoint_name, current_default) not in state["deployments"]
        ):
            if current_default != name:
                endpoint["defaults"]["deployment_name"] = name
                endpoint["updated_at"] = now()
                state["endpoints"][endpoint_name] = endpoint
    return record


def pipeline_job_spec(ws: Workspace, ref: str) -> dict[str, Any]:
    """The validated spec of pipeline job `azureml:<name>` (as `job create -f` kept it)."""
    import json

    name = spec_load.validate_name("job", ref.removeprefix("azureml:"))
    folder = ws.inside(ws.jobs_dir / name)
    if not (folder / "job.json").is_file():
        raise NotFoundError(f"job_definition: job '{name}' not found", "list jobs with `batchctl job list`")
    try:
        return dict(json.loads((folder / PIPELINE_JOB_SPEC).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise SpecError(
            f"job_definition: job '{name}' is not a pipeline job made with `batchctl job create -f`"
        ) from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"job_definition: job '{name}': its pipeline spec cannot be read: {exc}") from exc


def save_pipeline_deployment(
    ws: Workspace,
    spec: PipelineDeploymentSpec,
    base: Path,
    set_default: bool,
    job_spec: dict[str, Any] | None = None,
) -> DeploymentRecord:
    """A `type: pipeline` deployment: its component (a file, resolved against the spec's folder; a
    reference; or inline) or, for `job_definition`, the pipeline job's spec copied in (`job_spec`, read
    by the caller), so the deployment outlives the job. Components are bound at invoke, with the inputs."""
    state = ws.store.read()
    get_endpoint(ws, spec.endpoint_name, state)
    if spec.settings.default_compute:
        get_compute(ws, spec.settings.default_compute, state)
    record = spec.model_dump(mode="json", exclude_none=True)
    if isinstance(spec.component, str) and not spec.component.startswith("azureml:"):
        path = (base / spec.component).absolute()
        if not path.is_file():
            raise SpecError(f"deployment {spec.name}: component: file {path} does not exist")
        record["component"] = ws.stored_path(path)  # relative when inside the workspace, as model paths are
    if isinstance(spec.component, dict):
        record["base"] = ws.stored_path(base.absolute())  # where an inline component's `code:` is read from
    if job_spec is not None:
        record["job_spec"] = job_spec
    record["compute"] = spec.settings.default_compute or "local"
    record["provisioning_state"] = "Succeeded"
    record["spec_hash"] = spec_load.spec_hash(spec)
    return DeploymentRecord.from_registry(_store(ws, spec.endpoint_name, spec.name, record, set_default), ws.root)


def _require_code_for(spec: DeploymentSpec, model_type: str, model: str, source: str) -> None:
    if spec.code_configuration is None and model_type != "mlflow_model":
        raise SpecError(f"{source}: code_configuration: required because model {model} is not an MLflow model")


def check_deployment(ws: Workspace, file: str, *, new_endpoint: bool = False) -> None:
    """Raise what `create_deployment(ws, file)` would refuse, changing nothing (the Studio wizard's Review):
    the endpoint (unless `new_endpoint`: it is made in the same step), the compute, the code folder and
    scoring script, the environment, the model (a registered one must exist; a model folder is checked,
    not registered) and that a model which is not an MLflow model comes with a scoring script. A
    models:/ or runs:/ URI is resolved only when the deployment is created."""
    from batchctl.specs.deployment import DeploymentSpec, InlineModel

    spec = spec_load.load_spec("deployment", DeploymentSpec, file)
    source = Path(file).name
    state = ws.store.read()
    if not new_endpoint:
        get_endpoint(ws, spec.endpoint_name, state)
    get_compute(ws, spec.compute, state)
    _refuse_folders_holding_workspace(ws, spec, source)
    _check_code(spec, source, skip_script_validation=False)
    if isinstance(spec.environment, str):
        resolve_environment_ref(spec.environment, state)
    model = spec.model
    if isinstance(model, InlineModel):
        check_model_path(Path(model.path), model.type, source)
        _require_code_for(spec, model.type, model.path, source)
    elif not model.startswith(("models:/", "runs:/")):
        record = resolve_model_ref(ws, model, state)
        _require_code_for(spec, record["type"], record["id"], source)


def _warn_literal_secrets(spec: DeploymentSpec, source: str) -> None:
    """A literal key, SAS or connection string in environment_variables is stored as written: say so."""
    from batchctl.notices import notify
    from batchctl.secrets import looks_secret

    names = [k for k, v in spec.settings.environment_variables.items() if looks_secret(v)]
    if names:
        notify(
            f"{source}: settings.environment_variables {', '.join(names)} look like secrets (an account key, SAS "
            "or connection string) and are stored in plaintext in the workspace registry; write "
            "${env:NAME} to have each read from the environment when a job starts"
        )


def get_deployment(ws: Workspace, name: str, endpoint: str, state: dict[str, Any] | None = None) -> DeploymentRecord:
    state = state if state is not None else ws.store.read()
    return DeploymentRecord.from_registry(stored_deployment(state, name, endpoint), ws.root)


def stored_deployment(state: dict[str, Any], name: str, endpoint: str) -> dict[str, Any]:
    """The deployment's dict in a registry state, as stored; NotFoundError if the endpoint or it is missing."""
    endpoint = spec_load.validate_name("endpoint", endpoint)
    spec_load.validate_name("deployment", name)
    stored_endpoint(state, endpoint)
    record = state["deployments"].get(deployment_key(endpoint, name))
    if record is None:
        existing = deployment_names(state, endpoint)
        raise NotFoundError(
            f"deployment '{name}' not found in endpoint '{endpoint}'"
            + (f"; existing: {', '.join(existing)}" if existing else "; it has no deployments"),
            f"create it with `batchctl deployment create -f deployment.yml -e {endpoint}`",
        )
    return dict(record)


def list_deployments(ws: Workspace, endpoint: str) -> list[DeploymentRecord]:
    endpoint = spec_load.validate_name("endpoint", endpoint)
    state = ws.store.read()
    stored_endpoint(state, endpoint)
    return [
        DeploymentRecord.from_registry(state["deployments"][deployment_key(endpoint, n)], ws.root)
        for n in deployment_names(state, endpoint)
    ]


def update_deployment(
    ws: Workspace,
    name: str | None,
    endpoint: str | None,
    overrides: Iterable[str] = (),
    file: str | None = None,
    skip_script_validation: bool = False,
) -> DeploymentRecord:
    """Update an existing deployment from a file and/or `--set` overrides."""
    from batchctl.specs.deployment import DeploymentSpec, PipelineDeploymentSpec, deployment_spec_class

    if file is not None and deployment_spec_class(spec_load.read_yaml(Path(file))) is PipelineDeploymentSpec:
        pipeline = spec_load.load_spec(
            "deployment",
            PipelineDeploymentSpec,
            file,
            overrides,
            fields={"name": name, "endpoint_name": endpoint.lower() if endpoint is not None else None},
        )
        get_deployment(ws, pipeline.name, pipeline.endpoint_name)
        return create_deployment(ws, file, name, endpoint, overrides)
    if file is not None:
        spec = spec_load.load_spec(
            "deployment",
            DeploymentSpec,
            file,
            overrides,
            fields={"name": name, "endpoint_name": endpoint.lower() if endpoint is not None else None},
        )
        get_deployment(ws, spec.name, spec.endpoint_name)
        return _save_deployment(ws, spec, Path(file).name, False, skip_script_validation)
    if not name or not endpoint:
        raise SpecError("deployment update needs --name and --endpoint-name (or --file)")
    previous = get_deployment(ws, name, endpoint).dump()
    if previous.get("type") == "pipeline":
        raise SpecError(
            f"deployment update: '{name}' is a pipeline deployment; change it from its file",
            f"batchctl deployment update -f <deployment.yml> --endpoint-name {endpoint}",
        )
    data = {k: previous[k] for k in DeploymentSpec.model_fields if k in previous}
    if previous.get("code_configuration"):
        data["code_configuration"] = {
            "code": previous["code_configuration"]["code"],
            "scoring_script": previous["code_configuration"]["scoring_script"],
        }
    data = spec_load.apply_overrides(data, overrides)
    spec = spec_load.validate_data(DeploymentSpec, data, "deployment update")
    if spec.name != previous["name"] or spec.endpoint_name != previous["endpoint_name"]:
        raise SpecError("deployment update: name and endpoint_name cannot be changed")
    return _save_deployment(ws, spec, "deployment update", False, skip_script_validation)


def set_default_deployment(ws: Workspace, endpoint: str, name: str) -> EndpointRecord:
    return update_endpoint(ws, endpoint, [f"defaults.deployment_name={name}"])


def delete_deployment(ws: Workspace, name: str, endpoint: str) -> dict[str, Any]:
    """Delete a deployment; deleting the default while others exist is refused."""
    endpoint = spec_load.validate_name("endpoint", endpoint)
    with ws.store.transaction() as state:
        try:
            stored_deployment(state, name, endpoint)
        except NotFoundError as exc:  # a missing deployment is no reason to create one
            where = f"`batchctl deployment list -e {endpoint}`" if endpoint in state["endpoints"] else None
            raise NotFoundError(
                f"{exc.message}; nothing was deleted",
                f"{where or '`batchctl endpoint list`'} shows what exists",
            ) from None
        ep = state["endpoints"][endpoint]
        others = [n for n in deployment_names(state, endpoint) if n != name]
        if ep["defaults"].get("deployment_name") == name:
            if others:
                raise ConflictError(
                    f"deployment '{name}' is the default of endpoint '{endpoint}' and other deployments exist",
                    f"make another one the default first: batchctl deployment set-default -e {endpoint} -n {others[0]}",
                )
            ep["defaults"]["deployment_name"] = None
            ep["updated_at"] = now()
        del state["deployments"][deployment_key(endpoint, name)]
    return {"name": name, "endpoint_name": endpoint, "deleted": True}


def routing_error_message(endpoint: str) -> str:
    return (
        f"endpoint {endpoint} has no default deployment; pass --deployment-name or run "
        "`batchctl deployment set-default`"
    )


def resolve_deployment(
    ws: Workspace, endpoint: str, name: str | None = None, state: dict[str, Any] | None = None
) -> tuple[EndpointRecord, DeploymentRecord]:
    """(endpoint, deployment) for a job: the named deployment, else the endpoint's default."""
    state = state if state is not None else ws.store.read()
    ep = get_endpoint(ws, endpoint, state)
    if name is None:
        name = ep.default_deployment
        if not name:
            raise NotFoundError(routing_error_message(ep.name))
    return ep, get_deployment(ws, name, ep.name, state)
