"""batchctl's Python API: the one facade that the CLI (and the server) call.

Every verb takes a Workspace and returns plain JSON-ready dicts (the records `show` prints; `resources`
returns typed records for endpoints, deployments and computes, dumped here, at the edge). The work
is done below: `batchctl.resources` (one module per noun: CRUD over the registry and resolution) and
`batchctl.jobs` (submit, run, the job commands). This module holds no logic of its own.

Resources (create is create-or-overwrite; the same spec again is a no-op):

- endpoints: create_endpoint, get_endpoint, list_endpoints, update_endpoint, delete_endpoint
- deployments: create_deployment, check_deployment (what create would refuse, changing nothing),
  get_deployment, list_deployments, update_deployment, set_default_deployment, delete_deployment
- models: create_model, get_model, list_models, delete_model
- components: create_component, get_component (= show_component), list_components, delete_component;
  pipelines: bind_pipeline_spec (= bind_pipeline), check_pipeline (docs/components.md)
- data assets: create_data, get_data, list_data, delete_data
- environments: create_environment, get_environment, list_environments, delete_environment;
  build_environment, environment_builds, prune_environment_builds (the isolated builds under `envs/`)
- datastores: create_datastore, get_datastore, list_datastores, delete_datastore
- computes: create_compute, get_compute, list_computes, delete_compute

Jobs: submit_job (takes a typed JobRequest; its per-job settings are a RunOverrides, both exported here),
run_job, start_job_detached, get_job, list_jobs, cancel_job, download_job, rerun_job, rerun_whole_job,
verify_job, read_job_log, adopt_job (a running server takes a Queued job over).

Server: server_info (the workspace's running `batchctl serve`, or None). get_endpoint and
list_endpoints give `scoring_uri`/`openapi_uri` on that server (or on the URL `serve` would use, saying so).

Job functions import the job machinery on first use, so that `batchctl endpoint list` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from batchctl.workspace import Workspace

# The resource verbs are imported on first use (PEP 562): `batchctl endpoint list` then loads the endpoints
# module, not all of them. Type checkers see the imports below. Verbs with more to do than the resource
# (the server's URIs, the running-job check on delete, dumping a typed record) are functions of this module.
_RESOURCE_VERBS = {
    "batchctl.resources.computes": ("delete_compute",),
    "batchctl.resources.data": ("create_data", "delete_data", "get_data", "list_data"),
    "batchctl.resources.datastores": ("create_datastore", "delete_datastore", "get_datastore", "list_datastores"),
    "batchctl.resources.deployments": ("check_deployment",),
    "batchctl.resources.environments": (
        "create_environment",
        "delete_environment",
        "get_environment",
        "list_environments",
    ),
    "batchctl.resources.models": ("create_model", "get_model", "list_models"),
    # not verbs: the typed request that submit_job takes, and its per-job settings
    "batchctl.jobs.request": ("JobRequest",),
    "batchctl.specs.job": ("RunOverrides",),
    "batchctl.resources.components": ("delete_component", "get_component", "list_components"),
    "batchctl.resources.pipelines": ("bind_pipeline", "check_pipeline", "create_component"),
}
_MODULE_OF = {verb: module for module, verbs in _RESOURCE_VERBS.items() for verb in verbs}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from batchctl.resources.components import delete_component, get_component, list_components
    from batchctl.resources.computes import delete_compute
    from batchctl.resources.data import create_data, delete_data, get_data, list_data
    from batchctl.resources.datastores import create_datastore, delete_datastore, get_datastore, list_datastores
    from batchctl.resources.deployments import check_deployment
    from batchctl.resources.environments import (
        create_environment,
        delete_environment,
        get_environment,
        list_environments,
    )
    from batchctl.resources.models import create_model, get_model, list_models
    from batchctl.resources.pipelines import (
        BoundPipeline,
        PipelineSettings,
        bind_pipeline,
        check_pipeline,
        create_component,
    )
    from batchctl.specs.component import PipelineComponentSpec, PipelineJobSpec

if TYPE_CHECKING:
    from batchctl.execution.pool import WarmPools
    from batchctl.jobs.model import JobProgress
    from batchctl.jobs.request import JobRequest
    from batchctl.specs.job import RunOverrides

__all__ = [
    "JobRequest",
    "RunOverrides",
    "Workspace",
    "bind_pipeline",
    "bind_pipeline_spec",
    "check_pipeline",
    "create_component",
    "delete_component",
    "get_component",
    "list_components",
    "show_component",
    "adopt_job",
    "cancel_job",
    "check_deployment",
    "build_environment",
    "create_compute",
    "create_data",
    "create_datastore",
    "create_deployment",
    "create_endpoint",
    "create_environment",
    "create_model",
    "create_pipeline_job",
    "delete_compute",
    "delete_data",
    "delete_datastore",
    "delete_deployment",
    "delete_endpoint",
    "delete_environment",
    "delete_model",
    "download_job",
    "environment_builds",
    "get_compute",
    "get_data",
    "get_datastore",
    "get_deployment",
    "get_endpoint",
    "get_environment",
    "get_job",
    "get_model",
    "invoke_pipeline",
    "is_pipeline_deployment",
    "is_pipeline_job_file",
    "list_child_jobs",
    "list_computes",
    "list_data",
    "list_datastores",
    "list_deployments",
    "list_endpoints",
    "list_environments",
    "list_jobs",
    "list_models",
    "job_errors",
    "prune_environment_builds",
    "read_job_log",
    "rerun_job",
    "resume_job",
    "rerun_whole_job",
    "run_job",
    "run_pipeline_job",
    "server_info",
    "set_default_deployment",
    "start_job_detached",
    "submit_job",
    "update_deployment",
    "update_endpoint",
    "verify_job",
]


def create_endpoint(ws: Workspace, **options: Any) -> dict[str, Any]:
    """Create or overwrite an endpoint (file, name, overrides, description); the record as get_endpoint
    gives it, so that `scoring_uri` is the same from every command (docs/server.md)."""
    from batchctl.jobs.serverinfo import endpoint_uris
    from batchctl.resources import endpoints

    return endpoint_uris(ws, endpoints.create_endpoint(ws, **options).dump())


def update_endpoint(
    ws: Workspace, name: str | None, overrides: Iterable[str] = (), file: str | None = None
) -> dict[str, Any]:
    """Update an endpoint's description, tags, properties or defaults; the record as get_endpoint gives it."""
    from batchctl.jobs.serverinfo import endpoint_uris
    from batchctl.resources import endpoints

    return endpoint_uris(ws, endpoints.update_endpoint(ws, name, overrides, file=file).dump())


def set_default_deployment(ws: Workspace, endpoint: str, name: str) -> dict[str, Any]:
    """Make deployment `name` the endpoint's default; the endpoint as get_endpoint gives it."""
    from batchctl.jobs.serverinfo import endpoint_uris
    from batchctl.resources import deployments

    return endpoint_uris(ws, deployments.set_default_deployment(ws, endpoint, name).dump())


def get_endpoint(ws: Workspace, name: str) -> dict[str, Any]:
    """An endpoint, with its scoring_uri and openapi_uri on the workspace's server."""
    from batchctl.jobs.serverinfo import endpoint_uris
    from batchctl.resources.endpoints import get_endpoint as get_record

    return endpoint_uris(ws, get_record(ws, name).dump())


def list_endpoints(ws: Workspace) -> list[dict[str, Any]]:
    """Endpoints, sorted by name, with their URIs as get_endpoint gives them."""
    from batchctl.jobs.serverinfo import endpoint_uris
    from batchctl.resources.endpoints import list_endpoints as list_records

    return [endpoint_uris(ws, record.dump()) for record in list_records(ws)]


def create_deployment(
    ws: Workspace,
    file: str,
    name: str | None = None,
    endpoint_name: str | None = None,
    overrides: Iterable[str] = (),
    set_default: bool = False,
    skip_script_validation: bool = False,
) -> dict[str, Any]:
    """Create or overwrite a deployment from a YAML file; the endpoint's first deployment becomes its default."""
    from batchctl.resources import deployments

    record = deployments.create_deployment(
        ws, file, name, endpoint_name, overrides, set_default, skip_script_validation
    )
    return record.dump()


def update_deployment(
    ws: Workspace,
    name: str | None,
    endpoint: str | None,
    overrides: Iterable[str] = (),
    file: str | None = None,
    skip_script_validation: bool = False,
) -> dict[str, Any]:
    """Update an existing deployment from a file and/or `--set` overrides."""
    from batchctl.resources import deployments

    return deployments.update_deployment(ws, name, endpoint, overrides, file, skip_script_validation).dump()


def get_deployment(ws: Workspace, name: str, endpoint: str) -> dict[str, Any]:
    """A deployment, its code snapshot's path absolute."""
    from batchctl.resources import deployments

    return deployments.get_deployment(ws, name, endpoint).dump()


def list_deployments(ws: Workspace, endpoint: str) -> list[dict[str, Any]]:
    """An endpoint's deployments, sorted by name."""
    from batchctl.resources import deployments

    return [record.dump() for record in deployments.list_deployments(ws, endpoint)]


def create_compute(
    ws: Workspace,
    file: str | None = None,
    name: str | None = None,
    type: str | None = None,
    address: str | None = None,
    max_workers: int | None = None,
    min_instances: int | None = None,
    max_instances: int | None = None,
    size: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Create or overwrite a compute; an amlcompute cluster's record carries a `notice` (never stored)."""
    from batchctl.resources import computes

    record = computes.create_compute(
        ws, file, name, type, address, max_workers, min_instances, max_instances, size, overrides
    )
    return record.dump()


def get_compute(ws: Workspace, name: str) -> dict[str, Any]:
    """A compute; `local` is built in."""
    from batchctl.resources import computes

    return computes.get_compute(ws, name).dump()


def list_computes(ws: Workspace) -> list[dict[str, Any]]:
    """The computes, sorted by name, `local` among them."""
    from batchctl.resources import computes

    return [record.dump() for record in computes.list_computes(ws)]


def show_component(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    """A component version (latest by default): `az ml component show`."""
    from batchctl.resources.components import get_component

    return get_component(ws, name, version)


def bind_pipeline_spec(
    ws: Workspace,
    spec: PipelineComponentSpec | PipelineJobSpec,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any] | None = None,
    settings: PipelineSettings | None = None,
) -> BoundPipeline:
    """A pipeline component or job bound and validated (resources/pipelines.bind_pipeline)."""
    from batchctl.resources.pipelines import bind_pipeline

    return bind_pipeline(ws, spec, inputs, outputs, settings)


def server_info(ws: Workspace) -> dict[str, Any] | None:
    """The workspace's running server (`batchctl serve`): url, pid, started_at; None when none runs."""
    from batchctl.jobs import serverinfo

    return serverinfo.read(ws)


def submit_job(ws: Workspace, request: JobRequest, *, dry_run: bool = False) -> dict[str, Any]:
    """Check a typed request and write a Queued job; with dry_run, return the plan instead. Input and
    output are checked before anything is written. Build the request with `JobRequest(endpoint=...,
    input=..., overrides=RunOverrides(...))`, or from the command line's words with
    `JobRequest.from_words(...)` (flags > `--set` > invocation file > deployment)."""
    from batchctl.jobs import submit

    request.check()
    return submit.queue(ws, request, dry_run)


def run_job(
    ws: Workspace,
    name: str,
    on_progress: Callable[[JobProgress], None] | None = None,
    pools: WarmPools | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run a Queued job in this process until it ends; returns the final record. `on_progress` is called
    with a JobProgress for every event and once at the end. With `pools` (the server's), a local job
    takes warm workers whose init() has run instead of starting its own. `environ`: where the deployment's
    `${env:NAME}` references are read (default: this process's environment), held in memory only."""
    if _is_pipeline_job(ws, name):
        from batchctl.jobs.pipelines.runner import run_pipeline

        return run_pipeline(ws, name).public()
    from batchctl.jobs.runner import run_job as _run

    return _run(ws, name, on_progress, pools=pools, environ=environ).public()


def _is_pipeline_job(ws: Workspace, name: str) -> bool:
    from batchctl.jobs import records

    record = records.read(records.job_dir(ws, name))
    return record is not None and record.type == "pipeline"


def _refuse_pipeline_job(ws: Workspace, name: str, what: str) -> None:
    from batchctl.errors import InvalidStateError
    from batchctl.jobs import records

    record = records.read(records.job_dir(ws, name))
    if record is not None and (record.type == "pipeline" or record.parent_job_name):
        kind = "a pipeline job" if record.type == "pipeline" else f"a step of pipeline job {record.parent_job_name}"
        raise InvalidStateError(
            f"job '{name}' is {kind}: `job {what}` is for batch scoring jobs",
            "continue a pipeline job with `batchctl job resume -n <pipeline job>`, or invoke it again",
        )


def run_pipeline_job(ws: Workspace, name: str, on_line: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run a Queued pipeline job in this process until it ends (each step a child job); `on_line` gets
    each step's changes of state as one line. Returns the parent's final record."""
    from batchctl.jobs.pipelines.runner import run_pipeline

    return run_pipeline(ws, name, on_line).public()


def invoke_pipeline(ws: Workspace, **options: Any) -> dict[str, Any]:
    """Queue a pipeline job of a `type: pipeline` deployment. options: endpoint, deployment, file (Azure's
    inputs.yml), overrides (`inputs.<x>.value|path=...`, `outputs.<y>.path=...`), job_name,
    experiment_name, tags (dict), force_rerun, dry_run, env_manager, env_strict, env_constraints."""
    from batchctl.jobs.pipelines.invoke import invoke_pipeline as _invoke

    return _invoke(ws, **options)


def create_pipeline_job(ws: Workspace, **options: Any) -> dict[str, Any]:
    """Queue the pipeline job of a `type: pipeline` job YAML (`job create -f pipeline-job.yml`). options:
    file, name, overrides (`--set`), tags (dict), experiment_name, force_rerun, dry_run, env_manager,
    env_strict, env_constraints."""
    from batchctl.jobs.pipelines.invoke import create_pipeline_job as _create

    return _create(ws, **options)


def is_pipeline_deployment(ws: Workspace, endpoint: str | None, deployment: str | None = None) -> bool:
    """Whether the deployment an invocation goes to (the endpoint's default unless named) is `type: pipeline`.
    Read from the registry alone: every `endpoint invoke` asks, and importing the pipelines package to
    answer cost a model deployment's invoke a third of its start-up (measured: docs/benchmarks.md, Scale)."""
    if not endpoint:
        return False
    from batchctl.errors import NotFoundError
    from batchctl.resources.deployments import resolve_deployment
    from batchctl.specs import load as spec_load

    try:
        _, record = resolve_deployment(ws, spec_load.validate_name("endpoint", endpoint), deployment)
    except NotFoundError:
        return False
    return record.type == "pipeline"


def is_pipeline_job_file(file: str | None) -> bool:
    """Whether a job YAML is a pipeline job (`type: pipeline`)."""
    from batchctl.jobs.pipelines.invoke import is_pipeline_job_file as _is

    return _is(file)


def list_child_jobs(ws: Workspace, parent: str) -> list[dict[str, Any]]:
    """The child jobs (one per step) of pipeline job `parent`, in the pipeline's order."""
    from batchctl.jobs.pipelines.commands import list_children

    return list_children(ws, parent)


def referenced_variables(ws: Workspace, name: str) -> list[str]:
    """The environment variables a job's deployment refers to with `${env:NAME}` (read when it starts)."""
    from batchctl.jobs import commands

    return commands.referenced_variables(ws, name)


def adopt_job(ws: Workspace, name: str, runner_pid: int | None = None) -> dict[str, Any]:
    """Make this process the runner of a Queued job (the server taking a job the CLI submitted). With
    runner_pid, the job must still belong to that process."""
    from batchctl.jobs import commands

    return commands.adopt_job(ws, name, runner_pid)


def start_job_detached(ws: Workspace, name: str) -> dict[str, Any]:
    """Hand a Queued job to a detached runner process and return its record at once."""
    from batchctl.jobs import commands

    return commands.start_detached(ws, name)


def get_job(ws: Workspace, name: str) -> dict[str, Any]:
    """A job's record; a job whose runner died reads Failed."""
    from batchctl.jobs import commands

    return commands.get_job(ws, name)


def list_jobs(
    ws: Workspace,
    endpoint: str | None = None,
    deployment: str | None = None,
    status: str | None = None,
    tags: dict[str, str] | None = None,
    *,
    max_results: int | None = None,
) -> list[dict[str, Any]]:
    """Jobs, newest first, filtered by endpoint, deployment, status (any case) and tags (all must match);
    at most `max_results`."""
    from batchctl.jobs import commands

    return commands.list_jobs(ws, endpoint, deployment, status, tags, max_results=max_results)


def cancel_job(ws: Workspace, name: str) -> dict[str, Any]:
    """Ask a job to stop and wait until it has (its workers stopped, nothing published)."""
    from batchctl.jobs import commands

    return commands.cancel_job(ws, name)


def download_job(
    ws: Workspace, name: str, output_name: str = "score", download_path: str | None = None
) -> dict[str, Any]:
    """Copy a Completed job's results to DOWNLOAD_PATH/named-outputs/score/ (a pipeline job's named output
    to DOWNLOAD_PATH/named-outputs/<output_name>/)."""
    from batchctl.jobs import commands

    if _is_pipeline_job(ws, name):
        from batchctl.jobs.pipelines.commands import download_output

        return download_output(ws, name, output_name, download_path)
    return commands.download_job(ws, name, output_name, download_path)


def rerun_job(
    ws: Workspace,
    name: str,
    output_path: str | None = None,
    job_name: str | None = None,
    dry_run: bool = False,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Queue a new job that scores only the items Completed job `name` failed, with its settings and
    `overrides` (`key=value`); a job that did not complete is refused and pointed to resume_job."""
    from batchctl.jobs import commands

    _refuse_pipeline_job(ws, name, "rerun")

    return commands.rerun_failed(
        ws, name, output_path=output_path, job_name=job_name, dry_run=dry_run, overrides=overrides
    )


def build_environment(
    ws: Workspace,
    name: str,
    version: str | None = None,
    strict: bool = False,
    constraints: Iterable[str] = (),
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Build a registered environment now (as Azure builds the image at deployment time): once for each kind
    of deployment that uses it. Returns each build's record (key, path, python, lock file, substitutions)."""
    from batchctl.jobs import environment

    return environment.build_registered(ws, name, version, strict, constraints, log or (lambda _line: None))


def environment_builds(ws: Workspace, env_id: str | None = None) -> list[dict[str, Any]]:
    """The builds under `<workspace>/envs/`: key, Python, size, last use, lock file (only `env_id`'s if given)."""
    from batchctl.jobs import environment

    return environment.builds_of(ws, env_id)


def prune_environment_builds(ws: Workspace, unused_days: float = 30) -> dict[str, Any]:
    """Remove builds unused for `unused_days` days; says what was removed and how much was freed."""
    from batchctl.jobs import environment

    return environment.prune_builds(ws, unused_days)


def resume_job(
    ws: Workspace,
    name: str,
    overrides: Iterable[str] = (),
    use_current_deployment: bool = False,
    output_path: str | None = None,
    env_manager: str | None = None,
    env_strict: bool = False,
    env_constraints: Iterable[str] = (),
) -> dict[str, Any]:
    """Queue a Failed or Canceled job again under its own name: only the mini-batches without a committed
    result are scored, and it publishes to its own output (or to `output_path`, a folder where its results
    file does not exist: for a job whose output appeared while it ran). Run it with run_job or
    start_job_detached. env_manager / env_strict / env_constraints change how its environment is chosen
    (`--env-manager`)."""
    from batchctl.jobs import commands

    if _is_pipeline_job(ws, name):  # its steps that did not complete run again
        from batchctl.jobs.pipelines.commands import resume_pipeline

        return resume_pipeline(ws, name, env_manager, env_strict, list(env_constraints))
    return commands.resume_job(
        ws, name, overrides, use_current_deployment, output_path, env_manager, env_strict, list(env_constraints)
    )


def job_errors(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """A job's failed items grouped by exception type and normalised message, with counts and samples."""
    from batchctl.jobs import commands

    return commands.job_errors(ws, name)


def delete_endpoint(ws: Workspace, name: str, force: bool = False) -> dict[str, Any]:
    """Delete an endpoint and its deployments; refused while a queued or running job uses it, unless force."""
    if not force:
        from batchctl.jobs import commands

        commands.refuse_if_in_use(ws, f"endpoint '{name}'", endpoint=name)
    from batchctl.resources import endpoints

    return endpoints.delete_endpoint(ws, name)


def delete_deployment(ws: Workspace, name: str, endpoint: str, force: bool = False) -> dict[str, Any]:
    """Delete a deployment; refused while a queued or running job uses it, unless force."""
    if not force:
        from batchctl.jobs import commands

        commands.refuse_if_in_use(
            ws, f"deployment '{name}' of endpoint '{endpoint}'", endpoint=endpoint, deployment=name
        )
    from batchctl.resources import deployments

    return deployments.delete_deployment(ws, name, endpoint)


def delete_model(ws: Workspace, name: str, version: str | None = None, force: bool = False) -> dict[str, Any]:
    """Delete a model version (or all): refused while a deployment uses it, or (unless force) a job."""
    if not force:
        from batchctl.jobs import commands

        what = f"model '{name}'" + (f" version '{version}'" if version else "")
        commands.refuse_if_in_use(ws, what, model=name, version=version)
    from batchctl.resources import models

    return models.delete_model(ws, name, version)


def rerun_whole_job(
    ws: Workspace,
    name: str,
    output_path: str | None = None,
    job_name: str | None = None,
    dry_run: bool = False,
    tracking_uri: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Queue a new job over job `name`'s whole input with its settings (and `overrides`), model version
    and code snapshot; warns (notices) with the differences when the input listing changed since it ran."""
    from batchctl.jobs import commands

    _refuse_pipeline_job(ws, name, "rerun")

    return commands.rerun_whole(ws, name, output_path, job_name, dry_run, tracking_uri, overrides)


def verify_job(ws: Workspace, name: str) -> dict[str, Any]:
    """Re-hash a Completed job's published results and its model against its lineage manifest; the report,
    or LineageMismatchError (exit 10 results, 11 model, 12 both) carrying it."""
    from batchctl.jobs import commands

    _refuse_pipeline_job(ws, name, "verify")
    return commands.verify_job(ws, name)


def read_job_log(ws: Workspace, name: str, position: int = 0) -> tuple[str, int]:
    """The job's driver log (logs/sys/master_role.txt) from `position` on, and the position after it."""
    from batchctl.jobs import commands

    return commands.read_log(ws, name, position)
