"""A pipeline job's runner killed mid-pipeline (SIGKILL): the job reads Failed, never Running; `job resume`
runs only the steps that did not complete. And `job cancel` stops the running steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batchctl import api
from batchctl.jobs import records
from batchctl.jobs.pipelines.runner import run_pipeline
from batchctl.jobs.pipelines.submit import PipelineRequest, queue_pipeline
from batchctl.workspace import Workspace
from support.waiting import wait_for

from .run_helpers import folder_input, from_step, markers, pipeline, step, write_code


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def started(tmp_path: Path, isolation: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Workspace, Path, Path, str]:
    """A two-step pipeline whose second step waits for `flag`, run by a detached runner until it does."""
    ws = Workspace(isolation)
    code = write_code(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("x\n")
    marker_file, flag = tmp_path / "markers.txt", tmp_path / "flag"
    monkeypatch.setenv("MARKERS", str(marker_file))
    monkeypatch.setenv("WAIT_second", str(flag))
    bound = pipeline([step("first", code, folder_input(data)), step("second", code, from_step("first"))])
    queue_pipeline(ws, PipelineRequest(bound=bound, job_name="pk"))
    return ws, marker_file, flag, "pk"


def runner(ws: Workspace, name: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "batchctl.jobs.detached", str(ws.root), name])
    folder = records.job_dir(ws, name)
    record = records.read(folder)
    assert record is not None
    records.write(folder, record.model_copy(update={"runner": records.runner_identity(proc.pid)}))
    return proc


def test_killed_runner_then_resume_runs_only_what_did_not_complete(
    started: tuple[Workspace, Path, Path, str],
) -> None:
    ws, marker_file, flag, name = started
    proc = runner(ws, name)
    try:
        wait_for(lambda: "second" in markers(marker_file), 60, "the second step to start")
        step_pid = (records.load(ws, f"{name}-second").pipeline or {})["process"]["pid"]
        assert records.load(ws, name).status == "Running"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    parent = records.load(ws, name)
    assert parent.status == "Failed"
    assert (parent.error or {})["message"] == "runner exited unexpectedly"
    assert records.load(ws, f"{name}-first").status == "Completed"
    assert records.load(ws, f"{name}-second").status == "Failed"
    wait_for(lambda: not alive(step_pid), 10, "the step's process to die with its runner")
    flag.touch()
    resumed = api.resume_job(ws, name)
    assert resumed["status"] == "Queued"
    final = run_pipeline(ws, name)
    assert final.status == "Completed", final.error
    assert markers(marker_file) == ["first", "second", "second"]  # first was not run again
    assert final.attempts == 2
    log = (records.job_dir(ws, name) / "logs" / "sys" / "master_role.txt").read_text()
    assert "step first (job pk-first): Completed in an earlier attempt; not run again" in log


def test_cancel_stops_the_running_step_and_the_rest(started: tuple[Workspace, Path, Path, str]) -> None:
    ws, marker_file, _flag, name = started
    proc = runner(ws, name)
    try:
        wait_for(lambda: "second" in markers(marker_file), 60, "the second step to start")
        final = api.cancel_job(ws, name)
    finally:
        proc.wait(30)
    assert final["status"] == "Canceled"
    assert records.load(ws, f"{name}-first").status == "Completed"
    assert records.load(ws, f"{name}-second").status == "Canceled"
    assert proc.returncode == 1
