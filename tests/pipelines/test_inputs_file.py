"""One reader of a pipeline invocation's inputs (`endpoint invoke -f inputs.yml --set ...`):
jobs/pipelines/invoke.read_inputs_file + apply_io_sets. As az ml reads them (azext_mlv2 batch_endpoint._parse_inputs):
a bare literal in the file is a literal; `{type: string, default: append}` is a literal; `--set
inputs.<x>.type=string inputs.<x>.default=append` (the form Azure's docs write) is a literal, in either order;
`--set inputs.<x>.value=v` (or `.default=v`) over a bare literal replaces it. Unlike az ml, which replaces the
file's whole `inputs:` with --set's, the file's other inputs stay (docs/pipelines.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchctl.errors import SpecError
from batchctl.jobs.pipelines.invoke import apply_io_sets, read_inputs_file


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "inputs.yml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("sets", "expected"),
    [
        (["inputs.score_mode.value=predictions_only"], "predictions_only"),
        (["inputs.score_mode.default=predictions_only"], "predictions_only"),
        (["inputs.score_mode=predictions_only"], "predictions_only"),
        (["inputs.score_mode.type=string", "inputs.score_mode.default=predictions_only"], "predictions_only"),
        (["inputs.score_mode.default=predictions_only", "inputs.score_mode.type=string"], "predictions_only"),
        (["inputs.score_mode.value=true"], True),  # a YAML scalar: typed
        ([], "append"),
    ],
)
def test_set_over_a_bare_literal(tmp_path: Path, sets: list[str], expected: object) -> None:
    file = _file(tmp_path, "inputs:\n  input_data: {type: uri_folder, path: data}\n  score_mode: append\n")
    inputs, outputs = read_inputs_file(file)
    assert apply_io_sets(inputs, outputs, sets) == []
    assert inputs == {"input_data": {"type": "uri_folder", "path": str(tmp_path / "data")}, "score_mode": expected}


def test_a_literal_written_as_azure_docs_write_it(tmp_path: Path) -> None:
    file = _file(tmp_path, "inputs:\n  score_mode:\n    type: string\n    default: append\n  rows: 3\n")
    inputs, outputs = read_inputs_file(file)
    assert inputs == {"score_mode": "append", "rows": 3}
    apply_io_sets(inputs, outputs, ["inputs.score_mode.default=summary", "outputs.scores.path=out"])
    assert inputs == {"score_mode": "summary", "rows": 3}
    assert outputs == {"scores": {"path": "out"}}


def test_an_unknown_part_of_an_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"^--set: inputs\.x\.mod: use inputs\.<name>\.value, \.default, \.path"):
        apply_io_sets({}, {}, ["inputs.x.mod=1"])


def test_azure_docs_set_form_through_the_cli(cli: Any, tmp_path: Path) -> None:
    """`endpoint invoke --set inputs.greeting.type=string inputs.greeting.default=hey`: one --set, two values,
    as Azure's docs write it, over an inputs file whose literal is bare."""
    from .test_deployment_component_path import _deploy, _project

    project = _project(tmp_path / "project")
    _deploy(cli, project)
    file = _file(tmp_path, "inputs:\n  greeting: hello\n")
    sets = ("--set", "inputs.greeting.type=string", "inputs.greeting.default=hey")
    result = cli("endpoint", "invoke", "-n", "hello", "-f", file, *sets, "--query", "name", "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(cli("job", "show", "-n", f"{result.stdout.strip()}-hello").stdout)
    assert (Path(shown["outputs"]["out"]["path"]) / "greeting.txt").read_text().strip() == "hey"
