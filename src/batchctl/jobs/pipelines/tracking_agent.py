"""`python -m batchctl.jobs.pipelines.tracking_agent WORKSPACE JOB`: a pipeline job's MLflow runs (the
pipeline and its steps, tracking/pipeline.py), logged after the job ended, in a process of its own at low
priority; the parent record's `tracking` says logging -> logged (or failed, with the error)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from batchctl.jobs import records
from batchctl.jobs.logs import JobLogs
from batchctl.workspace import Workspace


def start(ws: Workspace, name: str) -> None:
    """Start the agent, detached (the runner never waits for MLflow)."""
    subprocess.Popen(
        [sys.executable, "-m", "batchctl.jobs.pipelines.tracking_agent", str(ws.root), name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _set_tracking(folder: Path, **changes: object) -> None:
    current = records.read(folder)
    if current is not None:
        records.update(folder, tracking={**(current.tracking or {}), **changes})


def run(ws: Workspace, name: str) -> int:
    from batchctl.tracking.pipeline import log_pipeline
    from batchctl.tracking.tracker import StoreDown

    with contextlib.suppress(OSError):
        os.nice(10)
    folder = records.job_dir(ws, name)
    parent = records.read(folder)
    if parent is None or not parent.tracking:
        return 0
    children = []
    for row in (parent.pipeline or {}).get("steps", []):
        child = records.read(records.job_dir(ws, row["job"]))
        if child is not None:
            children.append(child.dump())
    logs = JobLogs(folder / "logs")
    _set_tracking(folder, state="logging")
    try:
        info = log_pipeline(
            parent.tracking["uri"], parent.dump(), children, lambda job: records.job_dir(ws, job), logs.master
        )
        _set_tracking(folder, **info, state="logged")
    except StoreDown as exc:
        _set_tracking(folder, state="failed", error=f"the tracking store did not answer: {exc}")
    finally:
        logs.close()
    return 0


if __name__ == "__main__":
    sys.exit(run(Workspace(Path(sys.argv[1])), sys.argv[2]))
