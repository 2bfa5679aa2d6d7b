"""The job commands: start a detached runner, show, list, cancel, download, rerun, read the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.errors import BatchctlError, InvalidStateError, NotFoundError, SpecError
from batchctl.jobs import records
from batchctl.jobs.model import JobPlan, JobRecord, JobState
from batchctl.jobs.runner import CANCEL_MARKER
from batchctl.jobs.submit import JobRequest, queue
from batchctl.specs import load as spec_load
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
    *,
    max_results: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first (as `az ml job list`), at most `max_results`."""
    if max_results is not None and max_results < 1:
        raise SpecError(f"--max-results must be 1 or more, not {max_results}")
    if endpoint is not None:
        endpoint = spec_load.validate_name("endpoint", endpoint)
    if deployment is not None:  # a filter only, but checked like every name (an empty one would match all)
        spec_load.validate_name("deployment", deployment)
    wanted = JobState.parse(status) if status is not None else None
    out = []
    for record in sorted(records.list_all(ws), key=lambda r: (r.created_at, r.name), reverse=True):
        if endpoint and record.endpoint_name != endpoint:
            continue
        if deployment is not None and record.deployment_name != deployment:
            continue
        if wanted and record.status is not wanted:
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
        if record.status is JobState.QUEUED and not records.runner_alive(record.runner):
            try:
                return records.update(folder, JobState.CANCELED, error={"message": "job canceled"}).public()
            except InvalidStateError:
                continue  # a runner took it (or it ended) meanwhile: read it again
        time.sleep(0.1)
    raise BatchctlError(f"job '{name}' did not stop within {wait_seconds:g} seconds; cancel was requested")


def download_job(
    ws: Workspace, name: str, output_name: str = "score", download_path: str | None = None
) -> dict[str, Any]:
    record = records.load(ws, name)
    if output_name != "score":
        raise NotFoundError(f"job '{name}' has no output named '{output_name}'; batch jobs have one output: score")
    if record.status is not JobState.COMPLETED:
        raise BatchctlError(f"job '{name}' is {record.status}; only Completed jobs have outputs to download")
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


def _done_files(folder: Path, plan: JobPlan, mini_batch_size: int) -> set[str]:
    """The files job `folder` scored: from batches.jsonl, less the failed items it recorded."""
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
            start = entry["batch"] * mini_batch_size
            files = set(plan.files[start : start + mini_batch_size])
            if not entry["ok"]:
                continue
            known = failed_in_batch.get(entry["batch"], set())
            if entry["failed"] == 0:
                done |= files
            elif len(known) == entry["failed"]:
                done |= files - known
            # else run() returned fewer rows than files: which ones failed is unknown, rerun them all
    return done


def rerun_failed(
    ws: Workspace,
    name: str,
    output_path: str | None = None,
    job_name: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """A new job that scores only the items that failed in job `name`, with its settings."""
    if job_name is not None:  # the new name is checked first, like every name, before anything is read
        spec_load.validate_name("job", job_name)
    record: JobRecord = records.load(ws, name)
    if not record.status.terminal:
        raise BatchctlError(f"job '{name}' is {record.status}; rerun it once it has ended")
    folder = records.job_dir(ws, name)
    plan = JobPlan.model_validate_json((folder / "plan.json").read_bytes())
    done = _done_files(folder, plan, record.settings.mini_batch_size)
    failed = [f for f in plan.files if f not in done]
    if not failed:
        raise BatchctlError(f"job '{name}' has no failed items to rerun")
    root = plan.root_url
    if plan.input_type == "uri_file":  # the plan's root is the file's folder: rerun the file itself
        root = plan.root.join(plan.files[0]).url
    request = JobRequest(
        endpoint=record.endpoint_name,
        deployment=record.deployment_name,
        input=root,
        input_type="uri_folder" if plan.input_type == "uri_folder" else "uri_file",
        output_path=output_path,
        job_name=job_name,
        experiment_name=record.experiment_name,
        overrides=record.settings.as_overrides(),
        files_subset=failed if plan.input_type == "uri_folder" else None,
        rerun_of=name,
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
