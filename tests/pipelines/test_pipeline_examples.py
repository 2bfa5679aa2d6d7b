"""The fixture trees in the forms of Azure's three batch pipeline examples (fixtures/README.md) parse and
bind, with the assets registered as each example's deploy-and-run.sh registers them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from batchctl.resources.pipelines import BoundInput, BoundOutput, bind_pipeline, render_command
from batchctl.specs.component import PipelineComponentSpec, load_component, load_pipeline_job
from batchctl.workspace import Workspace


def _values(step, paths):
    """What a runner would give render_command: literals as text, paths as given, step outputs' folders."""
    out = {}
    for name, value in step.inputs.items():
        if value.kind == "literal":
            out[name] = str(value.value)
        elif value.kind == "path":
            out[name] = value.uri
        elif value.kind == "step_output":
            out[name] = paths[f"{value.step}.{value.output}"]
        else:
            out[name] = None
    return out


def test_the_scoring_example_binds_as_a_pipeline_job_with_set(scoring_assets, ok):
    ok("component", "create", "-f", str(scoring_assets / "components" / "score" / "score.yml"))
    ws = Workspace.open()
    job = load_pipeline_job(scoring_assets / "pipeline-job.yml", ["inputs.input_data.path=data/unlabeled"])
    bound = bind_pipeline(ws, job, {})
    prep, score = bound.steps
    model = ok("model", "show", "-n", "heart-classifier")
    transforms = ok("model", "show", "-n", "heart-transforms")
    assert (prep.name, prep.component_name, prep.component_version) == ("preprocess_job", "heart_prep", "1")
    assert prep.inputs["data"] == BoundInput("path", "uri_folder", uri=str(scoring_assets / "data" / "unlabeled"))
    assert prep.inputs["transformations"] == BoundInput("path", "custom_model", uri=transforms["path"])
    assert score.inputs["model"] == BoundInput("path", "mlflow_model", uri=model["path"])
    assert score.inputs["score_mode"] == BoundInput("literal", "string", value="append")
    assert score.outputs == {"scores": BoundOutput("uri_folder", "upload", "scores")}
    assert bound.settings.default_compute == "batch-cluster"
    # the registered component's code is its snapshot in the workspace; the file component's is its folder
    assert prep.code == Path(ok("component", "show", "-n", "heart_prep")["path"]) / "code" / "src"
    assert score.code == scoring_assets / "components" / "score" / "src"
    assert prep.environment is not None and prep.environment["id"] == "azureml:heart-env:1"
    assert "scikit-learn" in prep.environment["requirements"]
    paths = {"preprocess_job.prepared_data": "/w/prepared"}
    assert render_command(
        prep, _values(prep, paths), {"prepared_data": "/w/prepared", "transformations_output": "/w/t"}
    ) == (
        f"python prep.py --data_path {scoring_assets / 'data' / 'unlabeled'} "
        f"--transformations_path {transforms['path']} --categorical_encoding ordinal "
        "--prepared_data_path /w/prepared --transformations_output_path /w/t"
    )
    assert render_command(score, _values(score, paths), {"scores": "/w/scores"}) == (
        f"python score.py --model_path {model['path']} --data_path /w/prepared --score_mode append "
        "--scores_path /w/scores"
    )


def test_the_scoring_example_binds_as_a_deployment_with_its_invocation_file(scoring_assets, ok):
    ok("component", "create", "-f", str(scoring_assets / "pipeline.yml"))
    ws = Workspace.open()
    spec = load_component(scoring_assets / "pipeline.yml")
    assert isinstance(spec, PipelineComponentSpec)
    invocation = yaml.safe_load((scoring_assets / "inputs.yml").read_text())
    invocation["inputs"]["input_data"]["path"] = str(scoring_assets / "data" / "unlabeled")
    invocation["inputs"]["score_mode"]["default"] = "summary"
    bound = bind_pipeline(ws, spec, invocation["inputs"], invocation["outputs"])
    assert bound.steps[1].inputs["score_mode"] == BoundInput("literal", "string", value="summary")
    assert bound.outputs == {"scores": BoundOutput("uri_folder", "upload", "scores")}


def test_the_hello_example_binds_its_inline_step_with_the_registry_environment(fx, ok):
    record = ok("component", "create", "-f", str(fx / "hello" / "hello-component" / "hello.yml"))
    assert (record["id"], record["type"]) == ("azureml:hello_pipeline:1", "pipeline")
    ws = Workspace.open()
    bound = bind_pipeline(ws, load_pipeline_job(fx / "hello" / "pipeline-job.yml"), {})
    (main,) = bound.steps
    assert (main.name, main.component_name, main.inputs, main.outputs) == ("main_job", "azureml_anonymous", {}, {})
    assert render_command(main, {}, {}) == "python hello.py"
    assert main.environment is not None
    assert main.environment["source"] == "registry environment sklearn-1.5"
    assert bound.name == "hello-pipeline-job"
    # the registered pipeline's inline step: its code snapshotted with it
    deployed = bind_pipeline(ws, load_deployed(ws, "azureml:hello_pipeline@latest"), {})
    assert deployed.steps[0].code == Path(record["path"]) / "steps" / "main_job" / "src"
    assert (deployed.steps[0].code / "hello.py").is_file()
    assert deployed.steps[0].definition_sha256 == main.definition_sha256


def load_deployed(ws, ref):
    from batchctl.resources.pipelines import pipeline_from_deployment

    return pipeline_from_deployment(ws, {"name": "hello-dpl", "component": ref})


def test_the_training_example_binds_both_promotion_forms_and_the_bare_block(fx, ok):
    folder = fx / "training"
    ok("environment", "create", "-f", str(folder / "env" / "heart-env.yml"))
    ok("data", "create", "--name", "heart-train", "--type", "uri_folder", "--path", str(folder / "data" / "unlabeled"))
    pipeline = ok("component", "create", "-f", str(folder / "pipeline-ordinal" / "pipeline.yml"))
    listed = {(r["name"], r["version"]) for r in ok("component", "list")}
    assert listed == {("heart-train-pipeline", "1"), ("heart_prep", "1"), ("heart_train", "1")}
    assert {s["component"] for s in pipeline["spec"]["jobs"].values()} == {
        "azureml:heart_prep:1",
        "azureml:heart_train:1",
    }
    ws = Workspace.open()
    job = load_pipeline_job(
        folder / "pipeline-ordinal" / "pipeline-job.yml", ["inputs.input_data.path=azureml:heart-train@latest"]
    )
    bound = bind_pipeline(ws, job, {})
    prep, train = bound.steps
    assert prep.inputs["data"].uri == str(folder / "data" / "unlabeled")  # the data asset's path
    assert prep.outputs["transformations_output"].promoted_to == "prepare_transformations"  # the bare form
    assert prep.outputs["prepared_data"].promoted_to is None
    assert {n: o.promoted_to for n, o in train.outputs.items()} == {
        "model": "model",
        "evaluation_results": "evaluation_results",
    }
    assert train.inputs["register_best_model"] == BoundInput("literal", "boolean", value=False)
    assert train.inputs["eval_size"] == BoundInput("literal", "number", value=0.3)
    text = render_command(
        train, _values(train, {"preprocess_job.prepared_data": "/p"}), {"model": "/m", "evaluation_results": "/e"}
    )
    assert text == (
        "python train.py --data_path /p --target_column target --eval_size 0.3 --register_best_model False "
        "--registered_model_name inputs.registered_model_name --model /m --evaluation_results /e"
    )


def test_a_deployment_component_as_a_file_inline_or_reference(fx, ok):
    from batchctl.errors import SpecError
    from batchctl.resources.pipelines import pipeline_from_deployment

    hello = fx / "hello" / "hello-component"
    ws = Workspace.open()
    by_file = pipeline_from_deployment(ws, {"name": "d", "component": str(hello / "hello.yml")})
    inline = yaml.safe_load((hello / "hello.yml").read_text())
    inline["jobs"]["main_job"]["component"]["code"] = str(hello / "src")
    by_inline = pipeline_from_deployment(ws, {"name": "d", "component": inline})
    ok("component", "create", "-f", str(hello / "hello.yml"))
    by_ref = pipeline_from_deployment(ws, {"name": "d", "component": "azureml:hello_pipeline:1"})
    digests = {bind_pipeline(ws, spec, {}).steps[0].definition_sha256 for spec in (by_file, by_inline, by_ref)}
    assert len(digests) == 1  # the same component, from a file, inline, or registered (its code snapshotted)
    with pytest.raises(SpecError) as info:
        pipeline_from_deployment(ws, {"name": "d", "component": "azureml:nothere@latest"})
    assert info.value.message == "d: component: component 'nothere' is not registered in this workspace"


def test_the_invocation_file_reads_literals_paths_and_set(fx, tmp_path):
    from batchctl.errors import SpecError
    from batchctl.jobs.pipelines.invoke import apply_io_sets, read_inputs_file

    folder = fx / "scoring"
    inputs, outputs = read_inputs_file(str(folder / "inputs.yml"))
    assert apply_io_sets(inputs, outputs, ["inputs.score_mode.value=summary"]) == []
    assert inputs == {
        "input_data": {"type": "uri_folder", "path": str(folder / "data" / "unlabeled")},
        "score_mode": "summary",
    }
    assert outputs == {"scores": {"type": "uri_folder", "mode": "upload"}}
    bad = tmp_path / "bad.yml"
    bad.write_text("inputs: {}\nmini_batch_size: 3\n")
    with pytest.raises(SpecError, match=r"^bad\.yml: mini_batch_size: not a field of an inputs file"):
        read_inputs_file(str(bad))
