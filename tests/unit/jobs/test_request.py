"""JobRequest.from_words: the command line's words as one typed request, in process (no workspace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchctl.errors import SpecError
from batchctl.jobs.request import JobRequest

INVOCATION = """\
endpoint: heart
deployment: blue
name: from-file
experiment_name: file-exp
inputs:
  data:
    type: uri_file
    path: /data/a.csv
outputs:
  score:
    path: /out/file
mini_batch_size: 2
error_threshold: 4
retry_settings:
  max_retries: 1
  timeout: 10
tags:
  team: file
  kept: yes-file
description: from the file
"""


@pytest.fixture
def invocation(tmp_path: Path) -> str:
    path = tmp_path / "job.yml"
    path.write_text(INVOCATION)
    return str(path)


def test_flags_win_over_set_which_wins_over_the_file(invocation: str) -> None:
    request = JobRequest.from_words(
        file=invocation,
        settings={"mini_batch_size": 9, "instance_count": None},
        sets=["mini_batch_size=5", "error_threshold=7", "retry_settings.timeout=20"],
        tags=["team=cli"],
    )
    assert (request.endpoint, request.deployment, request.job_name, request.experiment_name) == (
        "heart",
        "blue",
        "from-file",
        "file-exp",
    )
    assert (request.input, request.input_type, request.output_path) == ("/data/a.csv", "uri_file", "/out/file")
    overrides = request.overrides.model_dump(exclude_none=True)
    assert overrides == {
        "mini_batch_size": 9,  # the flag
        "error_threshold": 7,  # --set over the file
        "retry_settings": {"max_retries": 1, "timeout": 20},  # merged field by field
    }
    assert request.tags == {"team": "cli", "kept": "yes-file"}
    assert request.description == "from the file"


def test_command_line_names_win_over_the_file_and_set_io_over_both(invocation: str) -> None:
    request = JobRequest.from_words(
        file=invocation,
        endpoint="other",
        job_name="from-cli",
        input="/cli/in",
        sets=["inputs.data.path=/set/in", "inputs.data.type=uri_folder", "outputs.score.path=/set/out"],
    )
    assert (request.endpoint, request.job_name) == ("other", "from-cli")
    assert (request.input, request.input_type, request.output_path) == ("/set/in", "uri_folder", "/set/out")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ({"input": "/d"}, "no endpoint to invoke"),
        ({"endpoint": "e"}, "--input is required"),
        ({"endpoint": "e", "input": "/d", "input_type": "mltable"}, "--input-type: 'mltable' is not supported"),
        ({"endpoint": "e", "input": "/d", "sets": ["error_threshold=x"], "settings": {"mini_batch_size": 0}}, "--set:"),
        ({"endpoint": "e", "input": "/d", "settings": {"mini_batch_size": 0}}, "options: mini_batch_size:"),
        ({"endpoint": "e", "input": "/d", "job_name": "bad name", "tags": ["x"]}, "job name: name 'bad name'"),
        ({"endpoint": "e", "input": "/d", "tags": ["x"]}, "--tags: 'x' must look like key=value"),
    ],
)
def test_the_first_mistake_is_the_one_reported(words: dict, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        JobRequest.from_words(**words)
    assert caught.value.message.startswith(message), caught.value.message
