"""MLflow tracking of a pipeline job: a parent run and one child run per step (MLflow's nested runs), each
ended with its step's status, logged by a detached agent after the job ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchctl.jobs import records
from batchctl.jobs.pipelines.runner import run_pipeline
from batchctl.jobs.pipelines.submit import PipelineRequest, queue_pipeline
from batchctl.workspace import Workspace
from support.waiting import wait_for

from .run_helpers import folder_input, from_step, pipeline, step, write_code


@pytest.mark.timeout(180)
def test_a_pipeline_job_is_a_parent_run_with_a_child_run_per_step(
    tmp_path: Path, isolation: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(isolation)
    code = write_code(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("x\n")
    monkeypatch.setenv("MARKERS", str(tmp_path / "markers.txt"))
    monkeypatch.setenv("FAIL", "score")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bound = pipeline(
        [step("prepare", code, folder_input(data)), step("score", code, from_step("prepare")),
         step("publish", code, from_step("score"))],
        continue_on_failure=True,
    )  # fmt: skip
    queue_pipeline(ws, PipelineRequest(bound=bound, job_name="t1", experiment_name="pipes", tracking_uri=uri))
    assert run_pipeline(ws, "t1").status == "Failed"
    folder = records.job_dir(ws, "t1")

    def logged() -> bool:
        record = records.read(folder)
        return record is not None and (record.tracking or {}).get("state") in ("logged", "failed")

    wait_for(logged, 120, "the pipeline's MLflow runs")
    tracking = records.read(folder).tracking or {}  # type: ignore[union-attr]
    assert tracking["state"] == "logged", tracking
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(tracking["run_id"])
    assert (parent.info.run_name, parent.info.status) == ("test_pipeline", "FAILED")
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    got = sorted((r.info.run_name, r.info.status, r.data.tags["batchctl.job"]) for r in children)
    assert got == [
        ("prepare", "FINISHED", "t1-prepare"),
        ("publish", "KILLED", "t1-publish"),
        ("score", "FAILED", "t1-score"),
    ]
    assert client.get_experiment(parent.info.experiment_id).name == "pipes"
