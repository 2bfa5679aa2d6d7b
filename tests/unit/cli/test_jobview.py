"""cli/_jobview.py on records of every shape: the first error from either shape of `error`, a summary
that fits 10 rows of 80 columns whatever the message's length, the job's short name."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from batchctl.cli._jobview import first_error, short_name, show_lines, summary_lines

NAME = "8225ae42-73ab-4a0b-a214-42ac8f12f2ec"


def record(status: str, error: dict[str, Any] | None, **counts: int) -> dict[str, Any]:
    return {
        "name": NAME,
        "status": status,
        "counts": {"files": 4, "mini_batches": 4, "items_succeeded": 3, "items_failed": 1, **counts},
        "duration_seconds": 2.5,
        "output_file": "/data/scores/predictions.csv",
        "outputs": {"score": {"type": "uri_folder", "path": "azureml://datastores/workspaceblobstore/paths/x/"}},
        "error": error,
    }


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # today's Failed job: the job's reason and the first item's error as one string
        (
            {
                "message": "error_threshold exceeded: 1 failed items > error_threshold 0",
                "exit_code": 1,
                "first_item_error": "ValueError: bad value 42 (batch_driver.py:24)",
            },
            (
                "ValueError: bad value 42 (batch_driver.py:24)",
                "error_threshold exceeded: 1 failed items > error_threshold 0",
            ),
        ),
        # today's Completed job with failed items: the message already reads `Type: message (frame)`
        (
            {
                "message": "ValueError: bad value 42 (batch_driver.py:24)",
                "type": "ValueError",
                "frame": "batch_driver.py:24",
            },
            ("ValueError: bad value 42 (batch_driver.py:24)", None),
        ),
        # the one shape (type, message, frame): the message alone
        (
            {"type": "ValueError", "message": "bad value 42", "frame": "batch_driver.py:24"},
            ("ValueError: bad value 42 (batch_driver.py:24)", None),
        ),
        ({"type": None, "message": "init() failed: no weights", "frame": None}, ("init() failed: no weights", None)),
        ({"type": "KeyError", "message": "'age'", "frame": None}, ("KeyError: 'age'", None)),
        # the one shape, with the first item's error as extras
        (
            {
                "type": None,
                "message": "error_threshold exceeded",
                "frame": None,
                "first_item_error": {"type": "ValueError", "message": "bad value 42", "frame": "d.py:3"},
            },
            ("ValueError: bad value 42 (d.py:3)", "error_threshold exceeded"),
        ),
        # ... or under another key
        (
            {
                "type": None,
                "message": "error_threshold exceeded",
                "frame": None,
                "first_item": {"type": "ValueError", "message": "bad value 42", "frame": "d.py:3"},
            },
            ("ValueError: bad value 42 (d.py:3)", "error_threshold exceeded"),
        ),
        (None, (None, None)),
        ({}, (None, None)),
    ],
)
def test_first_error_from_either_shape(error, expected):
    assert first_error({"error": error}) == expected


def rows(lines: list[list[tuple[str, str | None]]]) -> list[str]:
    return ["".join(text for text, _ in line) for line in lines]


def screen_rows(lines: list[str]) -> int:
    return sum(max(1, math.ceil(len(line) / 80)) for line in lines)


def test_a_message_of_any_length_keeps_the_summary_within_10_rows():
    long = {"type": "ValueError", "message": "x" * 8000, "frame": "batch_driver.py:24"}
    out = rows(summary_lines(record("Failed", {**long, "first_item_error": None, "message": "y" * 5000})))
    assert screen_rows(out) <= 10, out
    out = rows(summary_lines(record("Completed", long)))
    assert screen_rows(out) <= 10, out
    error = next(line for line in out if line.startswith("error"))
    assert re.fullmatch(r"error    ValueError: x+ … x+ \(batch_driver\.py:24\)", error) and len(error) <= 160


def test_a_long_first_error_keeps_its_cause_at_the_end():
    # MLflow's schema error: the data first, the cause last
    message = "Failed to enforce schema of data ' age sex cp " + "35 1 2 146 256 " * 200
    message += "' with schema '['age': long]'. Error: Model is missing inputs ['thal']."
    error = {"type": "MlflowException", "message": message, "frame": None}
    for status in ("Completed", "Failed"):
        out = rows(summary_lines(record(status, error)))
        line = next(line for line in out if line.startswith("error"))
        assert line.startswith("error    MlflowException: Failed to enforce schema of data")
        assert line.endswith("Error: Model is missing inputs ['thal'].") and " … " in line, line
        assert len(line) <= 160
    shown = rows(show_lines({**record("Failed", error), "endpoint_name": "e", "deployment_name": "d"}, None))
    line = next(line for line in shown if line.strip().startswith("error"))
    assert line.endswith("Model is missing inputs ['thal'].") and len(line) <= 320, line


def test_a_failed_job_gives_its_own_hint_and_never_a_resume_that_cannot_work():
    # the output appeared while the job ran (issue 29): a plain resume is refused while the file is there
    hint = f"move that file away and run `batchctl job resume -n {NAME}`, or publish to another folder with "
    hint += f"`batchctl job resume -n {NAME} --output-path <folder>`"
    error = {"type": "OutputExistsError", "message": "output exists", "frame": None, "exit_code": 5, "hint": hint}
    out = rows(summary_lines(record("Failed", error, items_failed=0)))
    assert f"hint     {hint}" in out
    assert not any(line.startswith("next") for line in out), out  # the hint says how to resume
    assert screen_rows(out) <= 10, out
    # a Ray cluster that cannot be reached: start it first, then resume
    hint = "start it (`ray start --head --port=6379` on 127.0.0.1) or point the compute at the cluster's address"
    error = {"type": "BatchctlError", "message": "cannot reach the Ray cluster", "frame": None, "hint": hint}
    out = rows(summary_lines(record("Failed", error, items_failed=0)))
    assert out[-2:] == [f"hint     {hint}", f"next     batchctl job resume -n {NAME}"]
    # resume keeps the job's --keep-columns: a job that failed on them needs a rerun (issue 28 item 10)
    first = "KeyError: --keep-columns: 'id' is not a column of b.csv"
    error = {"type": None, "message": "error_threshold exceeded", "frame": None, "first_item_error": first}
    out = rows(summary_lines(record("Failed", error)))
    assert out[-2:] == [
        f"next     batchctl job errors -n {NAME}",
        f"         batchctl job rerun -n {NAME} --set keep_columns=<columns>",
    ]
    shown = rows(show_lines({**record("Failed", error), "endpoint_name": "e", "deployment_name": "d"}, None))
    assert f"  continue      batchctl job rerun -n {NAME} --set keep_columns=<columns>" in shown
    assert not any("job resume" in line for line in shown), shown


def test_a_completed_job_with_failed_items_points_to_its_errors():
    out = rows(summary_lines(record("Completed", {"type": "ValueError", "message": "bad", "frame": "d.py:1"})))
    assert out[1:] == [
        "items    3 ok, 1 failed of 4 files",
        "results  /data/scores/predictions.csv",
        "error    ValueError: bad (d.py:1)",
        f"next     batchctl job errors -n {NAME}",
        f"         batchctl job download -n {NAME}",
    ]


def test_without_a_results_file_the_output_uri_is_given():
    data = record("Completed", None, items_failed=0)
    data["output_file"] = None  # summary_only
    assert rows(summary_lines(data))[2] == "results  azureml://datastores/workspaceblobstore/paths/x/"


def test_a_canceled_job_points_to_resume():
    out = rows(summary_lines(record("Canceled", {"message": "job canceled"}, items_failed=0)))
    assert out[0].startswith("Canceled  job ")
    assert not any(line.startswith("error") for line in out)
    assert out[-1] == f"next     batchctl job resume -n {NAME}"


def test_a_dry_run_plan_is_not_summarized():
    assert summary_lines({"dry_run": True, "name": NAME, "files": 3}) is None


@pytest.mark.parametrize(
    ("name", "short"),
    [(NAME, "8225ae42"), ("nightly-scores", "nightly-scores"), ("n" * 40, "n" * 31 + "…")],
)
def test_short_name(name, short):
    assert short_name(name) == short


def test_a_job_handed_to_a_detached_runner_says_where_to_follow_it():
    data = record("Queued", None, items_succeeded=0, items_failed=0, mini_batches=2)
    data["inputs"] = {"input_data": {"type": "uri_folder", "path": "./data"}}
    assert rows(summary_lines(data)) == [
        f"Queued  job {NAME}",
        "input    ./data (4 files, 2 mini-batches)",
        "results  will be /data/scores/predictions.csv",
        f"next     batchctl job stream -n {NAME}",
    ]
