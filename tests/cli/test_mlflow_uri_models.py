"""Deployments whose model is an MLflow URI, resolved by mlflow against a real local sqlite tracking store."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit import model_requirements

pytestmark = [pytest.mark.mlflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def tracking_store(tmp_path_factory: pytest.TempPathFactory, mlflow_model: Path) -> dict[str, str]:
    """Log and register the session's sklearn model in a sqlite tracking store, once per module
    (creating the sqlite schema takes seconds)."""
    import logging

    import mlflow
    import mlflow.sklearn
    from mlflow.models import Model

    root = tmp_path_factory.mktemp("mlflow-tracking")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("heart", artifact_location=str(root / "artifacts"))
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(
                mlflow.sklearn.load_model(str(mlflow_model)),
                name="model",
                signature=Model.load(str(mlflow_model)).signature,
                registered_model_name="heart-sqlite",
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pip_requirements=model_requirements(),
            )
    finally:
        mlflow.set_tracking_uri(None)
    return {"uri": uri, "run_id": run.info.run_id}


@pytest.fixture
def tracking(tracking_store: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """MLFLOW_TRACKING_URI points at the store for this test, as a user would export it."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_store["uri"])
    return tracking_store


@pytest.mark.parametrize("kind", ["models", "runs"])
def test_mlflow_uri_deployment_resolves(cli, out, registry, write_spec, tracking, kind, home):
    uri = "models:/heart-sqlite/1" if kind == "models" else f"runs:/{tracking['run_id']}/model"
    out(cli("endpoint", "create", "-n", "heart-classifier"))
    spec = write_spec("d.yml", {"name": "from-mlflow", "endpoint_name": "heart-classifier", "model": uri})
    record = out(cli("deployment", "create", "-f", str(spec)))
    assert record["model_type"] == "mlflow_model"
    name, version = record["model"].removeprefix("azureml:").split(":")
    model = registry.data()["models"][name][version]
    assert (model["source"], model["type"]) == (uri, "mlflow_model")
    # stored relative to the workspace root, so that a workspace can be moved
    assert not Path(model["model_dir"]).is_absolute()
    assert (home / model["model_dir"]).parent == home / "models" / name
    assert (home / model["path"] / "MLmodel").is_file()
    assert (home / model["path"] / "model.pkl").is_file()
    # the same URI again is a no-op: no new model version
    before = registry.bytes()
    assert out(cli("deployment", "create", "-f", str(spec))) == record
    assert registry.bytes() == before


def test_unknown_mlflow_model_is_one_line(cli, out, registry, write_spec, tracking):
    out(cli("endpoint", "create", "-n", "heart-classifier"))
    before = registry.bytes()
    spec = write_spec("d.yml", {"name": "ghost", "endpoint_name": "heart-classifier", "model": "models:/ghost/3"})
    result = cli("deployment", "create", "-f", str(spec))
    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: model 'models:/ghost/3' could not be resolved by mlflow: ")
    assert lines[1:] == ["Hint: check MLFLOW_TRACKING_URI and the model name/version"]
    assert registry.bytes() == before


@pytest.mark.parametrize("kind", ["models", "runs"])
def test_model_create_takes_an_mlflow_uri_from_the_tracking_store(cli, out, registry, tracking, kind):
    """`model create --path runs:/<id>/model` (or models:/) downloads the model as `mlflow models predict -m` does."""
    uri = "models:/heart-sqlite/1" if kind == "models" else f"runs:/{tracking['run_id']}/model"
    record = out(cli("model", "create", "--name", "heart", "--type", "mlflow_model", "--path", uri))
    assert (record["name"], record["version"], record["type"], record["source"]) == ("heart", "1", "mlflow_model", uri)
    assert (Path(record["path"]) / "MLmodel").is_file()
    assert registry.data()["models"]["heart"]["1"]["content_hash"] == record["content_hash"]
