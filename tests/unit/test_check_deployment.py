"""`api.check_deployment`: what `deployment create` would refuse, found without changing the workspace (the
Studio wizard's Review calls it, so a mismatch shows before Create, not after)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchctl import api
from batchctl.errors import NotFoundError, SpecError
from batchctl.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "ws")
    api.create_endpoint(workspace, name="heart")
    return workspace


def spec(tmp_path: Path, **fields: object) -> str:
    weights = tmp_path / "weights"
    weights.mkdir(exist_ok=True)
    (weights / "weights.txt").write_text("w=1\n")
    data = {"name": "blue", "endpoint_name": "heart", "model": {"path": str(weights), "type": "custom_model"}}
    path = tmp_path / "deployment.yml"
    path.write_text(json.dumps({**data, **fields}))
    return str(path)


def registry(ws: Workspace) -> bytes:
    return (ws.root / "registry.json").read_bytes()


def test_a_model_that_is_not_mlflow_needs_a_scoring_script_and_nothing_is_registered(
    ws: Workspace, tmp_path: Path
) -> None:
    weights = tmp_path / "registered"
    weights.mkdir()
    (weights / "weights.txt").write_text("w=1\n")
    api.create_model(ws, name="weights", type="custom_model", path=str(weights))
    before = registry(ws)
    # the wizard's "Registered MLflow model" with a model that is not one: create's own message, at Review
    with pytest.raises(SpecError, match="code_configuration: required because model azureml:weights:1 is not an"):
        api.check_deployment(ws, spec(tmp_path, model="azureml:weights:1"))
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text("def init():\n    pass\n\n\ndef run(batch):\n    return []\n")
    scored = {"code": str(code), "scoring_script": "score.py"}
    api.check_deployment(ws, spec(tmp_path, model="azureml:weights:1", code_configuration=scored))
    api.check_deployment(ws, spec(tmp_path, code_configuration=scored))  # a model folder: checked, not registered
    assert registry(ws) == before
    assert [m["name"] for m in api.list_models(ws)] == ["weights"] and api.list_deployments(ws, "heart") == []
    assert not ws.code_dir.exists() or not any(ws.code_dir.iterdir())  # no code snapshot either


def test_missing_references_are_refused_as_create_would(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="model 'ghost'"):
        api.check_deployment(ws, spec(tmp_path, model="azureml:ghost:1"))
    with pytest.raises(NotFoundError, match="endpoint 'later'"):
        api.check_deployment(ws, spec(tmp_path, endpoint_name="later", model="azureml:ghost:1"))
    # a new endpoint is made in the same step: only the rest is checked
    with pytest.raises(NotFoundError, match="model 'ghost'"):
        api.check_deployment(ws, spec(tmp_path, endpoint_name="later", model="azureml:ghost:1"), new_endpoint=True)
    with pytest.raises(SpecError, match="code_configuration.code: folder"):
        api.check_deployment(
            ws, spec(tmp_path, code_configuration={"code": str(tmp_path / "no"), "scoring_script": "s.py"})
        )
