"""Replay of Azure's training-with-components example (fixtures/azure-training: Azure's files, unchanged) as its
deploy-and-run.sh does it with `az ml` renamed to `batchctl`: environment, data asset and compute created, the
pipeline job, the endpoint and its default (ordinal) deployment, `endpoint invoke -f inputs.yml`, `job stream`,
`job list --parent-job-name`, the downloads, then the onehot deployment invoked by name.

Its conda file asks for `python=3.8.5` and pins `pandas==1.4` (no wheel for Python 3.11+, and its source build
fails): a step's environment runs no batchctl code, so it is built on a Python 3.8 found on this machine (pyenv's
versions folder, uv's managed Pythons, or the PATH). Packages come from the package index (marked `network`)."""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from batchctl.cli._abbrev import expand_args
from batchctl.envs import build
from testkit import batchctl_command

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(1800)]

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "azure-training"
ENDPOINT = "uci-classifier-train"
NAME = ("--query", "name", "-o", "tsv")
COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak", "slope", "ca"]


def _heart_rows(path: Path, rows: int = 303, seed: int = 0) -> None:
    """Rows with the UCI heart data set's columns (`thal` a string, `target` 0/1) and a learnable target."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow([*COLUMNS, "thal", "target"])
        for _ in range(rows):
            age, chol = rng.randint(29, 77), rng.randint(126, 564)
            thal = rng.choice(["normal", "fixed", "reversible"])
            values = [age, rng.randint(0, 1), rng.randint(1, 4), rng.randint(94, 200), chol, rng.randint(0, 1)]
            values += [rng.randint(0, 2), rng.randint(71, 202), rng.randint(0, 1), round(rng.uniform(0, 6.2), 1)]
            values += [rng.randint(1, 3), rng.randint(0, 3), thal, int(age > 55 and thal != "normal")]
            out.writerow(values)


def _example(tmp_path: Path) -> Path:
    root = tmp_path / "training-with-components"
    shutil.copytree(FIXTURE, root)
    for script in root.rglob("*.py.txt"):
        script.rename(script.with_suffix(""))
    _heart_rows(root / "data" / "train" / "heart.csv")
    return root


@pytest.fixture
def py38() -> None:
    found, looked = build.find_python((3, 8), build.uv_environ(), sys.stderr)
    if found is None:
        pytest.fail(f"this test needs a Python 3.8 on the machine (looked in {looked})")


def test_training_with_components_runs_unchanged(cli: Any, tmp_path: Path, monkeypatch: Any, py38: None) -> None:
    root = _example(tmp_path)
    monkeypatch.chdir(root)

    def run(*args: str, code: int = 0) -> str:
        # the script's `--endpoint` and `--f` are az's argparse abbreviations: expanded as `batchctl` itself does
        result = cli(*expand_args(batchctl_command(), list(args)))
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return str(result.stdout)

    run("environment", "create", "-f", "environment/xgboost-sklearn-py38.yml")
    run("data", "create", "--name", "heart-classifier-train", "--type", "uri_folder", "--path", "data/train")
    run("compute", "create", "-n", "batch-cluster", "--type", "amlcompute", "--min-instances", "0", "--max-instances=5")
    created = "inputs.input_data.path=azureml:heart-classifier-train@latest"
    job = run("job", "create", "-f", "deployment-ordinal/pipeline-job.yml", "--set", created, *NAME)
    first = json.loads(run("job", "show", "-n", job.strip(), "-o", "json"))
    assert first["status"] == "Completed", first
    steps = json.loads(run("job", "list", "--parent-job-name", job.strip(), "-o", "json"))
    env = steps[0]["environment"]
    assert env["used"] == "isolated" and env["python"].startswith("3.8."), env
    assert "pandas==1.4.0" in Path(env["lock_file"]).read_text()

    run("endpoint", "create", "--name", ENDPOINT, "-f", "endpoint.yml")
    run("deployment", "create", "--endpoint", ENDPOINT, "-f", "deployment-ordinal/deployment.yml", "--set-default")
    name = run("endpoint", "invoke", "-n", ENDPOINT, "--f", "inputs.yml", *NAME).strip()
    run("job", "stream", "-n", name)
    children = run("job", "list", "--parent-job-name", name, "--query", "[].name", "-o", "tsv").split()
    assert children == [f"{name}-preprocess_job", f"{name}-train_job"], children
    # the script's first download names an output the pipeline does not have: refused, as on Azure
    run("job", "download", "--name", name, "--output-name", "transformations", code=4)
    run("job", "download", "--name", name, "--output-name", "model")
    run("job", "download", "--name", name, "--output-name", "evaluation_results")
    model = root / "named-outputs" / "model"
    assert (model / "MLmodel").is_file() and "xgboost" in (model / "MLmodel").read_text()
    (predictions,) = (root / "named-outputs" / "evaluation_results").rglob("test_predictions.csv")
    assert len(predictions.read_text().splitlines()) == 1 + 91  # eval_size 0.3 of 303 rows, with a header

    # the onehot deployment keeps register_best_model's default (true): its train step registers the model in
    # its MLflow store under the name its command gives, `inputs.registered_model_name` ($[[ ]] kept as text)
    run("deployment", "create", "--endpoint", ENDPOINT, "-f", "deployment-onehot/deployment.yml")
    onehot = run("endpoint", "invoke", "-n", ENDPOINT, "-d", "uci-classifier-train-onehot", "--f", "inputs.yml", *NAME)
    run("job", "stream", "-n", onehot.strip())
    train = json.loads(run("job", "show", "-n", f"{onehot.strip()}-train_job", "-o", "json"))
    assert "--registered_model_name inputs.registered_model_name --model" in train["pipeline"]["command"], train
