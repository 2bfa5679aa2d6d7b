"""Submitting a job (`endpoint invoke`, `job create`, `job rerun`, REST, the Studio): a typed request
(jobs/request.JobRequest) is checked, its settings resolved, its input and output resolved (both checked
before any work), then the job is queued (job.json + plan.jsonl: the input's listing, whole for up to
STREAM_AT files, else its first files; the runner lists the rest while scoring)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.errors import OutputExistsError, SpecError, StorageError
from batchctl.jobs import environment as job_env
from batchctl.jobs import plan as plan_io
from batchctl.jobs import records
from batchctl.jobs.model import DeploymentSnapshot, JobCounts, JobRecord, JobSettings, JobState, LocationRecord
from batchctl.jobs.request import JobRequest
from batchctl.notices import notify
from batchctl.resources.computes import get_compute
from batchctl.resources.deployments import resolve_deployment
from batchctl.resources.locations import default_output, resolve_input, resolve_location
from batchctl.resources.models import resolve_model_ref
from batchctl.resources.records import ComputeRecord, DeploymentRecord, EndpointRecord
from batchctl.tracking.tracker import resolve_tracking_uri
from batchctl.workspace import Workspace, now


@dataclass
class ResolvedIO:
    listing: storage.ListingStream
    head: list[storage.Entry]  # the first entries (all of them when `complete`)
    complete: bool  # the whole listing is in `head`; else the runner lists the rest while scoring
    input_description: str
    output_value: str
    output: storage.Location
    results: storage.Location | None  # the results file (None for summary_only)


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
    listing = storage.open_listing(in_loc, in_type)
    if request.files_subset is not None:
        head, complete = storage.entries_of(listing.root, sorted(request.files_subset)), True
    else:
        # a big input is not listed whole here: the first files show that it has some, and its runner
        # lists the rest while the first mini-batches are scored
        head = list(itertools.islice(listing.entries, plan_io.STREAM_AT + 1))
        complete = len(head) <= plan_io.STREAM_AT
        del head[plan_io.STREAM_AT :]
        if not head:
            raise StorageError(f"input folder '{in_loc.url}' has no files to score")
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
    check_keep_columns(listing, [entry[0] for entry in head], settings.keep_columns)
    storage.probe_write(output)  # a read-only credential fails now, not after the whole job is scored
    return ResolvedIO(listing, head, complete, description, output_value, output, results)


def check_keep_columns(listing: storage.ListingStream, files: list[str], keep: list[str]) -> None:
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
    """Check everything against the workspace, then write the Queued job (or return the plan, with dry_run)."""
    endpoint, deployment, compute, settings = resolve_settings(ws, request)
    name = request.job_name or str(uuid.uuid4())
    io = resolve_io(ws, request, settings, endpoint.name, name)
    n_files = len(io.head)
    if dry_run and not io.complete:  # counted to the end, one entry at a time (nothing kept)
        n_files += 1 + sum(1 for _ in io.listing.entries)  # the entry that showed the listing goes on, the rest
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
        ray=compute.job_compute_type == "ray",
    )
    record = JobRecord(
        **_record_fields(request, endpoint, deployment, compute, io),
        name=name,
        display_name=name,
        model=model_id,
        settings=settings,
        counts=JobCounts(files=n_files, mini_batches=-(-n_files // settings.mini_batch_size), listing=not io.complete),
        created_at=now(),
        # the submitting process owns the Queued job until a runner takes it (start_detached / run_job),
        # so a concurrent `job list` never mistakes a fresh job for one whose runner died
        runner=records.runner_identity(),
        deployment_snapshot=snapshot,
        tracking={"uri": tracking_uri, "log_predictions": request.log_predictions} if tracking_uri else None,
        environment=environment,
    )
    if environment is None:
        _warn_requirements(model)
    if dry_run:
        return _dry_run_plan(record, io)
    return _write(ws, record, io)


def _record_fields(
    request: JobRequest, endpoint: EndpointRecord, deployment: DeploymentRecord, compute: ComputeRecord, io: ResolvedIO
) -> dict[str, Any]:
    """The parts of the job record that the request, the deployment, its compute and the IO decide."""
    return {
        "experiment_name": request.experiment_name or endpoint.name,
        "status": JobState.QUEUED,
        "endpoint_name": endpoint.name,
        "deployment_name": deployment.name,
        "compute": deployment.compute,
        "compute_type": compute.job_compute_type,
        "compute_address": compute.address,
        "compute_max_workers": compute.max_workers,
        "compute_connect_timeout": compute.connect_timeout,
        "inputs": {"input_data": {"type": io.listing.input_type, "path": io.input_description}},
        "outputs": {"score": {"type": "uri_folder", "path": io.output_value}},
        "output_location": LocationRecord.of(io.output),
        "output_file": io.results.url if io.results else None,
        "output_file_location": LocationRecord.of(io.results) if io.results else None,
        "rerun_of": request.rerun_of,
        "tags": request.tags,
        "description": request.description,
    }


def _dry_run_plan(record: JobRecord, io: ResolvedIO) -> dict[str, Any]:
    """What `--dry-run` prints: the job that would be queued, with its first files."""
    return {
        "dry_run": True,
        "name": record.name,
        "endpoint_name": record.endpoint_name,
        "deployment_name": record.deployment_name,
        "input": io.input_description,
        "input_type": io.listing.input_type,
        "files": record.counts.files,
        "first_files": [entry[0] for entry in io.head[:5]],
        "mini_batches": record.counts.mini_batches,
        "workers": record.settings.workers,
        "output_path": io.output.url,
        "output_file": record.output_file,
        "settings": record.settings.model_dump(mode="json"),
        "tags": record.tags,
        "tracking_uri": record.tracking["uri"] if record.tracking else None,
        "environment": record.environment,
    }


def _write(ws: Workspace, record: JobRecord, io: ResolvedIO) -> dict[str, Any]:
    """The job's folder, written whole or not at all: logs/, plan.jsonl, job.json (Queued)."""
    header = plan_io.PlanHeader(io.listing.root.url, io.listing.root.protocol, io.listing.input_type, io.listing.basis)
    with records.creating_job_dir(ws, record.name) as folder:
        (folder / "logs").mkdir()
        writer = plan_io.PlanWriter(folder, header)
        try:
            writer.add(io.head)
            if io.complete:
                writer.end()
        finally:
            writer.close()
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
