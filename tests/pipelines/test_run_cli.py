"""Pipelines through the CLI as Azure's scripts drive them: `component create`, `deployment create` of a
`type: pipeline` deployment, `endpoint invoke -f inputs.yml` with a literal input, `job list
--parent-job-name`, `job show`, `job download --output-name`, `job create -f pipeline-job.yml` and a
deployment made from that job (`--set job_definition=azureml:<job>`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.models import cached_heart_model

PREPARE = """\
import argparse, pathlib
import pandas as pd
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--out")
a = p.parse_args()
for f in sorted(pathlib.Path(a.data).glob("*.csv")):
    df = pd.read_csv(f)
    df[df["age"] >= 40].to_csv(pathlib.Path(a.out) / f.name, index=False)
print("prepared", flush=True)
"""

SCORE = """\
import argparse, pathlib
import mlflow.pyfunc
import pandas as pd
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--model"); p.add_argument("--score_mode"); p.add_argument("--scores")
a = p.parse_args()
model = mlflow.pyfunc.load_model(a.model)
df = pd.concat([pd.read_csv(f) for f in sorted(pathlib.Path(a.data).glob("*.csv"))], ignore_index=True)
pred = model.predict(df[["age", "chol", "thal"]])
out = df.assign(prediction=pred) if a.score_mode == "append" else pd.DataFrame({"prediction": pred})
out.to_csv(pathlib.Path(a.scores) / "scores.csv", index=False)
print(f"scored {len(out)} rows ({a.score_mode})", flush=True)
"""


def dump(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_example(root: Path) -> Path:
    """Azure's batch-scoring-with-preprocessing, shrunk: two command components and a pipeline."""
    (root / "components" / "prepare" / "src").mkdir(parents=True)
    (root / "components" / "prepare" / "src" / "prepare.py").write_text(PREPARE)
    (root / "components" / "score" / "src").mkdir(parents=True)
    (root / "components" / "score" / "src" / "score.py").write_text(SCORE)
    dump(
        root / "components" / "prepare" / "prepare.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
            "name": "heart_prepare",
            "version": 1,
            "type": "command",
            "inputs": {"data": {"type": "uri_folder"}},
            "outputs": {"prepared_data": {"type": "uri_folder"}},
            "code": "src",
            "command": "python prepare.py --data ${{inputs.data}} --out ${{outputs.prepared_data}}",
        },
    )
    dump(
        root / "components" / "score" / "score.yml",
        {
            "name": "heart_score",
            "version": 1,
            "type": "command",
            "inputs": {
                "data": {"type": "uri_folder"},
                "model": {"type": "mlflow_model"},
                "score_mode": {"type": "string", "default": "append"},
            },
            "outputs": {"scores": {"type": "uri_folder"}},
            "code": "src",
            "command": "python score.py --data ${{inputs.data}} --model ${{inputs.model}} "
            "--score_mode ${{inputs.score_mode}} --scores ${{outputs.scores}}",
        },
    )
    dump(
        root / "pipeline.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json",
            "type": "pipeline",
            "name": "heart_batch_scoring",
            "inputs": {"input_data": {"type": "uri_folder"}, "score_mode": {"type": "string", "default": "append"}},
            "outputs": {"scores": {"type": "uri_folder", "mode": "upload"}},
            "jobs": {
                "preprocess_job": {
                    "type": "command",
                    "component": "azureml:heart_prepare@latest",
                    "inputs": {"data": "${{parent.inputs.input_data}}"},
                    "outputs": {"prepared_data": None},
                },
                "score_job": {
                    "type": "command",
                    "component": "components/score/score.yml",
                    "inputs": {
                        "data": "${{parent.jobs.preprocess_job.outputs.prepared_data}}",
                        "model": {"path": "azureml:heart-classifier@latest", "type": "mlflow_model"},
                        "score_mode": "${{parent.inputs.score_mode}}",
                    },
                    "outputs": {"scores": {"mode": "upload", "path": "${{parent.outputs.scores}}"}},
                },
            },
        },
    )
    dump(root / "endpoint.yml", {"name": "heart-pipe", "auth_mode": "aad_token"})
    dump(
        root / "deployment.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json",
            "name": "heart-prepros",
            "endpoint_name": "heart-pipe",
            "type": "pipeline",
            "component": "pipeline.yml",
            "settings": {"continue_on_step_failure": False, "default_compute": "batch-cluster"},
        },
    )
    return root


def write_data(folder: Path) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "age": rng.uniform(30, 80, 30).round(1),
            "chol": rng.uniform(120, 400, 30).round(2),
            "thal": rng.choice(["normal", "fixed", "reversible"], 30),
        }
    )
    folder.mkdir(parents=True)
    frame.to_csv(folder / "heart.csv", index=False)
    return frame


@pytest.fixture
def example(cli: Any, tmp_path: Path, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_example(tmp_path / "example")
    model = cached_heart_model(pytestconfig, tmp_path_factory)
    for args in (
        ("model", "create", "--name", "heart-classifier", "--type", "mlflow_model", "--path", str(model)),
        ("component", "create", "-f", str(root / "components" / "prepare" / "prepare.yml")),
        ("compute", "create", "-n", "batch-cluster", "--type", "amlcompute", "--max-instances", "2"),
        ("endpoint", "create", "-n", "heart-pipe", "-f", str(root / "endpoint.yml")),
        ("deployment", "create", "--endpoint-name", "heart-pipe", "-f", str(root / "deployment.yml"), "--set-default"),
    ):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
    return root


def expected_scores(frame: Any, pytestconfig: pytest.Config, factory: pytest.TempPathFactory) -> Any:
    import mlflow.pyfunc

    kept = frame[frame["age"] >= 40].reset_index(drop=True)
    model = mlflow.pyfunc.load_model(str(cached_heart_model(pytestconfig, factory)))
    return kept.assign(prediction=model.predict(kept[["age", "chol", "thal"]]))


@pytest.mark.timeout(300)
def test_invoke_a_pipeline_deployment_with_an_inputs_file(
    cli: Any, example: Path, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import pandas as pd

    frame = write_data(example / "data" / "unlabeled")
    dump(
        example / "inputs.yml",
        {"inputs": {"input_data": {"type": "uri_folder", "path": "data/unlabeled"}, "score_mode": "append"}},
    )
    result = cli("endpoint", "invoke", "-n", "heart-pipe", "-f", str(example / "inputs.yml"), "--query", "name",
                 "-o", "tsv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    job = result.stdout.strip()
    assert "step score_job" in result.stderr  # each step's changes, as they happen
    children = cli("job", "list", "--parent-job-name", job, "--query", "[].name", "-o", "tsv")
    assert children.stdout.split() == [f"{job}-preprocess_job", f"{job}-score_job"]
    # as on Azure, the steps are not top-level jobs: `job list` and the endpoint's jobs show the pipeline
    assert cli("job", "list", "--query", "[].name", "-o", "tsv").stdout.split() == [job]
    assert cli("endpoint", "list-jobs", "-n", "heart-pipe", "--query", "[].name", "-o", "tsv").stdout.split() == [job]
    shown = json.loads(cli("job", "show", "-n", job).stdout)
    assert shown["type"] == "pipeline" and shown["status"] == "Completed"
    assert [(s["name"], s["status"]) for s in shown["pipeline"]["steps"]] == [
        ("preprocess_job", "Completed"),
        ("score_job", "Completed"),
    ]
    assert shown["inputs"]["score_mode"] == "append"
    step = json.loads(cli("job", "show", "-n", f"{job}-score_job").stdout)
    assert step["parent_job_name"] == job and "--score_mode append" in step["pipeline"]["command"]
    down = cli("job", "download", "--name", job, "--output-name", "scores", "--download-path", str(example / "dl"))
    assert down.exit_code == 0, down.stderr
    got = pd.read_csv(example / "dl" / "named-outputs" / "scores" / "scores.csv")
    want = expected_scores(frame, pytestconfig, tmp_path_factory)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # the outputs of a completed job are never overwritten: the same output path again is refused
    published = shown["pipeline"]["outputs"]["scores"]["url"]
    sets = ("--set", f"outputs.scores.path={published}", "--set", "inputs.score_mode.value=predictions_only")
    again = cli("endpoint", "invoke", "-n", "heart-pipe", "-f", str(example / "inputs.yml"), *sets)
    assert again.exit_code == 5, again.stderr
    assert "is not empty; batchctl never overwrites outputs" in again.stderr
    # a model deployment's options are refused, not ignored
    model_flag = cli("endpoint", "invoke", "-n", "heart-pipe", "--input", str(example / "data"))
    assert (model_flag.exit_code, model_flag.stderr.splitlines()[0]) == (
        3,
        "Error: --input is for model deployments; this is a pipeline deployment",
    )


@pytest.mark.timeout(300)
def test_job_create_then_a_deployment_from_the_job(cli: Any, example: Path, tmp_path: Path) -> None:
    import pandas as pd

    write_data(example / "data" / "unlabeled")
    write_data(example / "data" / "other")
    dump(
        example / "pipeline-job.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
            "type": "pipeline",
            "display_name": "heart-scoring-job",
            "experiment_name": "heart-pipe",
            "compute": "batch-cluster",
            "component": "pipeline.yml",
            "inputs": {
                "input_data": {"type": "uri_folder", "path": "data/unlabeled"},
                "score_mode": "predictions_only",
            },
        },
    )
    result = cli("job", "create", "-f", str(example / "pipeline-job.yml"), "--set",
                 f"inputs.input_data.path={example / 'data' / 'other'}", "--query", "name", "-o", "tsv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    job = result.stdout.strip()
    record = json.loads(cli("job", "show", "-n", job).stdout)
    assert record["inputs"]["input_data"]["path"] == str(example / "data" / "other")
    dump(
        example / "deployment-from-job.yml",
        {
            "name": "heart-from-job",
            "endpoint_name": "heart-pipe",
            "type": "pipeline",
            "job_definition": "azureml:job_name_placeholder",
            "settings": {"continue_on_step_failure": False, "default_compute": "batch-cluster"},
        },
    )
    made = cli("deployment", "create", "--endpoint-name", "heart-pipe", "--set", f"job_definition=azureml:{job}",
               "-f", str(example / "deployment-from-job.yml"))  # fmt: skip
    assert made.exit_code == 0, made.stderr
    # the deployment runs the job's pipeline with the job's inputs unless the invocation gives others
    ran = cli("endpoint", "invoke", "-n", "heart-pipe", "-d", "heart-from-job", "--query", "name", "-o", "tsv")
    assert ran.exit_code == 0, ran.stderr
    second = ran.stdout.strip()
    down = cli("job", "download", "-n", second, "--output-name", "scores", "--download-path", str(tmp_path / "d"))
    assert down.exit_code == 0, down.stderr
    scores = pd.read_csv(tmp_path / "d" / "named-outputs" / "scores" / "scores.csv")
    assert list(scores.columns) == ["prediction"]  # the job's literal score_mode: predictions_only
    # an unknown job is one line, exit 4, and nothing is created
    missing = cli("deployment", "create", "--endpoint-name", "heart-pipe", "--set", "job_definition=azureml:nope",
                  "--set", "name=other", "-f", str(example / "deployment-from-job.yml"))  # fmt: skip
    assert (missing.exit_code, missing.stderr) == (
        4,
        "Error: job_definition: job 'nope' not found\nHint: list jobs with `batchctl job list`\n",
    )


@pytest.mark.timeout(300)
def test_hello_batch_job_with_a_registry_environment(cli: Any, tmp_path: Path) -> None:
    """Azure's hello-batch pipeline-job.yml, unchanged but for the names: its environment is a registry URI."""
    root = tmp_path / "hello"
    (root / "hello-component" / "src").mkdir(parents=True)
    (root / "hello-component" / "src" / "hello.py").write_text('print("hello world!")\n')
    dump(
        root / "hello-component" / "hello.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json",
            "name": "hello_batch",
            "display_name": "Hello Batch component",
            "version": 1,
            "type": "pipeline",
            "jobs": {
                "main_job": {
                    "type": "command",
                    "component": {
                        "code": "src",
                        "environment": "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
                        "command": "python hello.py",
                    },
                }
            },
        },
    )
    dump(
        root / "pipeline-job.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json",
            "type": "pipeline",
            "experiment_name": "hello-pipeline-batch",
            "display_name": "hello-pipeline-batch-job",
            "compute": "batch-cluster",
            "component": "hello-component/hello.yml",
        },
    )
    assert cli("compute", "create", "-n", "batch-cluster", "--type", "amlcompute").exit_code == 0
    result = cli("job", "create", "-f", str(root / "pipeline-job.yml"), "--env-manager", "local", "--query", "name",
                 "-o", "tsv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    job = result.stdout.strip()
    (main,) = json.loads(cli("job", "list", "--parent-job-name", job).stdout)
    assert main["status"] == "Completed" and main["environment"]["used"] == "local"
    log = Path(main["log_dir"]) / "user" / "std_log.txt"
    assert log.read_text() == "hello world!\n"
    streamed = cli("job", "stream", "-n", job)
    assert streamed.exit_code == 0 and "[main_job] hello world!" in streamed.stdout
    assert streamed.stdout.endswith(f"job {job}: Completed - 1 steps: main_job Completed\n")
    rerun = cli("job", "rerun", "-n", job)
    assert (rerun.exit_code, rerun.stderr.splitlines()[0]) == (
        5,
        f"Error: job '{job}' is a pipeline job: `job rerun` is for batch scoring jobs",
    )
