"""What a person sees of a pipeline job in a terminal (`job show`, the end of `job create`): the steps in
the pipeline's order with their status, upstream steps, reuse and reason; a step's job names its pipeline."""

from __future__ import annotations

from batchctl.cli._pipeline import is_pipeline_record, show_lines


def text(lines: list[list[tuple[str, str | None]]]) -> list[str]:
    return ["".join(segment for segment, _ in line) for line in lines]


def test_a_pipeline_job_shows_its_steps_in_order() -> None:
    record = {
        "name": "p1",
        "type": "pipeline",
        "status": "Failed",
        "error": {"message": "step score failed: the command exited with code 3"},
        "pipeline": {
            "source": "pipeline.yml",
            "steps": [
                {"name": "prepare", "job": "p1-prepare", "status": "Completed", "depends_on": [],
                 "reused_from": "p0-prepare"},
                {"name": "score", "job": "p1-score", "status": "Failed", "depends_on": ["prepare"],
                 "reason": "the command exited with code 3"},
                {"name": "publish", "job": "p1-publish", "status": "Skipped", "depends_on": ["score"],
                 "reason": "skipped: upstream step score (Failed) did not complete"},
            ],
            "outputs": {"scores": {"url": "/ws/datastores/scores/"}},
        },
    }  # fmt: skip
    assert is_pipeline_record(record)
    assert text(show_lines(record)) == [
        "Failed  pipeline job p1",
        "  source     pipeline.yml",
        "  Completed  prepare  job p1-prepare  (reused p0-prepare)",
        "  Failed     score  job p1-score  after prepare  the command exited with code 3",
        "  Skipped    publish  job p1-publish  after score  skipped: upstream step score (Failed) did not complete",
        "  output     scores: /ws/datastores/scores/",
        "  error      step score failed: the command exited with code 3",
    ]


def test_a_step_job_names_its_pipeline_and_command() -> None:
    record = {
        "name": "p1-score",
        "type": "command",
        "status": "Completed",
        "parent_job_name": "p1",
        "log_dir": "/ws/jobs/p1-score/logs",
        "pipeline": {"step": "score", "component": "heart_score:1", "command": "python score.py --x 1"},
    }
    assert text(show_lines(record)) == [
        "Completed  step job p1-score",
        "  pipeline   p1",
        "  step       score (heart_score:1)",
        "  command    python score.py --x 1",
        "  log        /ws/jobs/p1-score/logs/user/std_log.txt",
    ]
    assert not is_pipeline_record({"type": "batch_scoring", "status": "Completed"})
