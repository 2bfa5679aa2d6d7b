"""Queue a pipeline job: the parent record (Queued) and the frozen bound pipeline. Everything is checked
here, before any step runs: the compute, every promoted output (a new or empty folder: outputs are
create-only), and each step's environment plan."""

from __future__ import annotations

import dataclasses
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from batchctl import storage
from batchctl.errors import OutputExistsError
from batchctl.jobs import environment as job_env
from batchctl.jobs import records
from batchctl.jobs.model import DeploymentSnapshot, JobRecord, JobRetry, JobSettings, JobState, LocationRecord
from batchctl.jobs.pipelines import frozen
from batchctl.jobs.pipelines.steps import child_name
from batchctl.resources.computes import get_compute
from batchctl.resources.locations import DATASTORE_PREFIX, resolve_location
from batchctl.resources.pipelines import BoundPipeline, BoundStep
from batchctl.tracking.tracker import resolve_tracking_uri
from batchctl.workspace import Workspace, now

PIPELINE = "pipeline"
STEP = "command"


@dataclass
class PipelineRequest:
    bound: BoundPipeline
    job_name: str | None = None
    display_name: str | None = None
    experiment_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    endpoint: str | None = None
    deployment: str | None = None
    output_paths: dict[str, str] = field(default_factory=dict)  # parent output name -> where it is published
    env_manager: str | None = None
    env_strict: bool = False
    env_constraints: list[str] = field(default_factory=list)
    force_rerun: bool = False
    tracking_uri: str | None = None  # --tracking-uri (else MLFLOW_TRACKING_URI, else the workspace's settings)


def capacity(compute: dict[str, Any]) -> int:
    """Steps running at once: the compute's workers (max_workers, else its instances), else the CPUs here."""
    for key in ("max_workers", "max_instances"):
        if compute.get(key):
            return max(1, int(compute[key]))
    return max(1, os.cpu_count() or 1)


def placeholder_settings(workers: int) -> JobSettings:
    # a pipeline has no mini-batches: the record keeps the job shape, with its parallelism as `workers`
    return JobSettings(
        mini_batch_size=1,
        instance_count=1,
        max_concurrency_per_instance=workers,
        workers=workers,
        output_action="summary_only",
        output_file_name=None,
        retry_settings=JobRetry(max_retries=0, timeout=1),
        error_threshold=-1,
        logging_level="info",
    )


def snapshot() -> DeploymentSnapshot:
    return DeploymentSnapshot(model_dir="", model_path="", model_type=PIPELINE)


def step_environment_plan(
    ws: Workspace, env: dict[str, Any] | None, manager: str | None, strict: bool, constraints: list[str]
) -> dict[str, Any] | None:
    """A step's environment record (resources/pipelines) with the job's choices laid over it, as a model
    job's: `--env-manager` (else the workspace's setting, else auto), `--env-strict`, `--env-constraint`."""
    from batchctl.envs.manage import check_manager
    from batchctl.errors import EnvironmentBuildError

    if env is None:
        return None
    if manager is not None:
        check_manager(manager, "--env-manager")
    chosen = manager or job_env.workspace_manager(ws) or "auto"
    planned = job_env.override({**env, "manager": chosen, "strict": strict}, None, False, constraints)
    skipped = job_env.spec_of(planned).skipped
    if strict and skipped and chosen != "local":
        raise EnvironmentBuildError(
            "--env-strict: the environment would need " + "; ".join(c.line() for c in skipped),
            "drop --env-strict to skip them, or list the packages under pip: in the conda file",
        )
    return planned


def plan_environments(ws: Workspace, request: PipelineRequest) -> dict[str, dict[str, Any] | None]:
    return {
        step.name: step_environment_plan(
            ws, step.environment, request.env_manager, request.env_strict, request.env_constraints
        )
        for step in request.bound.steps
    }


def default_output(request: PipelineRequest, name: str, output: str) -> str:
    """Azure's default for a pipeline output: the default datastore, under <endpoint or azureml>/<job>/<output>/."""
    datastore = request.bound.settings.default_datastore or "workspaceblobstore"
    datastore = datastore.removeprefix("azureml:")
    return f"{DATASTORE_PREFIX}{datastore}/paths/{request.endpoint or 'azureml'}/{name}/{output}/"


def resolve_outputs(ws: Workspace, request: PipelineRequest, name: str) -> dict[str, dict[str, Any]]:
    out = {}
    for output, bound in request.bound.outputs.items():
        value = request.output_paths.get(output) or default_output(request, name, output)
        loc = resolve_location(ws, value)
        storage.check_output_folder(loc)
        if storage.list_files(loc):
            raise OutputExistsError(
                f"output '{output}': folder {loc.url} is not empty; batchctl never overwrites outputs",
                f"choose another path: --set outputs.{output}.path=<folder>",
            )
        storage.probe_write(loc)
        out[output] = {"type": bound.type, "path": value, "url": loc.url, "protocol": loc.protocol}
    return out


def queue_pipeline(ws: Workspace, request: PipelineRequest, dry_run: bool = False) -> dict[str, Any]:
    bound = request.bound
    if request.force_rerun and not bound.settings.force_rerun:
        bound = dataclasses.replace(bound, settings=dataclasses.replace(bound.settings, force_rerun=True))
    compute_name = (bound.settings.default_compute or "local").removeprefix("azureml:")
    compute = get_compute(ws, compute_name)
    workers = capacity(compute.dump())
    name = request.job_name or str(uuid.uuid4())
    outputs = resolve_outputs(ws, request, name)
    environments = plan_environments(ws, request)
    tracking_uri = resolve_tracking_uri(ws, request.tracking_uri)
    steps = [
        {
            "name": step.name,
            "job": child_name(name, step.name),
            "status": JobState.QUEUED.value,
            "component": f"{step.component_name}:{step.component_version}",
            "depends_on": sorted(depends_on(step)),
            "environment": environments[step.name],
        }
        for step in bound.steps
    ]
    folder_loc = ws.jobs_dir / name / "outputs"
    first = next(iter(outputs.values()), None)
    location = (
        LocationRecord(url=first["url"], protocol=first["protocol"])
        if first
        else LocationRecord(url=str(folder_loc), protocol="file")
    )
    record = JobRecord(
        name=name,
        display_name=request.display_name or bound.name,
        type=PIPELINE,
        experiment_name=request.experiment_name or request.endpoint or bound.name,
        status=JobState.QUEUED,
        endpoint_name=request.endpoint or "",
        deployment_name=request.deployment or "",
        model="",
        compute=compute_name,
        compute_type="local",
        inputs=dict(bound.inputs),
        outputs={k: {"type": v["type"], "path": v["path"]} for k, v in outputs.items()},
        output_location=location,
        settings=placeholder_settings(workers),
        created_at=now(),
        runner=records.runner_identity(),
        tags=request.tags,
        description=request.description,
        deployment_snapshot=snapshot(),
        tracking={"uri": tracking_uri} if tracking_uri else None,
        pipeline={
            "source": bound.source,
            "component": bound.name,
            "settings": dataclasses.asdict(bound.settings),
            "outputs": outputs,
            "steps": steps,
        },
    )
    if dry_run:
        return {"dry_run": True, **record.public()}
    with records.creating_job_dir(ws, name) as folder:
        (folder / "logs").mkdir()
        frozen.write(folder, bound)
        record.log_dir = str(folder / "logs")
        records.write(folder, record)
    return record.public()


def depends_on(step: BoundStep) -> set[str]:
    """The steps whose outputs this one reads, and those it names in depends_on."""
    found = {i.step for i in step.inputs.values() if i.kind == "step_output" and i.step}
    return found | set(step.depends_on)
