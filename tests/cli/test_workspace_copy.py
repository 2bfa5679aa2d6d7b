"""A workspace is one movable folder: its registry stores models, code snapshots and environment files
relative to the root, so a copy runs jobs after the original (and every source folder) is gone."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml


def build(root: Path, model: Path) -> None:
    """Endpoint `heart` with a no-code MLflow deployment (default) and a scoring-script one, a registered
    environment; every source folder beside the workspace, in `root.parent / "src"`."""
    from batchctl import api
    from batchctl.workspace import Workspace

    src = root.parent / "src"
    (src / "code").mkdir(parents=True)
    (src / "code" / "score.py").write_text(
        "import os\n\ndef init():\n    pass\n\ndef run(mini_batch):\n"
        "    return [os.path.basename(p) + ' ' + os.environ['AZUREML_MODEL_DIR'] for p in mini_batch]\n"
    )
    (src / "env.yml").write_text("dependencies:\n  - python=3.12\n  - pip:\n    - pandas\n")
    ws = Workspace(root)
    api.create_endpoint(ws, name="heart")
    api.create_environment(ws, name="env", image="python:3.12-slim", conda_file=str(src / "env.yml"))
    for name, extra in (
        ("blue", {"model": {"path": str(model), "type": "mlflow_model", "name": "heart"}}),
        (
            "script",
            {
                "model": {"path": str(src / "code"), "type": "custom_model", "name": "weights"},
                "code_configuration": {"code": str(src / "code"), "scoring_script": "score.py"},
                "environment": "azureml:env:1",
            },
        ),
    ):
        spec = src / f"{name}.yml"
        spec.write_text(yaml.safe_dump({"name": name, "endpoint_name": "heart", **extra}))
        api.create_deployment(ws, str(spec))


@pytest.fixture
def heart_model(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.models import cached_heart_model

    return cached_heart_model(pytestconfig, tmp_path_factory)


def test_a_copied_workspace_runs_jobs_after_the_original_is_gone(cli, tmp_path, monkeypatch, heart_model):
    original = tmp_path / "first" / "ws"
    build(original, heart_model)
    stored = (original / "registry.json").read_text()
    moved = tmp_path / "second" / "ws"
    shutil.copytree(original, moved)
    shutil.rmtree(tmp_path / "first")  # the workspace and every folder it was made from
    monkeypatch.setenv("BATCHCTL_HOME", str(moved))
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("age,chol,thal\n61.5,250.0,normal\n42.0,310.5,fixed\n")
    for deployment in ("blue", "script"):
        out = tmp_path / f"out-{deployment}"
        job = cli(
            "endpoint", "invoke", "-n", "heart", "-d", deployment, "--input", str(data),
            "--output-path", str(out), "--env-manager", "local", "-o", "json",
        )  # fmt: skip
        assert job.exit_code == 0, job.output
        assert json.loads(job.stdout)["status"] == "Completed"
        with open(out / "predictions.csv", newline="") as handle:
            rows = list(csv.reader(handle))
        assert len(rows) == (2 if deployment == "blue" else 1), rows
    # the script saw the model folder of the copy
    assert f"a.csv {moved}/models/weights/1" in rows[0][-1], rows
    shown = json.loads(cli("deployment", "show", "-e", "heart", "-n", "script", "-o", "json").stdout)
    assert shown["code_configuration"]["code"].startswith(f"{moved}/code/")  # shown absolute, as before
    env = json.loads(cli("environment", "show", "-n", "env", "-o", "json").stdout)
    assert env["conda_file"] == f"{moved}/environments/env/1/env.yml"
    # only the folders things were copied from are named by their absolute path (they are outside)
    assert str(original) not in stored.replace(str(original.parent / "src"), "")


def test_workspace_templates_give_each_test_its_own_copy(workspace_templates, tmp_path, heart_model):
    from batchctl import api
    from batchctl.workspace import Workspace

    first = workspace_templates.copy("two-deployments", lambda r: build(r, heart_model), tmp_path / "a")
    second = workspace_templates.copy("two-deployments", lambda r: build(r, heart_model), tmp_path / "b")
    api.delete_deployment(Workspace(first), "script", "heart")
    assert [d["name"] for d in api.list_deployments(Workspace(second), "heart")] == ["blue", "script"]
    assert api.get_deployment(Workspace(second), "script", "heart")["code_configuration"]["code"].startswith(
        str(second)
    )


def test_a_template_built_with_the_cli_leaves_the_tests_commands_on_its_copy(cli, workspace_templates, isolation):
    """A build through the in-process CLI's `--workspace` sets the CLI's process-wide workspace; the test's
    later commands must still reach its own copy (BATCHCTL_HOME), never the template."""

    def build(root):
        assert cli("--workspace", str(root), "endpoint", "create", "-n", "heart").exit_code == 0

    workspace_templates.copy("cli-built", build, isolation)
    assert cli("endpoint", "delete", "-n", "heart", "--yes").exit_code == 0
    assert json.loads(cli("endpoint", "list", "-o", "json").stdout) == []
    template = workspace_templates.template("cli-built", build)
    assert [
        e["name"] for e in json.loads(cli("--workspace", str(template), "endpoint", "list", "-o", "json").stdout)
    ] == ["heart"]
