"""The pipeline runner on bound pipelines built directly: steps as child jobs, dependency order,
continue_on_step_failure, Skipped with the reason, promoted outputs published create-only, step reuse."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from batchctl.jobs import records
from batchctl.jobs.pipelines.runner import run_pipeline
from batchctl.jobs.pipelines.submit import PipelineRequest, queue_pipeline
from batchctl.resources.pipelines import BoundOutput
from batchctl.workspace import Workspace

from .run_helpers import folder_input, from_step, markers, pipeline, step, write_code


@pytest.fixture
def setup(tmp_path: Path, isolation: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Workspace, Path, Path, Path]:
    ws = Workspace(isolation)
    code = write_code(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello\n")
    marker_file = tmp_path / "markers.txt"
    monkeypatch.setenv("MARKERS", str(marker_file))
    return ws, code, data, marker_file


def run(ws: Workspace, bound: object, name: str, **kw: object) -> records.JobRecord:
    queue_pipeline(ws, PipelineRequest(bound=bound, job_name=name, **kw))  # type: ignore[arg-type]
    return run_pipeline(ws, name)


def child(ws: Workspace, parent: str, step_name: str) -> records.JobRecord:
    return records.load(ws, f"{parent}-{step_name}")


def test_two_steps_in_order_with_child_jobs_and_published_output(setup: tuple[Workspace, Path, Path, Path]) -> None:
    ws, code, data, marker_file = setup
    bound = pipeline(
        [step("prepare", code, folder_input(data)), step("score", code, from_step("prepare"), promoted="scores")],
        outputs={"scores": BoundOutput(type="uri_folder")},
    )
    final = run(ws, bound, "p1")
    assert final.status == "Completed", final.error
    assert markers(marker_file) == ["prepare", "score"]
    for name in ("prepare", "score"):
        rec = child(ws, "p1", name)
        assert rec.status == "Completed" and rec.parent_job_name == "p1" and rec.display_name == name
        log = Path(rec.log_dir or "") / "user" / "std_log.txt"
        assert f"step {name} runs as job p1-{name}" in log.read_text()
    assert [s["status"] for s in (final.pipeline or {})["steps"]] == ["Completed", "Completed"]
    published = Path((final.pipeline or {})["outputs"]["scores"]["url"])
    assert (published / "a.txt").read_text() == "hello\nprepare\nscore\n"
    # every step's lines are in the pipeline's own log (what `job stream` follows)
    master = (Path(final.log_dir or "") / "sys" / "master_role.txt").read_text()
    assert "[prepare] step prepare runs as job p1-prepare" in master


@pytest.mark.parametrize("keep_going", [False, True])
def test_a_failed_step_fails_the_pipeline_and_skips_its_downstream(
    setup: tuple[Workspace, Path, Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, keep_going: bool
) -> None:
    ws, code, data, marker_file = setup
    monkeypatch.setenv("FAIL", "bad")
    # the good branch waits until the bad step has failed, so the failure is seen while it runs
    monkeypatch.setenv("WAIT_good", str(tmp_path / "never" if not keep_going else marker_file))
    bound = pipeline(
        [
            step("bad", code, folder_input(data)),
            step("good", code, folder_input(data)),
            step("after_bad", code, from_step("bad")),
            step("after_good", code, from_step("good")),
        ],
        continue_on_failure=keep_going,
    )
    final = run(ws, bound, "p2")
    assert final.status == "Failed"
    assert "step bad failed" in (final.error or {})["message"]
    states = {s["name"]: s for s in (final.pipeline or {})["steps"]}
    assert states["bad"]["status"] == "Failed"
    assert states["after_bad"]["status"] == "Skipped"
    assert "upstream step bad (Failed) did not complete" in states["after_bad"]["reason"]
    assert "after_bad" not in markers(marker_file)
    if keep_going:  # the independent branch went on to its end
        assert states["good"]["status"] == "Completed"
        assert states["after_good"]["status"] == "Completed"
        assert "after_good" in markers(marker_file)
    else:  # the running branch was stopped and nothing else started
        assert states["good"]["status"] == "Canceled"
        assert states["after_good"]["status"] == "Skipped"
        assert "after_good" not in markers(marker_file)
    assert child(ws, "p2", "after_bad").status == "Skipped"


def test_a_deterministic_step_reuses_its_earlier_outputs(setup: tuple[Workspace, Path, Path, Path]) -> None:
    ws, code, data, marker_file = setup

    def bound() -> object:
        return pipeline([step("prepare", code, folder_input(data)), step("score", code, from_step("prepare"))])

    assert run(ws, bound(), "r1").status == "Completed"
    assert markers(marker_file) == ["prepare", "score"]
    started = time.monotonic()
    second = run(ws, bound(), "r2")
    assert second.status == "Completed"
    assert markers(marker_file) == ["prepare", "score"]  # neither step ran again
    reused = child(ws, "r2", "score")
    assert (reused.pipeline or {})["reused_from"] == "r1-score"
    log = (Path(reused.log_dir or "") / "user" / "std_log.txt").read_text()
    assert "reused the outputs of job r1-score" in log
    assert (Path(reused.outputs["out"]["path"]) / "a.txt").read_text() == "hello\nprepare\nscore\n"
    assert time.monotonic() - started < 5  # the whole job; each reuse itself is said to take < 1 s
    assert float(log.split("(in ")[1].split("s;")[0]) < 1.0
    # a changed input runs both steps again
    (data / "a.txt").write_text("changed\n")
    assert run(ws, bound(), "r3").status == "Completed"
    assert markers(marker_file) == ["prepare", "score", "prepare", "score"]
    # --force-rerun runs them though nothing changed
    assert run(ws, bound(), "r4", force_rerun=True).status == "Completed"
    assert markers(marker_file)[-2:] == ["prepare", "score"] and len(markers(marker_file)) == 6


def test_a_non_deterministic_step_always_runs(setup: tuple[Workspace, Path, Path, Path]) -> None:
    ws, code, data, marker_file = setup
    for name in ("n1", "n2"):
        assert run(ws, pipeline([step("prepare", code, folder_input(data), deterministic=False)]), name).status == (
            "Completed"
        )
    assert markers(marker_file) == ["prepare", "prepare"]


def test_a_promoted_output_is_never_overwritten(setup: tuple[Workspace, Path, Path, Path], tmp_path: Path) -> None:
    ws, code, data, _ = setup
    out = tmp_path / "scores"
    out.mkdir()
    (out / "a.txt").write_text("someone else's\n")
    bound = pipeline(
        [step("prepare", code, folder_input(data), promoted="scores")],
        outputs={"scores": BoundOutput(type="uri_folder")},
    )
    from batchctl.errors import OutputExistsError

    with pytest.raises(OutputExistsError, match="is not empty"):
        queue_pipeline(ws, PipelineRequest(bound=bound, job_name="o1", output_paths={"scores": str(out)}))
    assert (out / "a.txt").read_text() == "someone else's\n"


@pytest.mark.timeout(60)
def test_independent_steps_run_at_the_same_time(
    setup: tuple[Workspace, Path, Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each of two independent steps waits until the other has started: run one after the other they
    would wait forever (the test's timeout)."""
    ws, code, data, marker_file = setup
    started = tmp_path / "started"
    started.mkdir()
    monkeypatch.setenv("STARTED", str(started))
    monkeypatch.setenv("WAIT_left", str(started / "right"))
    monkeypatch.setenv("WAIT_right", str(started / "left"))
    import dataclasses

    from batchctl.resources.computes import create_compute

    create_compute(ws, name="two", type="local", max_workers=2)  # the capacity: 2 steps at once, on any machine
    bound = pipeline([step("left", code, folder_input(data)), step("right", code, folder_input(data))])
    bound = dataclasses.replace(bound, settings=dataclasses.replace(bound.settings, default_compute="two"))
    final = run(ws, bound, "par")
    assert final.status == "Completed", final.error
    assert sorted(markers(marker_file)) == ["left", "right"]
    assert (final.compute, final.settings.workers) == ("two", 2)
