"""Submitting jobs (`endpoint invoke`, `job create`, `job rerun`) and the job commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field

from batchctl import api, storage
from batchctl.errors import BatchctlError, NotFoundError, SpecError, StorageError
from batchctl.jobs import records
from batchctl.jobs.runner import CANCEL_MARKER
from batchctl.specs import load as spec_load
from batchctl.specs._base import StrictModel
from batchctl.specs.deployment import check_file_name
from batchctl.specs.job import InvocationSpec
from batchctl.workspace import Workspace, now

DATASTORE_PREFIX = "azureml://datastores/"


class _JobOverrides(StrictModel):
    mini_batch_size: int | None = Field(None, gt=0)
    instance_count: int | None = Field(None, ge=1)
    error_threshold: int | None = Field(None, ge=-1)
    output_file_name: str | None = None
    retry_settings: dict[str, Any] | None = None

    def file_name(self) -> str | None:
        if self.output_file_name is None:
            return None
        try:
            return check_file_name(self.output_file_name)
        except ValueError as exc:  # a user's bad value: exit 3 with the field named, not "unexpected ValueError"
            raise SpecError(f"--set: output_file_name: {exc}") from None


class _RetryOverrides(StrictModel):
    max_retries: int | None = Field(None, ge=0)
    timeout: int | None = Field(None, gt=0, le=259200)


# ------------------------------------------------------------------------------------ locations


def resolve_datastore_path(ws: Workspace, url: str) -> storage.Location:
    """azureml://datastores/<name>/paths/<path> -> a concrete location."""
    rest = url[len(DATASTORE_PREFIX) :]
    name, sep, path = rest.partition("/paths/")
    if not sep:
        name, _, path = rest.partition("/")
        if path and not path.startswith("paths"):
            raise SpecError(f"'{url}' must look like azureml://datastores/<name>/paths/<path>")
        path = path[len("paths") :].lstrip("/")
    datastore = api.get_datastore(ws, name)
    path = path.strip("/")
    segments = [s for s in path.split("/") if s]
    if any(s in ("..", ".") for s in segments) or "\x00" in path:
        raise SpecError(f"'{url}': datastore paths may not contain '.' or '..' segments")
    kind = datastore["type"]
    if kind == "local":
        base = Path(datastore["path"])
        target = (base / path) if path else base
        resolved = os.path.abspath(target)
        if os.path.commonpath([os.path.abspath(base), resolved]) != os.path.abspath(base):
            raise SpecError(f"'{url}' leaves datastore '{name}'")
        return storage.Location(resolved, "file")
    # azure_blob / azure_data_lake_gen2: the datastore's own account and endpoint (docs/storage.md),
    # written as the blob URL so that a worker process can rebuild it from the job plan alone.
    container = datastore.get("container_name") or datastore.get("filesystem")
    base = storage.account_url(
        datastore["account_name"],
        datastore.get("endpoint") or "core.windows.net",
        datastore.get("protocol") or "https",
    )
    protocol = "abfs" if kind == "azure_data_lake_gen2" else "az"
    url = "/".join(p for p in (base, container, path) if p)
    storage.check_remote_path(url)
    return storage.Location(url, protocol)


def resolve_location(ws: Workspace, value: str) -> storage.Location:
    if value.startswith(DATASTORE_PREFIX):
        return resolve_datastore_path(ws, value)
    if value.startswith("azureml:"):
        raise SpecError(f"'{value}' is a data asset reference, not a path")
    return storage.location(value)


def resolve_input(ws: Workspace, value: str, input_type: str | None) -> tuple[storage.Location, str | None, str]:
    """(location, type or None to probe, description) for --input."""
    if not value:
        raise SpecError("Input path can't be empty for batch endpoint invoke")
    if value.startswith("azureml:") and not value.startswith("azureml://"):
        asset = api.resolve_data_ref(ws, value)
        loc = resolve_location(ws, asset["path"])
        return loc, input_type or asset["type"], f"{asset['id']} ({asset['path']})"
    return resolve_location(ws, value), input_type, value


# ------------------------------------------------------------------------------------ submit


def _deployment_for(ws: Workspace, endpoint: str, deployment: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    state = ws.store.read()
    ep = api.get_endpoint(ws, endpoint, state)
    if deployment is None:
        deployment = ep["defaults"].get("deployment_name")
        if not deployment:
            raise NotFoundError(api.routing_error_message(ep["name"]))
    dep = api.get_deployment(ws, deployment, ep["name"], state)
    return ep, dep


def _parse_invoke_sets(overrides: Iterable[str]) -> tuple[dict[str, Any], dict[str, str]]:
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
    parsed = spec_load.validate_data(_JobOverrides, data, "--set")
    if parsed.retry_settings is not None:
        spec_load.validate_data(_RetryOverrides, parsed.retry_settings, "--set retry_settings")
    parsed.file_name()
    return parsed.model_dump(exclude_none=True), io_sets


def submit(
    ws: Workspace,
    endpoint: str | None,
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
    dry_run: bool = False,
    files_subset: list[str] | None = None,
    rerun_of: str | None = None,
) -> dict[str, Any]:
    """Check everything, write the Queued job record and plan; returns the record (or the plan on dry-run)."""
    run_sets, io_sets = _parse_invoke_sets(overrides)
    inv: InvocationSpec | None = None
    if file is not None:
        inv = spec_load.load_spec("job", InvocationSpec, file)
        endpoint = endpoint or inv.endpoint
        deployment = deployment or inv.deployment
        job_name = job_name or inv.name
        experiment_name = experiment_name or inv.experiment_name
        for key in ("mini_batch_size", "instance_count", "error_threshold", "output_file_name"):
            value = getattr(inv, key)
            if value is not None:
                run_sets.setdefault(key, value)
        if inv.retry_settings is not None:
            merged = inv.retry_settings.model_dump(exclude_none=True)
            merged.update(run_sets.get("retry_settings") or {})
            run_sets["retry_settings"] = merged
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
        raise SpecError("name the endpoint with --name/-n (or `endpoint:` in the invocation file)")
    if input_type not in (None, "uri_file", "uri_folder"):
        raise SpecError(f"--input-type: '{input_type}' is not supported; use uri_file or uri_folder")
    if input is None:
        raise SpecError("--input is required (a file, folder, URL, datastore path or azureml:<data>@latest)")
    if job_name is not None:
        spec_load.validate_name("job", job_name)
    if experiment_name is not None:
        spec_load.validate_name("job", experiment_name)
    ep, dep = _deployment_for(ws, endpoint, deployment)
    name = job_name or str(uuid.uuid4())

    # effective settings: deployment settings + per-job overrides (Azure's overridable set)
    dset = dep["settings"]
    retry = dict(dset["retry_settings"])
    retry.update(run_sets.get("retry_settings") or {})
    output_action = dset["output_action"]
    output_file_name = run_sets.get("output_file_name", dset.get("output_file_name"))
    if output_action == "summary_only":
        if "output_file_name" in run_sets:
            raise SpecError("When output_action is set to summary_only, the output_file_name need not to be specified.")
        output_file_name = None
    else:
        output_file_name = output_file_name or "predictions.csv"
    mbs = mini_batch_size or run_sets.get("mini_batch_size") or dset["mini_batch_size"]
    if mbs < 1:
        raise SpecError("--mini-batch-size must be at least 1")
    instances = instance_count or run_sets.get("instance_count") or dep["resources"]["instance_count"]
    if instances < 1:
        raise SpecError("--instance-count must be at least 1")
    compute = api.get_compute(ws, dep["compute"])
    workers = instances * dset["max_concurrency_per_instance"]
    if compute.get("max_workers"):
        workers = min(workers, int(compute["max_workers"]))
    settings = {
        "mini_batch_size": mbs,
        "instance_count": instances,
        "max_concurrency_per_instance": dset["max_concurrency_per_instance"],
        "workers": workers,
        "output_action": output_action,
        "output_file_name": output_file_name,
        "retry_settings": retry,
        "error_threshold": run_sets.get("error_threshold", dset["error_threshold"]),
        "logging_level": dset["logging_level"],
    }

    # input: listed now, so a missing or empty input fails before any work
    in_loc, in_type, in_desc = resolve_input(ws, input, input_type)
    listing = storage.list_inputs(in_loc, in_type)
    files = listing.files
    if files_subset is not None:
        files = sorted(files_subset)

    # output: the results file must not exist yet
    out_value = output_path or f"{DATASTORE_PREFIX}workspaceblobstore/paths/{ep['name']}/{name}/"
    out_loc = resolve_location(ws, out_value)
    results_loc = out_loc.join(output_file_name) if output_file_name else None
    if results_loc is not None:
        storage.refuse_existing(results_loc)
    elif storage.list_files(out_loc):
        raise StorageError(
            f"output folder {out_loc.url} is not empty; summary_only jobs need a new or empty folder",
            "choose another --output-path",
        )
    batches = -(-len(files) // mbs)
    model = api.resolve_model_ref(ws, dep["model"])
    cc = dep.get("code_configuration") or {}
    record: dict[str, Any] = {
        "name": name,
        "display_name": name,
        "type": "batch_scoring",
        "experiment_name": experiment_name or ep["name"],
        "status": records.QUEUED,
        "endpoint_name": ep["name"],
        "deployment_name": dep["name"],
        "model": dep["model"],
        "compute": dep["compute"],
        "compute_type": compute["type"] if compute["type"] != "amlcompute" else "local",
        "compute_address": compute.get("address"),
        "compute_max_workers": compute.get("max_workers"),
        "inputs": {"input_data": {"type": listing.input_type, "path": in_desc}},
        "outputs": {"score": {"type": "uri_folder", "path": out_value}},
        "output_location": storage.location_record(out_loc),
        "output_file": results_loc.url if results_loc else None,
        "output_file_location": storage.location_record(results_loc) if results_loc else None,
        "settings": settings,
        "counts": {
            "files": len(files),
            "mini_batches": batches,
            "mini_batches_completed": 0,
            "mini_batches_failed": 0,
            "items_succeeded": 0,
            "items_failed": 0,
            "retries": 0,
            "worker_restarts": 0,
        },
        "created_at": now(),
        "start_time": None,
        "end_time": None,
        "duration_seconds": None,
        "error": None,
        # the submitting process owns the Queued job until a runner takes it (start_detached / run_job),
        # so a concurrent `job list` never mistakes a fresh job for one whose runner died
        "runner": records.runner_identity(),
        "rerun_of": rerun_of,
        "tags": dict(inv.tags) if inv else {},
        "description": inv.description if inv else None,
        "deployment_snapshot": {
            "model_dir": model["model_dir"],
            "model_path": model["path"],
            "model_type": model["type"],
            "code_dir": cc.get("code"),
            "scoring_script": cc.get("scoring_script"),
            "environment_variables": dset.get("environment_variables") or {},
        },
    }
    _warn_requirements(model)
    if dry_run:
        return {
            "dry_run": True,
            "name": name,
            "endpoint_name": ep["name"],
            "deployment_name": dep["name"],
            "input": in_desc,
            "input_type": listing.input_type,
            "files": len(files),
            "first_files": files[:5],
            "mini_batches": batches,
            "workers": workers,
            "output_path": out_loc.url,
            "output_file": record["output_file"],
            "settings": settings,
        }
    folder = records.create_job_dir(ws, name)
    (folder / "logs").mkdir()
    from batchctl.fsutil import atomic_write_json

    atomic_write_json(
        folder / "plan.json",
        {
            "root_url": listing.root.url,
            "root_protocol": listing.root.protocol,
            "input_type": listing.input_type,
            "files": files,
        },
    )
    records.write(folder, {**record, "log_dir": str(folder / "logs")})
    return records.read_raw(folder) or record


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
        sys.stderr.write(f"Warning: the model was saved with {shown}; jobs run in the current interpreter\n")


# ------------------------------------------------------------------------------------ run / commands


def start_detached(ws: Workspace, name: str) -> dict[str, Any]:
    """Hand a Queued job to a detached runner process and return at once."""
    folder = records.job_dir(ws, name)
    log = open(folder / "logs" / "runner.txt", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "batchctl.jobs.detached", str(ws.root), name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    with records.job_lock(folder):
        record = records.read_raw(folder) or {}
        owner = (record.get("runner") or {}).get("pid")
        if record.get("status") == records.QUEUED and owner in (None, os.getpid()):
            record["runner"] = records.runner_identity(proc.pid)
            records.write(folder, record)
    return records.read_raw(folder) or record


def get_job(ws: Workspace, name: str) -> dict[str, Any]:
    return records.load(ws, name)


def list_jobs(
    ws: Workspace, endpoint: str | None = None, deployment: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    if endpoint is not None:
        endpoint = spec_load.validate_name("endpoint", endpoint)
    if deployment is not None:  # a filter only, but checked like every name (an empty one would match all)
        spec_load.validate_name("deployment", deployment)
    if status is not None:
        wanted = {s.lower(): s for s in records.STATES}
        if status.lower() not in wanted:
            raise SpecError(f"--status: '{status}' is not one of {', '.join(records.STATES)}")
        status = wanted[status.lower()]
    out = []
    for record in records.list_all(ws):
        if endpoint and record.get("endpoint_name") != endpoint:
            continue
        if deployment is not None and record.get("deployment_name") != deployment:
            continue
        if status and record.get("status") != status:
            continue
        out.append(record)
    return out


def cancel_job(ws: Workspace, name: str, wait_seconds: float = 60.0) -> dict[str, Any]:
    folder = records.job_dir(ws, name)
    record = records.load(ws, name)
    if record["status"] in records.TERMINAL:
        return record
    (folder / CANCEL_MARKER).touch()
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        record = records.load(ws, name)
        if record["status"] in records.TERMINAL:
            return record
        if record["status"] == records.QUEUED and not records.runner_alive(record.get("runner")):
            return records.update(folder, status=records.CANCELED, error={"message": "job canceled"})
        time.sleep(0.1)
    raise BatchctlError(f"job '{name}' did not stop within {wait_seconds:g} seconds; cancel was requested")


def download_job(
    ws: Workspace, name: str, output_name: str = "score", download_path: str | None = None
) -> dict[str, Any]:
    record = records.load(ws, name)
    if output_name != "score":
        raise NotFoundError(f"job '{name}' has no output named '{output_name}'; batch jobs have one output: score")
    if record["status"] != records.COMPLETED:
        raise BatchctlError(f"job '{name}' is {record['status']}; only Completed jobs have outputs to download")
    dest = Path(download_path or ".").absolute() / "named-outputs" / "score"
    folder = storage.location_from_record(record["output_location"])
    if record.get("output_file"):
        names = [record["settings"]["output_file_name"]]
    else:
        names = storage.list_files(folder)
    copied = []
    for rel in names:
        target = dest / rel
        storage.download(folder.join(*rel.split("/")), str(target))
        copied.append(str(target))
    return {"name": name, "output_name": "score", "download_path": str(dest), "files": copied}


def rerun_failed(
    ws: Workspace,
    name: str,
    output_path: str | None = None,
    job_name: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """A new job that scores only the items that failed in job `name`."""
    if job_name is not None:  # the new name is checked first, like every name, before anything is read
        spec_load.validate_name("job", job_name)
    record = records.load(ws, name)
    if record["status"] not in records.TERMINAL:
        raise BatchctlError(f"job '{name}' is {record['status']}; rerun it once it has ended")
    folder = records.job_dir(ws, name)
    plan = json.loads((folder / "plan.json").read_text())
    mbs = record["settings"]["mini_batch_size"]
    failed_in_batch: dict[int, set[str]] = {}
    failed_log = folder / "failed_items.jsonl"
    if failed_log.is_file():
        for line in failed_log.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                failed_in_batch.setdefault(entry["batch"], set()).add(entry["file"])
    done: set[str] = set()
    batches_log = folder / "batches.jsonl"
    if batches_log.is_file():
        for line in batches_log.read_text().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            files = set(plan["files"][entry["batch"] * mbs : (entry["batch"] + 1) * mbs])
            if not entry["ok"]:
                continue
            known = failed_in_batch.get(entry["batch"], set())
            if entry["failed"] == 0:
                done |= files
            elif len(known) == entry["failed"]:
                done |= files - known
            # else run() returned fewer rows than files: which ones failed is unknown, rerun them all
    failed = [f for f in plan["files"] if f not in done]
    if not failed:
        raise BatchctlError(f"job '{name}' has no failed items to rerun")
    root = plan["root_url"]
    if plan["input_type"] == "uri_file":  # the plan's root is the file's folder: rerun the file itself
        root = storage.Location(plan["root_url"], plan["root_protocol"]).join(plan["files"][0]).url
    settings = record["settings"]
    overrides = [
        f"error_threshold={settings['error_threshold']}",
        f"retry_settings.max_retries={settings['retry_settings']['max_retries']}",
        f"retry_settings.timeout={settings['retry_settings']['timeout']}",
    ]
    if settings.get("output_file_name") and settings["output_action"] == "append_row":
        overrides.append(f"output_file_name={settings['output_file_name']}")
    return submit(
        ws,
        record["endpoint_name"],
        record["deployment_name"],
        input=root,
        input_type="uri_folder" if plan["input_type"] == "uri_folder" else "uri_file",
        output_path=output_path,
        job_name=job_name,
        experiment_name=record.get("experiment_name"),
        mini_batch_size=settings["mini_batch_size"],
        instance_count=settings["instance_count"],
        overrides=overrides,
        dry_run=dry_run,
        files_subset=failed if plan["input_type"] == "uri_folder" else None,
        rerun_of=name,
    )
