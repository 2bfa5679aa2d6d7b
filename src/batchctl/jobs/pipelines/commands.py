"""Pipeline jobs after submit: their steps (`job list --parent-job-name`), their named outputs (`job
download --output-name`), and `job resume` (the steps that did not complete run again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from batchctl import storage
from batchctl.errors import InvalidStateError, NotFoundError
from batchctl.jobs import records
from batchctl.jobs.model import JobRecord, JobState
from batchctl.jobs.pipelines.submit import PIPELINE
from batchctl.jobs.runner import CANCEL_MARKER
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace


def is_pipeline(record: JobRecord | dict[str, Any]) -> bool:
    kind = record.get("type") if isinstance(record, dict) else record.type
    return kind == PIPELINE


def list_children(ws: Workspace, parent: str) -> list[dict[str, Any]]:
    """The steps' child jobs of pipeline job `parent`, in the pipeline's order (as `az ml job list
    --parent-job-name`); a job that is not a pipeline has none, which is said, not an error."""
    spec_load.validate_name("job", parent)
    record = records.load(ws, parent)
    if not is_pipeline(record):
        from batchctl.notices import notify

        notify(f"job {parent} is not a pipeline job: it has no child jobs")
        return []
    out = []
    for row in (record.pipeline or {}).get("steps", []):
        try:
            out.append(records.load(ws, row["job"]).public())
        except NotFoundError:
            continue  # not started yet (the runner makes the child jobs when it starts)
    return out


def download_output(ws: Workspace, name: str, output_name: str, download_path: str | None) -> dict[str, Any]:
    """A Completed pipeline job's named output to DIR/named-outputs/<output>/ (its published files)."""
    record = records.load(ws, name)
    outputs = (record.pipeline or {}).get("outputs", {})
    if output_name not in outputs:
        names = ", ".join(sorted(outputs)) or "none"
        raise NotFoundError(f"job '{name}' has no output named '{output_name}' (its outputs: {names})")
    if record.status is not JobState.COMPLETED:
        raise InvalidStateError(
            f"job '{name}' is {record.status}; only Completed jobs have outputs to download",
            f"continue it with `batchctl job resume -n {name}`" if record.status.terminal else None,
        )
    target = outputs[output_name]
    folder = storage.Location(target["url"], target["protocol"])
    dest = Path(download_path or ".").absolute() / "named-outputs" / output_name
    copied = []
    for rel in storage.list_files(folder):
        path = dest / rel
        storage.download(folder.join(*rel.split("/")), str(path))
        copied.append(str(path))
    return {"name": name, "output_name": output_name, "download_path": str(dest), "files": copied}


def resume_pipeline(
    ws: Workspace,
    name: str,
    env_manager: str | None = None,
    env_strict: bool = False,
    env_constraints: list[str] | None = None,
) -> dict[str, Any]:
    """Queue a Failed or Canceled pipeline job again: its runner keeps the Completed steps and runs the rest."""
    from batchctl.jobs.environment import override

    record = records.load(ws, name)
    if not record.status.terminal:
        raise InvalidStateError(f"job '{name}' is {record.status}; wait for it to end (or cancel it) first")
    if record.status is JobState.COMPLETED:
        raise InvalidStateError(f"job '{name}' is Completed: every step completed, so it cannot be resumed")
    record.status.reopen()
    changes: dict[str, Any] = {"runner": records.runner_identity()}
    if env_manager or env_strict or env_constraints:
        pipeline = dict(record.pipeline or {})
        pipeline["steps"] = [
            {
                **row,
                "environment": override(row["environment"], env_manager, env_strict, env_constraints or [])
                if row.get("environment")
                else None,
            }
            for row in pipeline.get("steps", [])
        ]
        changes["pipeline"] = pipeline
    folder = records.job_dir(ws, name)
    (folder / CANCEL_MARKER).unlink(missing_ok=True)
    done = [r["name"] for r in (record.pipeline or {}).get("steps", []) if r.get("status") == "Completed"]
    note = f"steps completed earlier, kept: {', '.join(done)}" if done else None
    return records.reopen(folder, note, **changes).public()
