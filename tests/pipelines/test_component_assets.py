"""`batchctl component create/show/list/delete`: versioned assets like models, code snapshotted at create
time, `azureml:name:version` / `@latest` resolution, and a bad spec refused with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchctl.resources.components import resolve_component_ref
from batchctl.workspace import Workspace


def registry_bytes(home: Path) -> bytes | None:
    path = home / "registry.json"
    return path.read_bytes() if path.exists() else None


COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: greet
display_name: Greeter
description: Says hello.
tags: {team: risk}
type: command
inputs:
  who: {type: string, default: world}
outputs:
  out: {type: uri_folder}
code: src
command: python greet.py --who ${{inputs.who}} --out ${{outputs.out}}
"""


@pytest.fixture
def component(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "greet.py").write_text("print('hello')\n")
    path = tmp_path / "greet.yml"
    path.write_text(COMPONENT)
    return path


def test_create_show_list_delete(component, ok, cli):
    created = ok("component", "create", "-f", str(component))
    assert {k: created[k] for k in ("name", "version", "id", "type", "display_name", "description", "tags")} == {
        "name": "greet",
        "version": "1",
        "id": "azureml:greet:1",
        "type": "command",
        "display_name": "Greeter",
        "description": "Says hello.",
        "tags": {"team": "risk"},
    }
    assert ok("component", "show", "-n", "greet") == created
    assert ok("component", "show", "-n", "greet", "--label", "latest") == created
    assert [r["id"] for r in ok("component", "list")] == ["azureml:greet:1"]
    result = cli("component", "delete", "-n", "greet", "--version", "1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert ok("component", "list") == []
    assert not Path(created["path"]).exists()


def test_versions_auto_increment_and_the_same_content_is_a_no_op(component, ok, tmp_path):
    first = ok("component", "create", "-f", str(component))
    assert ok("component", "create", "-f", str(component)) == first
    (tmp_path / "src" / "greet.py").write_text("print('hello again')\n")
    second = ok("component", "create", "-f", str(component))
    assert second["version"] == "2"
    third = ok("component", "create", "-f", str(component), "--set", "display_name=Greeter 3", "--version", "7")
    assert (third["version"], third["display_name"]) == ("7", "Greeter 3")
    assert [r["version"] for r in ok("component", "list", "-n", "greet")] == ["1", "2", "7"]
    ws = Workspace.open()
    assert resolve_component_ref(ws, "azureml:greet:2").source == "azureml:greet:2"
    assert resolve_component_ref(ws, "azureml:greet@latest").source == "azureml:greet:7"
    assert ok("component", "show", "-n", "greet", "-v", "1")["content_hash"] == first["content_hash"]


def test_the_code_folder_is_snapshotted_at_create_time(component, ok, tmp_path):
    record = ok("component", "create", "-f", str(component))
    (tmp_path / "src" / "greet.py").write_text("print('changed after create')\n")
    spec = resolve_component_ref(Workspace.open(), "azureml:greet:1")
    assert spec.code == str(Path(record["path"]) / "code" / "src")
    assert (Path(spec.code) / "greet.py").read_text() == "print('hello')\n"


def test_a_version_is_immutable(component, ok, cli, isolation, tmp_path):
    ok("component", "create", "-f", str(component), "--version", "3")
    before = registry_bytes(isolation)
    (tmp_path / "src" / "greet.py").write_text("print('other')\n")
    result = cli("component", "create", "-f", str(component), "--version", "3")
    assert (result.exit_code, result.stdout) == (5, "")
    assert result.stderr.splitlines()[0] == (
        "Error: component 'greet' version '3' exists with other content; versions are immutable"
    )
    assert registry_bytes(isolation) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: greet\ntype: command\ncommand: [unclosed\n", "Error: greet.yml: invalid YAML at line 4"),
        (COMPONENT.replace("display_name:", "display_nam:"), "Error: greet.yml: display_nam: unknown field"),
        (COMPONENT.replace("code: src", "code: nowhere"), "Error: greet.yml: code: '"),
        (COMPONENT.replace("type: string", "type: text"), "Error: greet.yml: inputs.who.type: Input should be"),
        (COMPONENT.replace("${{inputs.who}}", "${{inputs.whom}}"), "Error: greet.yml: command: ${{inputs.whom}}"),
        (COMPONENT.replace("name: greet\n", ""), "Error: greet.yml: name: field required"),
        (COMPONENT + "environment: azureml:missing-env@latest\n", "Error: greet.yml: environment: environment"),
    ],
    ids=["yaml", "unknown-field", "missing-code", "bad-type", "undeclared-ref", "no-name", "unknown-env"],
)
def test_a_bad_spec_is_one_line_exit_3_and_nothing_is_written(component, cli, isolation, text, message):
    component.write_text(text)
    result = cli("component", "create", "-f", str(component))
    assert (result.exit_code, result.stdout) == (3, "")
    lines = result.stderr.splitlines()
    assert lines[0].startswith(message), result.stderr
    assert len(lines) <= 2 and all(line.startswith(("Error: ", "Hint: ")) for line in lines)
    assert registry_bytes(isolation) is None
    assert not (isolation / "components").exists()


def test_a_pipeline_with_a_bad_step_writes_none_of_its_children(fx, ok, cli, isolation):
    ok("environment", "create", "-f", str(fx / "training" / "env" / "heart-env.yml"))
    before = registry_bytes(isolation)
    pipeline = fx / "training" / "pipeline-ordinal" / "pipeline.yml"
    pipeline.write_text(pipeline.read_text().replace("target_column: target", "target_colum: target"))
    result = cli("component", "create", "-f", str(pipeline))
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        3,
        "Error: pipeline.yml: jobs.train_job.inputs.target_colum: not an input of component 'heart_train' "
        "(its inputs: data, eval_size, register_best_model, registered_model_name, target_column)",
    )
    assert registry_bytes(isolation) == before
    assert not (isolation / "components").exists()


def test_a_component_a_pipeline_uses_cannot_be_deleted(scoring_assets, ok, cli):
    ok("component", "create", "-f", str(scoring_assets / "pipeline.yml"))
    result = cli("component", "delete", "-n", "heart_prep", "--yes")
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        5,
        "Error: component 'heart_prep' version '1' is used by component heart_batch_scoring:1",
    )
    assert cli("component", "delete", "-n", "heart_batch_scoring", "--yes").exit_code == 0
    assert cli("component", "delete", "-n", "heart_prep", "--yes").exit_code == 0


def test_show_of_an_unknown_component_is_exit_4(cli):
    result = cli("component", "show", "-n", "nope")
    assert (result.exit_code, result.stderr.splitlines()[0]) == (4, "Error: component 'nope' not found")


def test_a_pipeline_pins_latest_to_the_version_it_found(scoring_assets, ok):
    record = ok("component", "create", "-f", str(scoring_assets / "pipeline.yml"))
    assert record["spec"]["jobs"]["preprocess_job"]["component"] == "azureml:heart_prep:1"
    assert record["spec"]["jobs"]["score_job"]["component"] == "azureml:heart_score:1"  # its file, registered


def test_a_step_component_whose_version_conflicts_leaves_nothing_behind(fx, ok, cli, isolation):
    """The training pipeline registers its file steps heart_prep, then heart_train version 1; a heart_train
    version 1 with other content exists: heart_prep must not be registered either."""
    folder = fx / "training"
    ok("environment", "create", "-f", str(folder / "env" / "heart-env.yml"))
    train = folder / "components" / "train" / "train.yml"
    other = train.with_name("other.yml")
    other.write_text(train.read_text().replace("--eval_size ${{inputs.eval_size}}", "--eval ${{inputs.eval_size}}"))
    ok("component", "create", "-f", str(other))
    before = registry_bytes(isolation)
    result = cli("component", "create", "-f", str(folder / "pipeline-ordinal" / "pipeline.yml"))
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        5,
        "Error: component 'heart_train' version '1' exists with other content; versions are immutable",
    )
    assert registry_bytes(isolation) == before
    assert sorted(p.name for p in (isolation / "components").iterdir()) == ["heart_train"]
