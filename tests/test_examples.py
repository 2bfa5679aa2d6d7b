"""Every YAML file under examples/ validates with the spec model its `$schema` names, and the bundled
example works end to end with the CLI (as run-demo.sh uses it)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from batchctl.specs import load as spec_load
from batchctl.specs.assets import ComputeSpec, DataSpec, DatastoreSpec, ModelSpec
from batchctl.specs.deployment import DeploymentSpec
from batchctl.specs.endpoint import EndpointSpec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BATCH = EXAMPLES / "endpoints" / "batch"
SCHEMAS = {
    "batchEndpoint.schema.json": ("endpoint", EndpointSpec),
    "modelBatchDeployment.schema.json": ("deployment", DeploymentSpec),
    "batchDeployment.schema.json": ("deployment", DeploymentSpec),
    "data.schema.json": ("data", DataSpec),
    "model.schema.json": ("model", ModelSpec),
    "azureBlob.schema.json": ("datastore", DatastoreSpec),
    "amlCompute.schema.json": ("compute", ComputeSpec),
}
YAML_FILES = sorted(
    p for p in [*EXAMPLES.rglob("*.yml"), *EXAMPLES.rglob("*.yaml")] if not {"model", ".workspace"} & set(p.parts)
)


def _conda_files() -> set[Path]:
    """Conda environment files that a deployment's `environment.conda_file` points at."""
    found = set()
    for path in YAML_FILES:
        data = yaml.safe_load(path.read_text())
        env = data.get("environment") if isinstance(data, dict) else None
        if isinstance(env, dict) and env.get("conda_file"):
            found.add((path.parent / env["conda_file"]).resolve())
    return found


def test_the_example_has_the_azure_layout():
    expected = {
        "endpoint.yml",
        "deployment-mlflow/deployment.yml",
        "deployment-custom/deployment.yml",
        "deployment-custom/code/batch_driver.py",
        "heart-unlabeled.yml",
        "train_model.py",
        "run-demo.sh",
    }
    assert {p for p in expected if (BATCH / p).is_file()} == expected
    # the data folder holds data only: `--input ./data` (README) must not score the data asset's YAML (issue 28)
    assert sorted(p.name for p in (BATCH / "data").iterdir()) == [f"heart-unlabeled-{i}.csv" for i in range(4)]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_yaml_validates(path: Path):
    data = yaml.safe_load(path.read_text())
    schema = str(data.get("$schema", "")).rsplit("/", 1)[-1]
    if schema in ("commandComponent.schema.json", "pipelineComponent.schema.json"):
        from batchctl.specs.component import load_component

        assert load_component(path).type == ("pipeline" if schema.startswith("pipeline") else "command")
        return
    if schema not in SCHEMAS:
        assert path.resolve() in _conda_files(), f"{path} has no known $schema and is no deployment's conda file"
        assert isinstance(data.get("dependencies"), list)
        return
    kind, model = SCHEMAS[schema]
    spec = spec_load.load_spec(kind, model, path)
    if kind == "deployment":
        assert spec.endpoint_name == "heart-classifier"
        if spec.code_configuration is not None:
            assert (Path(spec.code_configuration.code) / spec.code_configuration.scoring_script).is_file()
    if kind == "data":
        assert Path(spec.path).is_dir()


def _train_module():
    spec = importlib.util.spec_from_file_location("example_train_model", BATCH / "train_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["example_train_model"] = module
    spec.loader.exec_module(module)
    return module


def test_committed_sample_files_are_what_the_generator_writes(tmp_path):
    written = _train_module().write_samples(tmp_path)
    for path in written:
        assert path.read_bytes() == (BATCH / "data" / path.name).read_bytes()


@pytest.mark.slow
@pytest.mark.mlflow
def test_example_model_trains_and_scores_the_sample_files(tmp_path):
    import mlflow.pyfunc
    import pandas as pd

    model_dir = _train_module().train(tmp_path / "model")
    model = mlflow.pyfunc.load_model(str(model_dir))
    inputs = {c.name: c.type.name for c in model.metadata.get_input_schema().inputs}
    assert inputs["thal"] == "string"
    assert (model_dir / "MLmodel").read_text().count("serialization_format: cloudpickle") == 1
    for csv in sorted((BATCH / "data").glob("*.csv")):
        predictions = model.predict(pd.read_csv(csv))
        assert len(predictions) == 40
        assert set(predictions) <= {0, 1}


@pytest.mark.slow
@pytest.mark.mlflow
@pytest.mark.timeout(300)
def test_the_demo_script_runs_end_to_end(tmp_path):
    """`make demo` (the README's first command): run-demo.sh with the batchctl of this interpreter on PATH,
    on a copy of the example, so its workspace, model and outputs land under tmp_path, not in the repo."""
    import os
    import shutil
    import subprocess

    root = tmp_path / "repo"
    copy = root / "examples" / "endpoints" / "batch"
    shutil.copytree(BATCH, copy, ignore=shutil.ignore_patterns("model", ".workspace", "__pycache__"))
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "batchctl").is_file()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(copy / "run-demo.sh")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=280
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "default deployment: classifier-mlflow" in out
    assert "jobs still listed: 2" in out
    assert out.rstrip().endswith(f"workspace: {root / '.demo' / 'workspace'}")
    assert "batchctl never overwrites results" in proc.stderr  # the refused second invoke
    # the MLflow deployment scored the registered data asset (row, prediction, file): 4 files x 40 rows
    download = root / ".demo" / "download" / "named-outputs" / "score" / "predictions.csv"
    scored = [line.split(",") for line in download.read_text().splitlines()]
    files = sorted(p.name for p in (BATCH / "data").glob("*.csv"))
    assert len(scored) == 160 and sorted({file for _, _, file in scored}) == files
    # batch_driver.py, the custom scoring script, gives the same predictions (file, prediction)
    custom = (root / ".demo" / "custom-output" / "custom.csv").read_text().splitlines()
    assert [line.split(",") for line in custom] == [[file, prediction] for _, prediction, file in scored]
