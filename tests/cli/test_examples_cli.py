"""The bundled example's specs through the CLI, in the order run-demo.sh uses them."""

from __future__ import annotations

import json
from pathlib import Path

BATCH = Path(__file__).resolve().parents[2] / "examples" / "endpoints" / "batch"


def test_example_specs_through_the_cli(cli, mlflow_model, tmp_path):
    def ok(*args: str) -> dict:
        result = cli(*args)
        assert (result.exit_code, result.stderr) == (0, ""), result.stderr
        return json.loads(result.stdout)

    ok("model", "create", "--name", "heart-classifier", "--type", "mlflow_model", "--path", str(mlflow_model))
    ok("endpoint", "create", "-f", str(BATCH / "endpoint.yml"))
    mlflow_dep = ok("deployment", "create", "-f", str(BATCH / "deployment-mlflow" / "deployment.yml"), "--set-default")
    custom_dep = ok("deployment", "create", "-f", str(BATCH / "deployment-custom" / "deployment.yml"))
    assert (mlflow_dep["model"], custom_dep["model"]) == ("azureml:heart-classifier:1",) * 2
    assert custom_dep["code_configuration"]["scoring_script"] == "batch_driver.py"
    shown = cli("endpoint", "show", "-n", "heart-classifier", "--query", "defaults.deployment_name", "-o", "tsv")
    assert shown.stdout == "classifier-mlflow\n"
    data = ok("data", "create", "-f", str(BATCH / "heart-unlabeled.yml"))
    assert (data["type"], data["path"]) == ("uri_folder", str(BATCH / "data"))
