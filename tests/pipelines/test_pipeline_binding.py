"""resources/pipelines.bind_pipeline: every binding form bound, and every mistake refused before anything
runs, as one SpecError line naming the file, the step and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from batchctl.errors import SpecError
from batchctl.resources.pipelines import (
    BoundInput,
    BoundOutput,
    bind_pipeline,
    check_pipeline,
    render_command,
)
from batchctl.specs.component import load_component, load_pipeline_job
from batchctl.workspace import Workspace

PREP = """\
name: prep
type: command
inputs:
  data: {type: uri_folder}
  encoding: {type: string, optional: true, default: ordinal}
  extra: {type: string, optional: true}
  rows: {type: integer, default: 10}
  ratio: {type: number, optional: true}
  flag: {type: boolean, optional: true}
outputs:
  prepared: {type: uri_folder}
  side: {type: uri_folder}
code: src
command: >-
  python prep.py --data ${{inputs.data}} $[[--encoding ${{inputs.encoding}}]] $[[--extra ${{inputs.extra}}]]
  --rows ${{inputs.rows}} $[[--ratio ${{inputs.ratio}}]] $[[--flag ${{inputs.flag}}]]
  --out ${{outputs.prepared}} --side ${{outputs.side}}
"""
SCORE = """\
name: score
type: command
inputs:
  data: {type: uri_folder}
  model: {type: mlflow_model, optional: true}
  mode: {type: string}
outputs:
  scores: {type: uri_folder}
code: src
command: >-
  python score.py --data ${{inputs.data}} $[[--model ${{inputs.model}}]] --mode ${{inputs.mode}}
  --out ${{outputs.scores}}
"""
PIPELINE = """\
name: two_steps
type: pipeline
inputs:
  input_data: {type: uri_folder}
  mode: {type: string, default: append}
  note: {type: string, optional: true}
outputs:
  scores: {type: uri_folder, mode: upload}
jobs:
  prepare:
    type: command
    component: prep.yml
    inputs:
      data: ${{parent.inputs.input_data}}
      extra: ${{parent.inputs.note}}
      ratio: 0.5
    outputs:
      prepared:
  score:
    type: command
    component: score.yml
    inputs:
      data: ${{parent.jobs.prepare.outputs.prepared}}
      mode: ${{parent.inputs.mode}}
    outputs:
      scores:
        path: ${{parent.outputs.scores}}
"""


@pytest.fixture
def tree(tmp_path: Path):
    """write(pipeline_text=PIPELINE, prep=PREP, score=SCORE) -> the pipeline file, its components beside it."""

    def write(pipeline: str = PIPELINE, prep: str = PREP, score: str = SCORE) -> Path:
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / "prep.py").write_text("print('prep')\n")
        (tmp_path / "prep.yml").write_text(prep)
        (tmp_path / "score.yml").write_text(score)
        path = tmp_path / "pipeline.yml"
        path.write_text(pipeline)
        return path

    return write


@pytest.fixture
def ws() -> Workspace:
    return Workspace.open()


def bind(ws: Workspace, path: Path, inputs=None, sets=()):
    return bind_pipeline(ws, load_component(path, list(sets)), inputs if inputs is not None else {"input_data": "data"})


def error_of(ws: Workspace, path: Path, inputs=None, sets=()) -> str:
    with pytest.raises(SpecError) as info:
        bind(ws, path, inputs, sets)
    assert "\n" not in info.value.message
    return info.value.message


def test_every_binding_form_binds_to_its_kind(ws, tree, tmp_path):
    bound = bind(ws, tree(), {"input_data": {"type": "uri_folder", "path": str(tmp_path / "in")}})
    assert [s.name for s in bound.steps] == ["prepare", "score"]
    prepare, score = bound.steps
    assert prepare.inputs == {
        "data": BoundInput("path", "uri_folder", uri=str(tmp_path / "in")),  # ${{parent.inputs.x}}, a path
        "encoding": BoundInput("literal", "string", value="ordinal"),  # the component's default
        "extra": BoundInput("unset", "string"),  # bound to an optional pipeline input nobody gave
        "rows": BoundInput("literal", "integer", value=10),
        "ratio": BoundInput("literal", "number", value=0.5),  # a literal in the pipeline
        "flag": BoundInput("unset", "boolean"),  # optional, not bound
    }
    assert prepare.outputs == {"prepared": BoundOutput("uri_folder"), "side": BoundOutput("uri_folder")}
    assert score.inputs == {
        "data": BoundInput("step_output", "uri_folder", step="prepare", output="prepared"),
        "model": BoundInput("unset", "mlflow_model"),
        "mode": BoundInput("literal", "string", value="append"),  # the pipeline input's default
    }
    assert score.outputs == {"scores": BoundOutput("uri_folder", "upload", promoted_to="scores")}
    assert score.depends_on == ("prepare",)
    assert bound.outputs == {"scores": BoundOutput("uri_folder", "upload", "scores", None)}


def test_the_command_renders_with_the_optional_inputs_set_and_unset(ws, tree):
    prepare = bind(ws, tree()).steps[0]
    values = {"data": "/in", "encoding": "ordinal", "extra": None, "rows": "10", "ratio": "0.5", "flag": None}
    outs = {"prepared": "/out/p", "side": "/out/s"}
    assert render_command(prepare, values, outs) == (
        "python prep.py --data /in --encoding ordinal --rows 10 --ratio 0.5 --out /out/p --side /out/s"
    )
    values.update(extra="x y", flag="True", encoding=None)
    assert render_command(prepare, values, outs) == (
        "python prep.py --data /in --extra x y --rows 10 --ratio 0.5 --flag True --out /out/p --side /out/s"
    )
    with pytest.raises(SpecError, match=r"^step prepare: inputs\.data: is unset"):
        render_command(prepare, {**values, "data": None}, outs)


def test_literals_are_checked_and_converted_to_the_port_type(ws, tree):
    pipeline = PIPELINE.replace("ratio: 0.5", "ratio: '0.25'\n      rows: '7'\n      flag: 'true'")
    prepare = bind(ws, tree(pipeline)).steps[0]
    assert (prepare.inputs["ratio"].value, prepare.inputs["rows"].value, prepare.inputs["flag"].value) == (
        0.25,
        7,
        True,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("ratio: 0.5", "ratio: high"),
            "pipeline.yml: jobs.prepare.inputs.ratio: expected a number, got 'high'",
        ),
        (
            ("ratio: 0.5", "rows: true"),
            "pipeline.yml: jobs.prepare.inputs.rows: expected an integer, got a boolean",
        ),
        (
            ("ratio: 0.5", "flag: maybe"),
            "pipeline.yml: jobs.prepare.inputs.flag: expected a boolean (true or false), got 'maybe'",
        ),
        (
            ("extra: ${{parent.inputs.note}}", "extra: ${{parent.inputs.input_data}}"),
            "pipeline.yml: jobs.prepare.inputs.extra: pipeline input 'input_data' is a uri_folder; "
            "this input takes a string",
        ),
        (
            ("mode: ${{parent.inputs.mode}}", "mode: ${{parent.jobs.prepare.outputs.prepared}}"),
            "pipeline.yml: jobs.score.inputs.mode: prepare.outputs.prepared is a uri_folder; this input takes a string",
        ),
        (
            ("data: ${{parent.inputs.input_data}}", "data: 42"),
            "pipeline.yml: jobs.prepare.inputs.data: a uri_folder input takes a path, not '42'",
        ),
    ],
    ids=["number", "integer-bool", "boolean", "parent-type", "step-output-type", "path-not-literal"],
)
def test_a_type_mismatch_is_one_line_naming_the_step_and_input(ws, tree, change, message):
    assert error_of(ws, tree(PIPELINE.replace(*change))) == message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("      ratio: 0.5", "      ratio: 0.5\n      colour: red"),
            "pipeline.yml: jobs.prepare.inputs.colour: not an input of component 'prep' "
            "(its inputs: data, encoding, extra, flag, ratio, rows)",
        ),
        (
            ("${{parent.jobs.prepare.outputs.prepared}}", "${{parent.jobs.prep.outputs.prepared}}"),
            "pipeline.yml: jobs.score.inputs.data: no step 'prep' in this pipeline (steps: prepare, score)",
        ),
        (
            ("${{parent.jobs.prepare.outputs.prepared}}", "${{parent.jobs.prepare.outputs.result}}"),
            "pipeline.yml: jobs.score.inputs.data: step 'prepare' has no output 'result' (its outputs: prepared, side)",
        ),
        (
            ("${{parent.inputs.mode}}", "${{parent.inputs.moed}}"),
            "pipeline.yml: jobs.score.inputs.mode: no pipeline input 'moed' (its inputs: input_data, mode, note)",
        ),
        (
            ("path: ${{parent.outputs.scores}}", "path: ${{parent.outputs.score}}"),
            "pipeline.yml: jobs.score.outputs.scores: no pipeline output 'score' (its outputs: scores)",
        ),
        (
            ("      mode: ${{parent.inputs.mode}}\n", ""),
            "pipeline.yml: jobs.score.inputs.mode: required input is not bound "
            "(bind it, or give the component a default)",
        ),
        (
            ("component: score.yml", "component: azureml:score@latest"),
            "pipeline.yml: jobs.score.component: component 'score' is not registered in this workspace",
        ),
        (
            ("component: score.yml", "component: nothere.yml"),
            "pipeline.yml: jobs.score.component: 'nothere.yml' does not exist (no such component file)",
        ),
    ],
    ids=[
        "unknown-input",
        "unknown-step",
        "unknown-output",
        "unknown-parent-input",
        "unknown-parent-output",
        "unbound-required",
        "unknown-component-ref",
        "missing-component-file",
    ],
)
def test_a_wrong_binding_is_one_line_naming_the_step_and_field(ws, tree, change, message):
    assert PIPELINE.count(change[0]) == 1
    assert error_of(ws, tree(PIPELINE.replace(*change))) == message


def test_a_cycle_is_named(ws, tree):
    pipeline = PIPELINE.replace("data: ${{parent.inputs.input_data}}", "data: ${{parent.jobs.score.outputs.scores}}")
    assert error_of(ws, tree(pipeline)) == "pipeline.yml: jobs: the steps form a cycle: prepare -> score -> prepare"


def test_a_step_reading_its_own_output_is_a_cycle(ws, tree):
    pipeline = PIPELINE.replace("data: ${{parent.inputs.input_data}}", "data: ${{parent.jobs.prepare.outputs.side}}")
    assert error_of(ws, tree(pipeline)) == "pipeline.yml: jobs: the steps form a cycle: prepare -> prepare"


def test_a_required_pipeline_input_not_given_is_named_with_a_hint(ws, tree):
    with pytest.raises(SpecError) as info:
        bind(ws, tree(), {})
    assert (info.value.message, info.value.hint) == (
        "pipeline.yml: inputs.input_data: required input is not given",
        "give it: --set inputs.input_data.path=...",
    )
    # check_pipeline (component or deployment create) needs no inputs
    assert [s.name for s in check_pipeline(ws, load_component(tree())).steps] == ["prepare", "score"]


def test_an_input_the_pipeline_does_not_declare_is_refused(ws, tree):
    assert error_of(ws, tree(), {"input_data": "d", "inptu": 1}) == (
        "pipeline.yml: inputs.inptu: not an input of the pipeline (its inputs: input_data, mode, note)"
    )


def test_a_literal_input_given_by_the_caller_replaces_the_default(ws, tree):
    bound = bind(ws, tree(), {"input_data": "d", "mode": {"type": "string", "default": "summary"}})
    assert bound.steps[1].inputs["mode"] == BoundInput("literal", "string", value="summary")
    bound = bind(ws, tree(), {"input_data": "d", "mode": "overwrite"})
    assert bound.steps[1].inputs["mode"] == BoundInput("literal", "string", value="overwrite")


def test_a_pipeline_output_no_step_writes_is_refused(ws, tree):
    pipeline = PIPELINE.replace("        path: ${{parent.outputs.scores}}\n", "        mode: upload\n")
    assert error_of(ws, tree(pipeline)) == (
        "pipeline.yml: outputs.scores: no step writes it (bind a step's output: path: ${{parent.outputs.scores}})"
    )


def test_the_command_cannot_name_an_undeclared_input(ws, tree):
    prep = PREP.replace("--rows ${{inputs.rows}}", "--rows ${{inputs.row}}")
    with pytest.raises(SpecError) as info:
        bind(ws, tree(prep=prep))
    assert info.value.message == (
        "prep.yml: command: ${{inputs.row}} names no declared input "
        "(declared: data, encoding, extra, flag, ratio, rows)"
    )


def test_an_unknown_registry_environment_is_one_line(ws, tree):
    prep = PREP + "environment: azureml://registries/azureml/environments/tensorflow-9/labels/latest\n"
    message = error_of(ws, tree(prep=prep))
    assert message.startswith(
        "pipeline.yml: jobs.prepare.component.environment: environment "
        "'azureml://registries/azureml/environments/tensorflow-9/labels/latest' has no local equivalent (known: "
    )


def test_an_unregistered_environment_is_one_line(ws, tree):
    message = error_of(ws, tree(prep=PREP + "environment: azureml:nope@latest\n"))
    assert message == (
        "pipeline.yml: jobs.prepare.component.environment: environment 'nope' is not registered in this workspace"
    )


def test_a_registry_environment_maps_to_its_documented_local_equivalent(ws, tree):
    prep = PREP + "environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest\n"
    env = bind(ws, tree(prep=prep)).steps[0].environment
    assert env is not None
    assert (env["id"], env["requirements"]) == (
        "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
        ["mlflow", "numpy", "pandas", "scikit-learn~=1.5.0", "scipy"],
    )
    assert len(env["key"]) == 64


def test_set_overrides_apply_before_binding(ws, tree):
    bound = bind(ws, tree(), sets=["inputs.mode.default=summary"])
    assert bound.steps[1].inputs["mode"].value == "summary"


def test_definition_sha256_follows_the_code_content_not_its_folder(ws, tree, tmp_path):
    path = tree()
    first = bind(ws, path).steps[0].definition_sha256
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("prep.yml", "score.yml", "pipeline.yml"):
        (moved / name).write_text((tmp_path / name).read_text())
    (moved / "src").mkdir()
    (moved / "src" / "prep.py").write_text("print('prep')\n")
    assert bind(ws, moved / "pipeline.yml").steps[0].definition_sha256 == first
    (moved / "src" / "prep.py").write_text("print('prep, changed')\n")
    assert bind(ws, moved / "pipeline.yml").steps[0].definition_sha256 != first


def test_an_inline_pipeline_job_infers_its_ports_from_its_inputs(ws, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "job.yml").write_text(
        textwrap.dedent(
            """\
            type: pipeline
            display_name: inline
            inputs:
              data: {type: uri_folder, path: ./in}
              n: 3
            outputs:
              out: {mode: upload}
            settings: {continue_on_step_failure: true, default_compute: local}
            jobs:
              only:
                type: command
                component:
                  code: src
                  command: echo ${{inputs.d}} ${{inputs.k}} > ${{outputs.o}}/x
                  inputs: {d: {type: uri_folder}, k: {type: integer}}
                  outputs: {o: {type: uri_folder}}
                inputs: {d: '${{parent.inputs.data}}', k: '${{parent.inputs.n}}'}
                outputs: {o: '${{parent.outputs.out}}'}
            """
        )
    )
    bound = bind_pipeline(ws, load_pipeline_job(tmp_path / "job.yml"), {})
    (only,) = bound.steps
    assert only.inputs == {
        "d": BoundInput("path", "uri_folder", uri=str(tmp_path / "in")),
        "k": BoundInput("literal", "integer", value=3),
    }
    assert only.outputs["o"].promoted_to == "out"
    assert (only.component_name, only.code) == ("azureml_anonymous", tmp_path / "src")
    assert (bound.name, bound.settings.continue_on_step_failure, bound.settings.default_compute) == (
        "inline",
        True,
        "local",
    )


def test_a_step_code_folder_that_is_not_there_is_named(ws, tree, tmp_path):
    path = tree()
    (tmp_path / "src" / "prep.py").unlink()
    (tmp_path / "src").rmdir()
    assert error_of(ws, path) == f"pipeline.yml: jobs.prepare.component.code: '{tmp_path / 'src'}' is not a folder"


def test_definition_sha256_ignores_what_only_names_or_describes_the_component(ws, tree):
    first = bind(ws, tree()).steps[0].definition_sha256
    described = PREP.replace(
        "name: prep\n", "name: prep\nversion: 4\ndisplay_name: Prep\ndescription: d\ntags: {a: b}\n"
    )
    assert bind(ws, tree(prep=described)).steps[0].definition_sha256 == first
    changed = PREP.replace("python prep.py", "python3 prep.py")
    assert bind(ws, tree(prep=changed)).steps[0].definition_sha256 != first
