"""A pipeline job in MLflow: one parent run (the pipeline) and one child run per step, nested with MLflow's
`mlflow.parentRunId` tag, each ended with its step's status, its duration, its command and its logs.
Logged once the pipeline has ended, by `batchctl.jobs.pipelines.tracking_agent` (never by the runner).
Works on the records as dicts, as the rest of tracking/ does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batchctl.tracking.tracker import RUN_STATUS, RunLogger

SKIPPED_STATUS = "KILLED"  # MLflow has no Skipped: a step that never ran reads as killed


def _ms(stamp: str | None) -> int | None:
    if not stamp:
        return None
    return int(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def _tags(record: dict[str, Any]) -> dict[str, str]:
    info = record.get("pipeline") or {}
    tags = {
        "batchctl.job": record["name"],
        "batchctl.endpoint": record.get("endpoint_name") or "",
        "batchctl.deployment": record.get("deployment_name") or "",
        "batchctl.compute": str(record.get("compute") or ""),
        **{str(k): str(v) for k, v in (record.get("tags") or {}).items()},
    }
    if record.get("parent_job_name"):
        tags.update({"batchctl.step": str(info.get("step")), "batchctl.component": str(info.get("component"))})
        if info.get("reused_from"):
            tags["batchctl.reused_from"] = str(info["reused_from"])
    else:
        tags["batchctl.pipeline"] = str(info.get("source") or "")
    return tags


class PipelineRunLogger(RunLogger):
    """The parent run and its children, with RunLogger's bounded retries on every call."""

    def one_run(self, record: dict[str, Any], folder: Path, parent_run: str | None) -> str:
        client = self._mlflow()
        if self.experiment_id is None:
            self.experiment_id = self._experiment(client, record.get("experiment_name") or record["name"])
        tags = _tags(record)
        if parent_run is not None:
            tags["mlflow.parentRunId"] = parent_run
        run = client.create_run(
            self.experiment_id,
            start_time=_ms(record.get("start_time")) or _ms(record.get("created_at")),
            run_name=record.get("display_name") or record["name"],
            tags=tags,
        )
        run_id = str(run.info.run_id)
        info = record.get("pipeline") or {}
        if info.get("command"):
            client.log_param(run_id, "command", str(info["command"])[:6000])
        if record.get("duration_seconds") is not None:
            client.log_metric(run_id, "duration_seconds", float(record["duration_seconds"]))
        if (folder / "logs").is_dir():
            client.log_artifacts(run_id, str(folder / "logs"), "logs")
        status = RUN_STATUS.get(str(record.get("status")), SKIPPED_STATUS)
        client.set_terminated(run_id, status=status, end_time=_ms(record.get("end_time")))
        return run_id


def log_pipeline(
    uri: str, parent: dict[str, Any], children: list[dict[str, Any]], folder_of: Callable[[str], Path], log: Any
) -> dict[str, Any]:
    """Log the pipeline job `parent` and its steps' jobs `children`; returns {run_id, experiment_id, url}
    of the parent run. Raises tracker.StoreDown when the store does not answer."""
    logger = PipelineRunLogger(uri, parent, log)
    ids: dict[str, str] = {}

    def parent_run() -> None:
        ids["parent"] = logger.one_run(parent, folder_of(parent["name"]), None)

    logger.call("log the pipeline run", parent_run)
    logger.run_id = ids["parent"]
    for child in children:

        def child_run(child: dict[str, Any] = child) -> None:
            logger.one_run(child, folder_of(child["name"]), ids["parent"])

        logger.call(f"log step {child.get('display_name')}", child_run)
    return logger.info()
