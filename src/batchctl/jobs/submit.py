"""Submitting a job (`endpoint invoke`, `job create`, `job rerun`): resolve the settings, resolve the
input and output (both checked before any work), then queue the job (job.json + plan.json)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl import storage
from batchctl.errors import OutputExistsError, SpecError
from batchctl.fsutil import atomic_write_json
from batchctl.jobs import environment as job_env
from batchctl.jobs import records
from batchctl.jobs.model import DeploymentSnapshot, JobCounts, JobPlan, JobRecord, JobSettings, JobState, LocationRecord
from batchctl.notices import notify
from batchctl.resources.computes import get_compute
from batchctl.resources.deployments import resolve_deployment
from batchctl.resources.locations import default_output, resolve_input, resolve_location
from batchctl.resources.models import resolve_model_ref
from batchctl.resources.records import ComputeRecord, DeploymentRecord, EndpointRecord
from batchctl.specs import load as spec_load
from batchctl.specs.job import InvocationSpec, RunOverrides
from batchctl.tracking.tracker import resolve_tracking_uri
from batchctl.workspace import Workspace, now

if TYPE_CHECKING:
    from batchctl.storage.inputs import InputListing


@dataclass
class JobRequest:
    """A job as a front end asks for it, typed: every field is still unchecked against the workspace."""

    endpoint: str
    input: str
    deployment: str | None = None
    input_type: str | None = None
    output_path: str | None = None
    job_name: str | None = None
    experiment_name: str | None = None
    overrides: RunOverrides = field(default_factory=RunOverrides)
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    files_subset: list[str] | None = None  # rerun: only these files of the input folder
    rerun_of: str | None = None
    tracking_uri: str | None = None  # --tracking-uri (else MLFLOW_TRACKING_URI, else the workspace's settings.json)
    log_predictions: bool = False
    # a rerun pins the first job's model version and code snapshot, whatever the deployment uses now
    pinned: tuple[str, DeploymentSnapshot] | None = None
    env_manager: str | None = None  # --env-manager auto|local|uv (else the deployment's, settings.json, auto)
    env_strict: bool = False
    env_constraints: list[str] = field(default_factory=list)


@dataclass
class ResolvedIO:
    listing: InputListing
    files: list[str]
    input_description: str
    output_value: str
    output: storage.Location
    results: storage.Location | None  # the results file (None for summary_only)


def split_sets(overrides: Iterable[str]) -> tuple[RunOverrides, dict[str, str]]:
    """--set for invoke: run overrides plus Azure's inputs.<n>.path/type and outputs.score.path."""
    data: dict[str, Any] = {}
    io_sets: dict[str, str] = {}
    plain = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SpecError(f"--set: '{item}' must look like key=value")
        key = key.strip()
        parts = key.split(".")
        if parts[0] in ("inputs", "outputs") and len(parts) == 3 and parts[2] in ("path", "type"):
            io_sets[key] = value
        else:
            plain.append(f"{key}={value}")
    spec_load.apply_overrides(data, plain)
    return spec_load.validate_data(RunOverrides, data, "--set"), io_sets


def build_request(
    *,
    endpoint: str | None = None,
    deployment: str | None = None,
    input: str | None = None,
    input_type: str | None = None,
    output_path: str | None = None,
    job_name: str | None = None,
    experiment_name: str | None = None,
    mini_batch_size: int | None = None,
    instance_count: int | None = None,
    overrides: Iterable[str] = (),
    file: str | None = None,
    tags: Iterable[str] = (),
    tracking_uri: str | None = None,
    log_predictions: bool = False,
    split: str | None = None,
    keep_columns: str | None = None,
    env_manager: str | None = None,
    env_strict: bool = False,
    env_constraints: Iterable[str] = (),
) -> JobRequest:
    """The command line's words (flags, `--set` strings, an invocation file) as one typed request.
    Precedence: flags > `--set` > the invocation file > the deployment."""
    set_overrides, io_sets = split_sets(overrides)
    flags = spec_load.validate_data(
        RunOverrides,
        {
            "mini_batch_size": mini_batch_size,
            "instance_count": instance_count,
            "split": split,
            "keep_columns": keep_columns,
        },
        "options",
    )
    merged = flags.over(set_overrides)
    file_tags: dict[str, str] = {}
    description = None
    if file is not None:
        inv = spec_load.load_spec("job", InvocationSpec, file)
        endpoint = endpoint or inv.endpoint
        deployment = deployment or inv.deployment
        job_name = job_name or inv.name
        experiment_name = experiment_name or inv.experiment_name
        merged = merged.over(inv.overrides())
        file_tags, description = dict(inv.tags), inv.description
        if inv.inputs and input is None:
            (only,) = inv.inputs.values()
            input, input_type = only.path, input_type or only.type
        if "score" in inv.outputs and inv.outputs["score"].path and output_path is None:
            output_path = inv.outputs["score"].path
    for key, value in io_sets.items():
        section, _, leaf = key.split(".")
        if section == "inputs":
            if leaf == "path":
                input = value
            else:
                input_type = value
        elif leaf == "path":
            output_path = value
    if not endpoint:
        # `job create -f` has no endpoint option (its -n is the job's name): the file names the endpoint
        if file is not None:
            raise SpecError(
                f"{Path(file).name}: no endpoint to invoke: add `endpoint: <endpoint-name>` to the file",
                f"or name it on the command line: `batchctl endpoint invoke -n <endpoint-name> -f {file}`",
            )
        raise SpecError("no endpoint to invoke", "name it: `batchctl endpoint invoke -n <endpoint-name>`")
    if input_type not in (None, "uri_file", "uri_folder"):
        raise SpecError(f"--input-type: '{input_type}' is not supported; use uri_file or uri_folder")
    if input is None:
        raise SpecError("--input is required (a file, folder, URL, datastore path or azureml:<data>@latest)")
    if job_name is not None:
        spec_load.validate_name("job", job_name)
    if experiment_name is not None:
        spec_load.validate_name("job", experiment_name)
    return JobRequest(
        tracking_uri=tracking_uri,
        log_predictions=log_predictions,
        endpoint=endpoint,
        deployment=deployment,
        input=input,
        input_type=input_type,
        output_path=output_path,
        job_name=job_name,
        experiment_name=experiment_name,
        overrides=merged,
        tags={**file_tags, **parse_tags(tags)},
        description=description,
        env_manager=env_manager,
        env_strict=env_strict,
        env_constraints=list(env_constraints),
    )


def parse_tags(pairs: Iterable[str], option: str = "--tags") -> dict[str, str]:
    """`k=v` strings as a dict (a value may hold `=`; the key may not be empty)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"{option}: '{pair}' must look like key=value")
        out[key.strip()] = value
    return out


def resolve_settings(
    ws: Workspace, request: JobRequest
) -> tuple[EndpointRecord, DeploymentRecord, ComputeRecord, JobSettings]:
    """(endpoint, deployment, compute, effective settings)."""
    endpoint, deployment = resolve_deployment(ws, request.endpoint, request.deployment)
    compute = get_compute(ws, deployment.compute)
    return endpoint, deployment, compute, JobSettings.merge(deployment, compute, request.overrides)


def resolve_io(ws: Workspace, request: JobRequest, settings: JobSettings, endpoint: str, name: str) -> ResolvedIO:
    """The input, listed now (a missing or empty input fails before any work), and the output, whose
    results file must not exist yet."""
    in_loc, in_type, description = resolve_input(ws, request.input, request.input_type)
    listing = storage.list_inputs(in_loc, in_type)
    files = sorted(request.files_subset) if request.files_subset is not None else listing.files
    output_value = request.output_path or default_output(endpoint, name)
    output = resolve_location(ws, output_value)
    storage.check_output_folder(output)
    results = output.join(settings.output_file_name) if settings.output_file_name else None
    if results is not None:
        storage.refuse_existing(results)
    elif storage.list_files(output):
        raise OutputExistsError(
            f"output folder {output.url} is not empty; summary_only jobs need a new or empty folder",
            "choose another --output-path",
        )
    check_keep_columns(listing, files, settings.keep_columns)
    storage.probe_write(output)  # a read-only credential fails now, not after the whole job is scored
    return ResolvedIO(listing, files, description, output_value, output, results)


def check_keep_columns(listing: storage.inputs.InputListing, files: list[str], keep: list[str]) -> None:
    """A `--keep-columns` name that is in no local CSV/Parquet input file is a mistake in the option, found
    before the job starts (a file without it would only fail as an item, and `job resume` keeps the job's
    columns). Remote inputs are checked as they are scored."""
    if not keep or not listing.root.is_local:
        return
    missing = set(keep)
    first: tuple[str, list[str]] | None = None
    for rel in files:
        columns = storage.local_columns(listing.root.join(rel).url)
        if columns is None:
            continue
        first = first or (rel, columns)
        missing -= set(columns)
        if not missing:
            return
    if first is None:
        return  # no CSV/Parquet input: scoring says what it finds
    names = ", ".join(repr(c) for c in keep if c in missing)
    shown = ", ".join(first[1][:20]) + (", ..." if len(first[1]) > 20 else "")
    raise SpecError(
        f"--keep-columns: {names} {'is' if len(missing) == 1 else 'are'} in no input file "
        f"(the columns of {first[0]}: {shown})",
        "column names are case-sensitive; name columns the input files have",
    )


def queue(ws: Workspace, request: JobRequest, dry_run: bool = False) -> dict[str, Any]:
    """Check everything, then write the Queued job (or return the plan, with dry_run)."""
    endpoint, deployment, compute, settings = resolve_settings(ws, request)
    name = request.job_name or str(uuid.uuid4())
    io = resolve_io(ws, request, settings, endpoint.name, name)
    batches = -(-len(io.files) // settings.mini_batch_size)
    if request.pinned is not None:
        model_id, snapshot = request.pinned
        model = {"type": snapshot.model_type, "path": snapshot.model_path}
    else:
        model_id = _deployed_model(deployment)
        snapshot, model = snapshot_deployment(ws, deployment)
    tracking_uri = resolve_tracking_uri(ws, request.tracking_uri)
    environment = job_env.plan(
        ws,
        deployment,
        snapshot.model_path,
        snapshot.model_type,
        bool(snapshot.code_dir),
        request.env_manager,
        request.env_strict,
        request.env_constraints,
    )
    record = JobRecord(
        name=name,
        display_name=name,
        experiment_name=request.experiment_name or endpoint.name,
        status=JobState.QUEUED,
        endpoint_name=endpoint.name,
        deployment_name=deployment.name,
        model=model_id,
        compute=deployment.compute,
        compute_type=compute.job_compute_type,
        compute_address=compute.address,
        compute_max_workers=compute.max_workers,
        compute_connect_timeout=compute.connect_timeout,
        inputs={"input_data": {"type": io.listing.input_type, "path": io.input_description}},
        outputs={"score": {"type": "uri_folder", "path": io.output_value}},
        output_location=LocationRecord.of(io.output),
        output_file=io.results.url if io.results else None,
        output_file_location=LocationRecord.of(io.results) if io.results else None,
        settings=settings,
        counts=JobCounts(files=len(io.files), mini_batches=batches),
        created_at=now(),
        # the submitting process owns the Queued job until a runner takes it (start_detached / run_job),
        # so a concurrent `job list` never mistakes a fresh job for one whose runner died
        runner=records.runner_identity(),
        rerun_of=request.rerun_of,
        tags=request.tags,
        description=request.description,
        deployment_snapshot=snapshot,
        tracking={"uri": tracking_uri, "log_predictions": request.log_predictions} if tracking_uri else None,
        environment=environment,
    )
    if environment is None:
        _warn_requirements(model)
    if dry_run:
        return {
            "dry_run": True,
            "name": name,
            "endpoint_name": endpoint.name,
            "deployment_name": deployment.name,
            "input": io.input_description,
            "input_type": io.listing.input_type,
            "files": len(io.files),
            "first_files": io.files[:5],
            "mini_batches": batches,
            "workers": settings.workers,
            "output_path": io.output.url,
            "output_file": record.output_file,
            "settings": settings.model_dump(mode="json"),
            "tags": record.tags,
            "tracking_uri": tracking_uri,
            "environment": environment,
        }
    plan = JobPlan(
        root_url=io.listing.root.url,
        root_protocol=io.listing.root.protocol,
        input_type=io.listing.input_type,
        files=io.files,
    )
    with records.creating_job_dir(ws, name) as folder:
        (folder / "logs").mkdir()
        atomic_write_json(folder / "plan.json", plan.model_dump(mode="json"))
        record.log_dir = str(folder / "logs")
        records.write(folder, record)
    return record.public()


def _deployed_model(deployment: DeploymentRecord) -> str:
    if deployment.model is None:
        raise SpecError(f"deployment '{deployment.name}' of type {deployment.type} has no model to score with")
    return deployment.model


def snapshot_deployment(ws: Workspace, deployment: DeploymentRecord) -> tuple[DeploymentSnapshot, dict[str, Any]]:
    """What a job scores with, frozen now: the model version's and the code snapshot's folders."""
    model = resolve_model_ref(ws, _deployed_model(deployment))
    code = deployment.code_configuration
    snapshot = DeploymentSnapshot(
        model_dir=model["model_dir"],
        model_path=model["path"],
        model_type=model["type"],
        code_dir=code.code if code else None,
        scoring_script=code.scoring_script if code else None,
        environment_variables=deployment.settings.environment_variables,
        spec_hash=deployment.spec_hash,
        model_hash=model.get("content_hash"),
    )
    return snapshot, model


_warned: set[str] = set()


def _warn_requirements(model: dict[str, Any]) -> None:
    """Warn once when an MLflow model's recorded requirements are not what this interpreter has."""
    if model.get("type") != "mlflow_model" or model["path"] in _warned:
        return
    _warned.add(model["path"])
    req = Path(model["path"]) / "requirements.txt"
    if not req.is_file():
        return
    from importlib import metadata

    mismatches = []
    for line in req.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" not in line or line.startswith("-"):
            continue
        pkg, _, wanted = line.partition("==")
        pkg = pkg.split("[")[0].strip()
        try:
            have = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            have = "not installed"
        if have != wanted.strip():
            mismatches.append(f"{pkg}=={wanted.strip()} (installed: {have})")
    if mismatches:
        shown = ", ".join(mismatches[:4]) + (f" and {len(mismatches) - 4} more" if len(mismatches) > 4 else "")
        notify(f"the model was saved with {shown}; jobs run in the current interpreter")
