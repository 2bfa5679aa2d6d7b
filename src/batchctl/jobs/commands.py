"""The job commands: start a detached runner, show, list, cancel, download, rerun, read the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.errors import (
    BatchctlError,
    ConflictError,
    InvalidStateError,
    NotFoundError,
    OutputExistsError,
    SpecError,
)
from batchctl.jobs import environment as job_env
from batchctl.jobs import plan as plan_io
from batchctl.jobs import records
from batchctl.jobs.model import JobRecord, JobSettings, JobState, LocationRecord, job_error
from batchctl.jobs.records import CANCEL_MARKER
from batchctl.specs import load as spec_load
from batchctl.specs.job import RunOverrides
from batchctl.workspace import Workspace


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
        record = records.read(folder)
        assert record is not None
        owner = (record.runner or {}).get("pid")
        if record.status is JobState.QUEUED and owner in (None, os.getpid()):
            record.runner = records.runner_identity(proc.pid)
            records.write(folder, record)
    return record.public()


def get_job(ws: Workspace, name: str) -> dict[str, Any]:
    return records.load(ws, name).public()


def list_jobs(
    ws: Workspace,
    endpoint: str | None = None,
    deployment: str | None = None,
    status: str | None = None,
    tags: dict[str, str] | None = None,
    *,
    max_results: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first (as `az ml job list`), at most `max_results`. A pipeline's step jobs are not listed
    (as on Azure): `job list --parent-job-name` lists them."""
    if max_results is not None and max_results < 1:
        raise SpecError(f"--max-results must be 1 or more, not {max_results}")
    if endpoint is not None:
        endpoint = spec_load.validate_name("endpoint", endpoint)
    if deployment is not None:  # a filter only, but checked like every name (an empty one would match all)
        spec_load.validate_name("deployment", deployment)
    wanted = JobState.parse(status) if status is not None else None
    out = []
    for record in sorted(records.list_all(ws), key=lambda r: (r.created_at, r.name), reverse=True):
        if record.parent_job_name:
            continue
        if endpoint and record.endpoint_name != endpoint:
            continue
        if deployment is not None and record.deployment_name != deployment:
            continue
        if wanted and record.status is not wanted:
            continue
        if tags and any(record.tags.get(k) != v for k, v in tags.items()):
            continue
        out.append(record.public())
        if max_results is not None and len(out) >= max_results:
            break
    return out


def cancel_job(ws: Workspace, name: str, wait_seconds: float = 60.0) -> dict[str, Any]:
    folder = records.job_dir(ws, name)
    record = records.load(ws, name)
    if record.status.terminal:
        return record.public()
    (folder / CANCEL_MARKER).touch()
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        record = records.load(ws, name)
        if record.status.terminal:
            return record.public()
        owner = (record.runner or {}).get("pid")
        if record.status is JobState.QUEUED and (owner == os.getpid() or not records.runner_alive(record.runner)):
            try:
                return records.update(folder, JobState.CANCELED, error=job_error("job canceled")).public()
            except InvalidStateError:
                continue  # a runner took it (or it ended) meanwhile: read it again
        time.sleep(0.1)
    raise BatchctlError(f"job '{name}' did not stop within {wait_seconds:g} seconds; cancel was requested")


def referenced_variables(ws: Workspace, name: str) -> list[str]:
    """The `${env:NAME}` names in the job's deployment snapshot, sorted (the values are never recorded)."""
    from batchctl import secrets

    record = records.load(ws, name)
    values = record.deployment_snapshot.environment_variables.values()
    return sorted({n for value in values for n in secrets.references(value)})


def adopt_job(ws: Workspace, name: str, runner_pid: int | None = None) -> dict[str, Any]:
    """Make this process the runner of a Queued job (a server taking over a job the CLI submitted)."""
    folder = records.job_dir(ws, name)
    if records.read(folder) is None:
        raise NotFoundError(f"job '{name}' not found", "list jobs with `batchctl job list`")
    with records.job_lock(folder):
        record = records.read(folder)
        assert record is not None
        owner = (record.runner or {}).get("pid")
        if record.status is not JobState.QUEUED:
            raise InvalidStateError(f"job '{name}' is {record.status}, not Queued")
        if runner_pid is not None and owner != runner_pid:
            raise InvalidStateError(f"job '{name}' belongs to process {owner}, not {runner_pid}")
        record.runner = records.runner_identity()
        records.write(folder, record)
    return record.public()


def download_job(
    ws: Workspace, name: str, output_name: str = "score", download_path: str | None = None
) -> dict[str, Any]:
    record = records.load(ws, name)
    if output_name != "score":
        raise NotFoundError(f"job '{name}' has no output named '{output_name}'; batch jobs have one output: score")
    if record.status is not JobState.COMPLETED:
        raise InvalidStateError(
            f"job '{name}' is {record.status}; only Completed jobs have outputs to download",
            f"continue it with `batchctl job resume -n {name}`" if record.status.terminal else None,
        )
    dest = Path(download_path or ".").absolute() / "named-outputs" / "score"
    folder = record.output_location.location()
    if record.output_file and record.settings.output_file_name:
        names = [record.settings.output_file_name]
    else:
        names = storage.list_files(folder)
    copied = []
    for rel in names:
        target = dest / rel
        storage.download(folder.join(*rel.split("/")), str(target))
        copied.append(str(target))
    return {"name": name, "output_name": "score", "download_path": str(dest), "files": copied}


def _done_files(folder: Path, mini_batch_size: int) -> set[str]:
    """The files job `folder` scored: from batches.jsonl (each mini-batch names its plan entries; those
    of earlier versions are found by their index), less the failed items it recorded."""
    plan_files = list(plan_io.files(folder))
    failed_in_batch: dict[int, set[str]] = {}
    failed_log = folder / "failed_items.jsonl"
    if failed_log.is_file():
        for line in failed_log.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                item = entry.get("item", entry.get("file"))
                if item is None:  # run() returned fewer rows than files: the failed ones are unknown
                    failed_in_batch.setdefault(entry["batch"], set()).add("\0unknown")
                else:
                    failed_in_batch.setdefault(entry["batch"], set()).add(item)
    done: set[str] = set()
    segments = folder / "reuse" / "segments.jsonl"
    if segments.is_file():  # files whose rows were reused from an earlier job (jobs/reuse.py)
        for line in segments.read_text(encoding="utf-8").splitlines():
            seg = json.loads(line)
            if seg[0] == "h":
                done.add(seg[1])
    batches_log = folder / "batches.jsonl"
    if batches_log.is_file():
        for line in batches_log.read_text().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if "first" in entry:
                files = set(plan_files[entry["first"] : entry["first"] + entry["files"]])
            else:
                start = entry["batch"] * mini_batch_size
                files = set(plan_files[start : start + mini_batch_size])
            if not entry["ok"]:
                continue
            known = failed_in_batch.get(entry["batch"], set())
            if entry["failed"] == 0:
                done |= files
            elif len(known) == entry["failed"] and "\0unknown" not in known:
                done |= files - known
            # else run() returned fewer rows than files: which ones failed is unknown, rerun them all
    return done


def _rerun_source(
    ws: Workspace, name: str, job_name: str | None, overrides: Iterable[str]
) -> tuple[RunOverrides, JobRecord]:
    """What every rerun checks first: the new name, the `--set` overrides, and that job `name` has ended."""
    if job_name is not None:  # the new name is checked first, like every name, before anything is read
        spec_load.validate_name("job", job_name)
    from batchctl.jobs.request import split_sets

    sets, io_sets = split_sets(overrides)
    if io_sets:
        raise SpecError("--set: inputs.* and outputs.* cannot be changed on rerun; use --output-path")
    record = records.load(ws, name)
    if not record.status.terminal:
        raise InvalidStateError(f"job '{name}' is {record.status}; rerun it once it has ended")
    return sets, record


def rerun_failed(
    ws: Workspace,
    name: str,
    output_path: str | None = None,
    job_name: str | None = None,
    dry_run: bool = False,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """A new job that scores only the items that failed in Completed job `name`, with its settings (and
    `--set` overrides). A job that did not complete never published its successes: it is refused and
    pointed to `job resume`, which cannot lose them."""
    from batchctl.jobs.request import JobRequest
    from batchctl.jobs.submit import queue

    sets, record = _rerun_source(ws, name, job_name, overrides)
    if record.status is not JobState.COMPLETED:
        raise InvalidStateError(
            f"job '{name}' is {record.status}: the items it scored were never published, so a rerun of the "
            "failed items would lose them",
            f"continue the job with `batchctl job resume -n {name}` (fix the input or --set first)",
        )
    folder = records.job_dir(ws, name)
    plan = plan_io.read_header(folder)
    done = _done_files(folder, record.settings.mini_batch_size)
    failed = [f for f in plan_io.files(folder) if f not in done]
    if not failed:
        raise ConflictError(f"job '{name}' has no failed items to rerun")
    root = plan.root_url
    if plan.input_type == "uri_file":  # the plan's root is the file's folder: rerun the file itself
        root = plan.root.join(failed[0]).url
    request = JobRequest(
        endpoint=record.endpoint_name,
        deployment=record.deployment_name,
        input=root,
        input_type="uri_folder" if plan.input_type == "uri_folder" else "uri_file",
        output_path=output_path,
        job_name=job_name,
        experiment_name=record.experiment_name,
        overrides=sets.over(record.settings.as_overrides()),
        files_subset=failed if plan.input_type == "uri_folder" else None,
        rerun_of=name,
        **job_env.rerun_options(record.environment),
    )
    return queue(ws, request, dry_run)


def read_log(ws: Workspace, name: str, position: int = 0, log: str = "sys/master_role.txt") -> tuple[str, int]:
    """(text from `position` on, the new position) of one of the job's logs; ("", position) if it does
    not exist yet."""
    folder = records.job_dir(ws, name)
    path = folder / "logs" / log
    try:
        with open(path, encoding="utf-8") as handle:
            handle.seek(position)
            chunk = handle.read()
            return chunk, handle.tell()
    except FileNotFoundError:
        return "", position


# what `job resume --set` may change: nothing that changes how the files are cut into mini-batches
RESUMABLE_SETTINGS = ("error_threshold", "retry_settings", "instance_count")


def resume_job(
    ws: Workspace,
    name: str,
    overrides: Iterable[str] = (),
    use_current_deployment: bool = False,
    output_path: str | None = None,
    env_manager: str | None = None,
    env_strict: bool = False,
    env_constraints: list[str] | None = None,
) -> dict[str, Any]:
    """Queue a Failed or Canceled job (or one whose driver died) again, under the same name: its runner
    scores only the mini-batches without a committed result and publishes to the job's own output."""
    from batchctl.jobs.runner import moved_output_hint
    from batchctl.jobs.submit import snapshot_deployment
    from batchctl.resources.deployments import get_deployment

    sets = _resume_overrides(name, overrides)
    folder = records.job_dir(ws, name)
    record = records.load(ws, name)
    _check_resumable(name, record)
    changes: dict[str, Any] = {"settings": _resumed_settings(record, sets), "runner": records.runner_identity()}
    if use_current_deployment:
        deployment = get_deployment(ws, record.deployment_name, record.endpoint_name)
        snapshot, _ = snapshot_deployment(ws, deployment)
        changes.update(deployment_snapshot=snapshot, model=deployment.model)
    if record.environment is not None and (env_manager or env_strict or env_constraints):
        from batchctl.jobs.environment import override

        changes["environment"] = override(record.environment, env_manager, env_strict, env_constraints or [])
    notes = [_current_compute(ws, record, changes)]
    if output_path is not None:
        notes.append(_new_output(ws, record, output_path, changes))
    elif record.output_file_location is not None:
        try:
            storage.refuse_existing(record.output_file_location.location())
        except OutputExistsError as exc:
            raise OutputExistsError(exc.message, moved_output_hint(name)) from None
    shown = _input_changes(folder)
    if shown:
        from batchctl.notices import notify

        notify(
            f"the input of job '{name}' changed since its last attempt ({shown}); resume scores the files the "
            "job listed when it was submitted: added files are left out, and files changed or removed since "
            "they were scored are scored again (see the job's lineage); `batchctl job rerun` scores the input "
            "as it is now"
        )
    (folder / CANCEL_MARKER).unlink(missing_ok=True)
    return records.reopen(folder, "; ".join(n for n in notes if n) or None, **changes).public()


def _resume_overrides(name: str, overrides: Iterable[str]) -> RunOverrides:
    """`job resume --set`: only RESUMABLE_SETTINGS may change (and never the input or the output)."""
    from batchctl.jobs.request import split_sets

    sets, io_sets = split_sets(overrides)
    if io_sets:
        raise SpecError("--set: inputs.* and outputs.* cannot change on resume: the job keeps its input and output")
    for key in sets.model_dump(exclude_none=True):
        if key not in RESUMABLE_SETTINGS:
            reason = {
                "mini_batch_size": "the committed results are per mini-batch, so the partition must stay",
                "output_file_name": "the job publishes to its own output",
            }.get(key, "it is not a per-job setting")
            raise SpecError(
                f"--set: {key} cannot change on resume: {reason}",
                f"start a new job instead (`batchctl job rerun -n {name}` or `batchctl endpoint invoke`)",
            )
    return sets


def _check_resumable(name: str, record: JobRecord) -> None:
    """Only an ended job that did not complete can be continued; refused before anything is changed."""
    if not record.status.terminal:
        raise InvalidStateError(f"job '{name}' is {record.status}; wait for it to end (or cancel it) first")
    if record.status is JobState.COMPLETED:
        failed = record.counts.items_failed
        raise InvalidStateError(
            f"job '{name}' is Completed: it has nothing left to score, so it cannot be resumed",
            f"score its failed {'item' if failed == 1 else 'items'} again, into a new output, with "
            f"`batchctl job rerun -n {name} --failed-only`"
            if failed
            else f"score its input again, into a new output, with `batchctl job rerun -n {name}`",
        )
    record.status.reopen()  # refuses any other state that cannot be continued


def _resumed_settings(record: JobRecord, sets: RunOverrides) -> JobSettings:
    """The job's settings with the resumable `--set` overrides laid over them."""
    settings = record.settings
    if not sets.model_dump(exclude_none=True):
        return settings
    merged = sets.over(settings.as_overrides())
    instances = merged.instance_count or settings.instance_count
    workers = instances * settings.max_concurrency_per_instance
    if record.compute_max_workers:
        workers = min(workers, record.compute_max_workers)
    retry = merged.retry_settings.model_dump(exclude_none=True) if merged.retry_settings else {}
    return settings.model_copy(
        update={
            "error_threshold": merged.error_threshold,
            "instance_count": instances,
            "workers": workers,
            "retry_settings": settings.retry_settings.model_copy(update=retry),
        }
    )


def _new_output(ws: Workspace, record: JobRecord, output_path: str, changes: dict[str, Any]) -> str:
    """`job resume --output-path`: the job publishes to another folder, checked as `endpoint invoke` checks one."""
    from batchctl.resources.locations import resolve_location

    output = resolve_location(ws, output_path)
    storage.check_output_folder(output)
    file_name = record.settings.output_file_name
    results = output.join(file_name) if file_name and record.output_file_location is not None else None
    if results is not None:
        storage.refuse_existing(results)
    elif storage.list_files(output):
        raise ConflictError(
            f"output folder {output.url} is not empty; summary_only jobs need a new or empty folder",
            "choose another --output-path",
        )
    storage.probe_write(output)
    changes.update(
        outputs={**record.outputs, "score": {"type": "uri_folder", "path": output_path}},
        output_location=LocationRecord.of(output),
        output_file=results.url if results is not None else None,
        output_file_location=LocationRecord.of(results) if results is not None else None,
    )
    return f"output folder {output.url} (was {record.output_location.location().url})"


def _current_compute(ws: Workspace, record: JobRecord, changes: dict[str, Any]) -> str | None:
    """A Ray job resumes on its compute's current address (a cluster restarted elsewhere, or on a new port,
    after `compute create` with the new address); returns what changed, for the record's history."""
    from batchctl.resources.computes import get_compute

    if record.compute_type != "ray":
        return None
    try:
        compute = get_compute(ws, record.compute)
    except NotFoundError:
        return None  # deleted meanwhile: the job keeps the address it had
    if compute.type != "ray":
        return None
    changes["compute_connect_timeout"] = compute.connect_timeout
    address = compute.address
    if not address or address == record.compute_address:
        return None
    changes["compute_address"] = address
    return f"compute '{record.compute}' at its current address '{address}' (the job ran at '{record.compute_address}')"


def _normalise(message: str) -> str:
    """A message with what differs between items (quoted names, paths, numbers) replaced by placeholders."""
    import re

    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", message)
    # a path starts at a word boundary with "/" (not "</" of markup, not "3/4") and stops at what a path
    # in a message rarely holds (spaces, colons, quotes, brackets of markup)
    text = re.sub(r"(?<![\w.<>/])/[^\s:<>\"',;)\]]+", "<path>", text)
    # numbers on their own only: "row 12" groups with "row 7", but hunter2, int64 and utf-8 stay words
    return re.sub(r"(?<![\w.-])-?\d+(?:\.\d+)?(?![\w-])", "N", text)


def job_errors(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """The failed items grouped by exception type and normalised message, largest group first, each with
    its count, up to 3 sample items and one full message."""
    folder = records.job_dir(ws, name)
    records.load(ws, name)  # not found -> one line
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    failed_log = folder / "failed_items.jsonl"
    lines = failed_log.read_text(encoding="utf-8").splitlines() if failed_log.is_file() else []
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        exc_type = entry.get("type") or "-"
        message = entry.get("message") or entry.get("reason") or ""
        key = (exc_type, _normalise(message))
        group = groups.setdefault(
            key,
            {"type": exc_type, "message": key[1], "count": 0, "samples": [], "example": message, "frame": None},
        )
        group["count"] += 1
        item = entry.get("item", entry.get("file"))
        if len(group["samples"]) < 3:
            group["samples"].append(item if item is not None else f"mini-batch {entry.get('batch')}")
        group["frame"] = group["frame"] or entry.get("frame")
    return sorted(groups.values(), key=lambda g: (-g["count"], g["type"], g["message"]))


def refuse_if_in_use(
    ws: Workspace,
    what: str,
    *,
    endpoint: str | None = None,
    deployment: str | None = None,
    model: str | None = None,
    version: str | None = None,
) -> None:
    """Refuse to delete what a Queued or Running job uses (its next worker's init() would fail and its
    successes would be lost), naming the job."""
    using = []
    for record in records.list_all(ws):
        if record.status.terminal:
            continue
        if model is not None:
            name, _, model_version = record.model.removeprefix("azureml:").rpartition(":")
            if name == model and version in (None, model_version):
                using.append(record.name)
        elif record.endpoint_name == endpoint and (deployment is None or record.deployment_name == deployment):
            using.append(record.name)
    if using:
        raise ConflictError(
            f"{what} is used by {'job' if len(using) == 1 else 'jobs'} {', '.join(using)}, which "
            f"{'is' if len(using) == 1 else 'are'} still queued or running",
            "wait for it to end or cancel it (`batchctl job cancel -n NAME`), or pass --force",
        )


def rerun_whole(
    ws: Workspace,
    name: str,
    output_path: str | None = None,
    job_name: str | None = None,
    dry_run: bool = False,
    tracking_uri: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """A new job over the whole input of job `name`, with its settings, its model version and its code
    snapshot (not whatever the deployment uses now). Warns, naming the files, when the input listing
    differs from the one the first job scored (size and mtime locally, ETag on blob)."""
    from batchctl.jobs.request import JobRequest
    from batchctl.jobs.submit import queue
    from batchctl.notices import notify

    sets, record = _rerun_source(ws, name, job_name, overrides)
    folder = records.job_dir(ws, name)
    snapshot = record.deployment_snapshot
    for what, path in (("model", snapshot.model_path), ("code snapshot", snapshot.code_dir)):
        if path is not None and not Path(path).exists():
            raise NotFoundError(f"the {what} job '{name}' ran with ({path}) no longer exists in the workspace")
    plan = plan_io.read_header(folder)
    first_file = next(plan_io.files(folder), "")
    root = plan.root_url if plan.input_type == "uri_folder" else plan.root.join(first_file).url
    request = JobRequest(
        endpoint=record.endpoint_name,
        deployment=record.deployment_name,
        input=root,
        input_type=plan.input_type,
        output_path=output_path,
        job_name=job_name,
        experiment_name=record.experiment_name,
        overrides=sets.over(record.settings.as_overrides()),
        tags=dict(record.tags),
        description=record.description,
        rerun_of=name,
        tracking_uri=tracking_uri,
        log_predictions=bool((record.tracking or {}).get("log_predictions")),
        pinned=(record.model, snapshot),
        **job_env.rerun_options(record.environment),
    )
    shown = _input_changes(folder)
    if shown:
        notify(f"the input of job '{name}' changed since it ran ({shown})")
    new = queue(ws, request, dry_run)
    if dry_run:
        return {**new, "model": record.model, "deployment_snapshot": snapshot.model_dump(mode="json")}
    return new


def _input_changes(folder: Path) -> str | None:
    """What changed in the job's input since its last attempt listed it: "added: a; changed: b", or None
    (jobs/listing.py: the plan's listing, with its amendments, against the input as it is now)."""
    from batchctl.jobs.listing import changes_since_last_attempt

    changes = changes_since_last_attempt(folder)
    return (changes.shown() or None) if changes is not None else None


def verify_job(ws: Workspace, name: str) -> dict[str, Any]:
    """Re-hash job `name`'s published results and its model and compare them with its lineage manifest."""
    from batchctl.tracking import lineage as lineage_mod

    return lineage_mod.verify(records.load(ws, name).dump())
