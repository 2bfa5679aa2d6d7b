"""Replay of Azure's training-with-components example (deployment-onehot): its train step calls
`mlflow.xgboost.log_model(..., registered_model_name=...)`. On Azure a step's MLflow is the workspace's,
which has a model registry. Locally, a step given no tracking URI fell to MLflow 2's default, the `./mlruns`
file store, which has none: the step failed with "Model Registry features are not supported by the store".
A step now gets a SQLite store in its job folder unless the user or the component names one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# MLflow 2 (what the example's environment resolves to) defaults to ./mlruns; the test's MLflow may default
# otherwise, so the step states MLflow 2's default itself when it is given no tracking URI
STEP = """\
import os, pathlib, sys
import mlflow
from mlflow.tracking import MlflowClient
mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI", "./mlruns"))
with mlflow.start_run() as run:
    mlflow.log_text("weights", "model/weights.txt")
client = MlflowClient()
client.create_registered_model("replay-model")
version = client.create_model_version("replay-model", f"{run.info.artifact_uri}/model", run.info.run_id)
pathlib.Path(sys.argv[1], "registered.json").write_text(
    __import__("json").dumps({"version": version.version, "uri": mlflow.get_tracking_uri()})
)
"""


def test_a_step_can_register_a_model_with_mlflow(cli: Any, tmp_path: Path) -> None:
    root = tmp_path / "example"
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text(STEP)
    job_file = root / "pipeline-job.yml"
    step = {
        "type": "command",
        "component": {
            "code": "src",
            "outputs": {"out": {"type": "uri_folder"}},
            "command": "python train.py ${{outputs.out}}",
        },
        "outputs": {"out": "${{parent.outputs.model}}"},
    }
    pipeline = {"type": "pipeline", "jobs": {"train": step}, "outputs": {"model": {"type": "uri_folder"}}}
    job_file.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    result = cli("job", "create", "-f", str(job_file), "--env-manager", "local", "--query", "name", "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    job = result.stdout.strip()
    out = tmp_path / "downloaded"
    result = cli("job", "download", "--name", job, "--output-name", "model", "--download-path", str(out))
    assert result.exit_code == 0, result.stderr
    registered = json.loads(next(out.rglob("registered.json")).read_text())
    assert str(registered["version"]) == "1", registered
    # the store is the step's own, in its job's folder, never ./mlruns in the code's copy
    assert registered["uri"].startswith("sqlite:///") and f"{job}-train" in registered["uri"], registered
