"""model, data, datastore and compute commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BAD_NAME = "name 'a b' is invalid: use 1-255 letters, digits, '-' or '_', starting with a letter or digit"

# ---------------------------------------------------------------- model


def test_model_versions_auto_increment_and_files_are_copied(cli, out, registry, mlflow_model, home):
    first = out(cli("model", "create", "--name", "heart", "--type", "mlflow_model", "--path", str(mlflow_model)))
    assert (first["name"], first["version"], first["id"], first["type"]) == (
        "heart",
        "1",
        "azureml:heart:1",
        "mlflow_model",
    )
    copied = Path(first["path"])
    assert copied == home / "models" / "heart" / "1" / "model"
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in mlflow_model.iterdir())
    assert (copied / "model.pkl").read_bytes() == (mlflow_model / "model.pkl").read_bytes()
    # the same files again: a no-op, as `az ml model create` with the same content
    before = registry.bytes()
    assert (
        out(cli("model", "create", "--name", "heart", "--type", "mlflow_model", "--path", str(mlflow_model))) == first
    )
    assert registry.bytes() == before


def test_new_content_gets_the_next_version(cli, out, custom_model, tmp_path):
    assert out(cli("model", "create", "-n", "m", "-p", str(custom_model)))["version"] == "1"
    (custom_model / "weights.json").write_text("{}")
    assert out(cli("model", "create", "-n", "m", "-p", str(custom_model)))["version"] == "2"
    explicit = out(cli("model", "create", "-n", "m", "-p", str(custom_model), "-v", "10"))
    assert explicit["version"] == "10"
    other = tmp_path / "other.bin"
    other.write_bytes(b"\x00\x01")
    assert out(cli("model", "create", "-n", "m", "-p", str(other)))["version"] == "11"
    assert [m["version"] for m in out(cli("model", "list", "-n", "m"))] == ["1", "2", "10", "11"]
    assert out(cli("model", "show", "-n", "m"))["version"] == "11"
    assert out(cli("model", "show", "-n", "m", "--label", "latest"))["version"] == "11"
    assert out(cli("model", "show", "-n", "m", "-v", "2"))["version"] == "2"
    assert [(m["name"], m["version"]) for m in out(cli("model", "list"))] == [("m", "11")]


def test_model_relative_path_resolves_against_the_cwd_for_flags_and_the_file_for_specs(
    cli, out, write_spec, custom_model, tmp_path, monkeypatch
):
    spec = write_spec("specs/model.yml", {"name": "m", "path": "../custom-model", "description": "from file"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    record = out(cli("model", "create", "-f", str(spec)))
    assert (record["source"], record["description"]) == (str(custom_model), "from file")
    monkeypatch.chdir(tmp_path)
    assert out(cli("model", "create", "-n", "m2", "-p", "custom-model"))["source"] == str(custom_model)


def test_existing_version_with_other_content_is_refused(cli, out, registry, custom_model, tmp_path):
    out(cli("model", "create", "-n", "m", "-p", str(custom_model), "-v", "1"))
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    before = registry.bytes()
    result = cli("model", "create", "-n", "m", "-p", str(other), "-v", "1")
    assert (result.exit_code, result.stderr) == (
        5,
        "Error: model 'm' version '1' exists with other content; versions are immutable\n"
        "Hint: omit --version to register a new version\n",
    )
    assert registry.bytes() == before


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["-n", "a b", "-p", "."], f"Error: model name: {BAD_NAME}\n"),
        (
            ["-n", "m", "-p", "missing"],
            "Error: model path: '{cwd}/missing' does not exist\n"
            "Hint: a relative --path is resolved against the current folder ({cwd})\n",
        ),
        (
            ["-n", "m", "-p", "."],
            "Error: model path: '{cwd}' is not an MLflow model folder (no MLmodel file)\n",
        ),
        (
            ["-n", "m", "-p", ".", "-t", "triton_model"],
            "Error: model type: Input should be 'mlflow_model' or 'custom_model'\n",
        ),
        (["-n", "m"], "Error: model path: field required\n"),
    ],
)
def test_model_create_rejections(cli, registry, tmp_path, args, stderr):
    if args[-1] == ".":
        args = [*args, "-t", "mlflow_model"]
    result = cli("model", "create", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "", stderr.format(cwd=tmp_path))
    assert registry.bytes() is None
    assert not (tmp_path / "ws" / "models").exists() or not any((tmp_path / "ws" / "models").rglob("*.json"))


def test_model_show_missing(cli):
    result = cli("model", "show", "-n", "ghost")
    assert (result.exit_code, result.stderr) == (
        4,
        "Error: model 'ghost' not found\nHint: register it with `batchctl model create --name ghost ...`\n",
    )


def test_model_show_missing_version(cli, out, custom_model):
    out(cli("model", "create", "-n", "m", "-p", str(custom_model)))
    result = cli("model", "show", "-n", "m", "-v", "9")
    assert (result.exit_code, result.stderr) == (4, "Error: model 'm' has no version '9'; versions: 1\n")


def test_model_label_other_than_latest(cli):
    result = cli("model", "show", "-n", "m", "--label", "production")
    assert (result.exit_code, result.stderr) == (
        3,
        "Error: --label: only 'latest' is supported, not 'production'\n",
    )


def test_model_delete(cli, out, registry, custom_model, endpoint_with_custom_deployment):
    out(cli("model", "create", "-n", "m", "-p", str(custom_model)))
    (custom_model / "weights.json").write_text("[]")
    second = out(cli("model", "create", "-n", "m", "-p", str(custom_model)))
    assert out(cli("model", "delete", "-n", "m", "-v", "2", "--yes")) == {
        "name": "m",
        "versions_deleted": ["2"],
    }
    assert not Path(second["model_dir"]).exists()
    assert list(registry.data()["models"]["m"]) == ["1"]
    before = registry.bytes()
    used = cli("model", "delete", "-n", "heart", "--yes")
    assert (used.exit_code, used.stderr) == (
        5,
        "Error: model 'heart' version '1' is used by deployment heart-classifier/custom\n"
        "Hint: delete or update those deployments first\n",
    )
    assert registry.bytes() == before


@pytest.fixture
def endpoint_with_custom_deployment(cli, out, write_spec, custom_model, score_code):
    out(cli("endpoint", "create", "-n", "heart-classifier"))
    out(cli("model", "create", "-n", "heart", "-p", str(custom_model)))
    spec = write_spec(
        "d.yml",
        {
            "name": "custom",
            "endpoint_name": "heart-classifier",
            "model": "azureml:heart@latest",
            "code_configuration": {"code": "code", "scoring_script": "score.py"},
        },
    )
    out(cli("deployment", "create", "-f", str(spec)))


# ---------------------------------------------------------------- data


@pytest.fixture
def heart_data(tmp_path: Path) -> Path:
    folder = tmp_path / "heart-unlabeled"
    folder.mkdir()
    (folder / "a.csv").write_text("age,thal\n50,normal\n")
    return folder


def test_data_create_show_list_delete(cli, out, registry, write_spec, heart_data):
    spec = write_spec("data.yml", {"name": "heart-unlabeled", "type": "uri_folder", "path": "./heart-unlabeled"})
    record = out(cli("data", "create", "-f", str(spec)))
    assert (record["name"], record["version"], record["type"], record["path"]) == (
        "heart-unlabeled",
        "1",
        "uri_folder",
        str(heart_data),
    )
    before = registry.bytes()
    assert out(cli("data", "create", "-f", str(spec))) == record
    assert registry.bytes() == before
    second = out(cli("data", "create", "-f", str(spec), "--set", "description=v2"))
    assert second["version"] == "2"
    file_asset = out(cli("data", "create", "-n", "one", "-t", "uri_file", "-p", str(heart_data / "a.csv")))
    assert file_asset["type"] == "uri_file"
    url = out(cli("data", "create", "-n", "remote", "-p", "https://example.org/heart.csv", "-t", "uri_file"))
    assert url["path"] == "https://example.org/heart.csv"
    assert [d["name"] for d in out(cli("data", "list"))] == ["heart-unlabeled", "one", "remote"]
    assert out(cli("data", "show", "-n", "heart-unlabeled", "-v", "1")) == record
    assert out(cli("data", "delete", "-n", "heart-unlabeled", "-v", "1", "--yes")) == {
        "name": "heart-unlabeled",
        "versions_deleted": ["1"],
    }
    assert heart_data.is_dir()
    assert out(cli("data", "show", "-n", "heart-unlabeled"))["version"] == "2"


@pytest.mark.parametrize(
    ("fields", "stderr"),
    [
        ({"path": "./nowhere"}, "Error: data.yml: path: '{tmp}/nowhere' does not exist\n"),
        (
            {"path": "./heart-unlabeled", "type": "uri_file"},
            "Error: data.yml: path: '{tmp}/heart-unlabeled' is a folder but type is uri_file\n",
        ),
        (
            {"path": "./heart-unlabeled/a.csv"},
            "Error: data.yml: path: '{tmp}/heart-unlabeled/a.csv' is a file but type is uri_folder\n",
        ),
        (
            {"path": "./heart-unlabeled", "type": "mltable"},
            "Error: data.yml: type: mltable data assets are not supported by batch endpoints; use uri_folder\n",
        ),
    ],
)
def test_data_rejections(cli, registry, write_spec, heart_data, tmp_path, fields, stderr):
    spec = write_spec("data.yml", {"name": "d", **fields})
    result = cli("data", "create", "-f", str(spec))
    assert (result.exit_code, result.stdout, result.stderr) == (3, "", stderr.format(tmp=tmp_path))
    assert registry.bytes() is None


def test_data_show_missing(cli):
    result = cli("data", "show", "-n", "ghost")
    assert (result.exit_code, result.stderr) == (
        4,
        "Error: data 'ghost' not found\nHint: register it with `batchctl data create --name ghost ...`\n",
    )


# ---------------------------------------------------------------- datastore


def test_default_datastore_is_built_in(cli, out, home):
    stores = out(cli("datastore", "list"))
    assert [(s["name"], s["type"], s["path"]) for s in stores] == [
        ("workspaceblobstore", "local", str(home / "datastores" / "workspaceblobstore"))
    ]
    assert out(cli("datastore", "show", "-n", "workspaceblobstore"))["is_default"] is True
    result = cli("datastore", "delete", "-n", "workspaceblobstore", "--yes")
    assert (result.exit_code, result.stderr) == (
        5,
        "Error: the default datastore 'workspaceblobstore' cannot be deleted\n"
        "Hint: re-point it with `batchctl datastore create -f` instead\n",
    )


def test_datastore_local_and_blob(cli, out, registry, write_spec, tmp_path):
    local = write_spec("ds.yml", {"name": "files", "type": "local", "path": "store"})
    record = out(cli("datastore", "create", "-f", str(local)))
    assert (record["type"], record["path"]) == ("local", str(tmp_path / "store"))
    before = registry.bytes()
    assert out(cli("datastore", "create", "-f", str(local))) == record
    assert registry.bytes() == before
    blob = write_spec(
        "blob.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/azureBlob.schema.json",
            "name": "blobs",
            "type": "azure_blob",
            "account_name": "acct01",
            "container_name": "heart-data",
            "credentials": {"account_key": "c2VjcmV0a2V5"},
        },
    )
    result = cli("datastore", "create", "-f", str(blob))
    assert result.exit_code == 0
    assert result.stderr == (
        "Notice: credentials in the spec were not stored; batchctl reads them from the environment "
        "(AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN "
        "or Azure sign-in)\n"
    )
    assert "c2VjcmV0a2V5" not in registry.path.read_text()
    assert "credentials" not in registry.data()["datastores"]["blobs"]
    assert [s["name"] for s in out(cli("datastore", "list"))] == ["blobs", "files", "workspaceblobstore"]
    assert out(cli("datastore", "delete", "-n", "files", "--yes")) == {"name": "files", "deleted": True}
    missing = cli("datastore", "show", "-n", "files")
    assert (missing.exit_code, missing.stderr) == (
        4,
        "Error: datastore 'files' not found\nHint: register it with `batchctl datastore create -f datastore.yml`\n",
    )


def test_datastore_rejection(cli, registry, write_spec):
    spec = write_spec("ds.yml", {"name": "s3", "type": "s3", "bucket": "b"})
    result = cli("datastore", "create", "-f", str(spec))
    assert (result.exit_code, result.stderr) == (
        3,
        "Error: ds.yml: type: Input should be 'azure_blob', 'azure_data_lake_gen2' or 'local'\n",
    )
    assert registry.bytes() is None


# ---------------------------------------------------------------- compute


def test_local_compute_is_built_in(cli, out):
    assert [(c["name"], c["type"]) for c in out(cli("compute", "list"))] == [("local", "local")]
    assert out(cli("compute", "show", "-n", "local"))["type"] == "local"
    result = cli("compute", "delete", "-n", "local", "--yes")
    assert (result.exit_code, result.stderr) == (5, "Error: the built-in compute 'local' cannot be deleted\n")


def test_compute_local_ray_and_amlcompute(cli, out, registry):
    cpu = out(cli("compute", "create", "-n", "cpu4", "--type", "local", "--max-workers", "4"))
    assert (cpu["type"], cpu["max_workers"]) == ("local", 4)
    ray = out(cli("compute", "create", "-n", "ray-local", "--type", "ray", "--address", "local"))
    assert (ray["type"], ray["address"]) == ("ray", "local")
    aml = cli(
        "compute",
        "create",
        "-n",
        "batch-cluster",
        "--type",
        "amlcompute",
        "--min-instances",
        "0",
        "--max-instances",
        "5",
        "--size",
        "STANDARD_DS3_V2",
    )
    assert aml.exit_code == 0
    assert aml.stderr == (
        "Notice: compute 'batch-cluster' is an Azure amlcompute cluster: batchctl runs its jobs locally\n"
    )
    record = registry.data()["computes"]["batch-cluster"]
    assert (record["runs_as"], record["max_instances"], record["size"]) == ("local", 5, "STANDARD_DS3_V2")
    assert "notice" not in record and "notice" not in json.loads(aml.stdout)
    before = registry.bytes()
    assert out(cli("compute", "create", "-n", "cpu4", "--type", "local", "--max-workers", "4")) == cpu
    assert registry.bytes() == before
    assert [c["name"] for c in out(cli("compute", "list"))] == ["batch-cluster", "cpu4", "local", "ray-local"]


def test_compute_used_by_a_deployment(cli, out, registry, write_spec, mlflow_model):
    assert cli("compute", "create", "-n", "batch-cluster", "--type", "amlcompute").exit_code == 0
    out(cli("endpoint", "create", "-n", "heart-classifier"))
    spec = write_spec(
        "d.yml",
        {
            "name": "blue",
            "endpoint_name": "heart-classifier",
            "model": {"path": str(mlflow_model), "type": "mlflow_model"},
            "compute": "azureml:batch-cluster",
        },
    )
    record = out(cli("deployment", "create", "-f", str(spec)))
    assert (record["compute"], record["compute_type"]) == ("batch-cluster", "amlcompute")
    before = registry.bytes()
    result = cli("compute", "delete", "-n", "batch-cluster", "--yes")
    assert (result.exit_code, result.stderr) == (
        5,
        "Error: compute 'batch-cluster' is used by deployment heart-classifier/blue\n",
    )
    assert registry.bytes() == before


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["-n", "r", "--type", "ray"], "Error: compute address: field required\n"),
        (
            ["-n", "r", "--type", "ray", "--address", "nowhere"],
            "Error: compute address: must be ray://<host>:<port>, <host>:<port>, auto, or local\n",
        ),
        (
            ["-n", "k", "--type", "kubernetes"],
            "Error: compute type: Input should be 'local', 'ray' or 'amlcompute'\n",
        ),
        (
            ["-n", "local", "--type", "ray", "--address", "auto"],
            "Error: 'local' is the built-in compute and stays of type local\n",
        ),
        (["-n", "a b", "--type", "local"], f"Error: compute name: {BAD_NAME}\n"),
    ],
)
def test_compute_rejections(cli, registry, args, stderr):
    result = cli("compute", "create", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (5 if "built-in" in stderr else 3, "", stderr)
    assert registry.bytes() is None


@pytest.mark.parametrize("uri", ["runs:/0123abcd/model", "models:/heart/1"])
def test_model_create_with_an_mlflow_uri_and_no_tracking_uri_says_how(cli, registry, monkeypatch, uri):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = cli("model", "create", "--name", "heart", "--type", "mlflow_model", "--path", uri)
    assert (result.exit_code, result.stdout, result.stderr) == (
        3,
        "",
        f"Error: model path: '{uri}' is an MLflow URI, and MLFLOW_TRACKING_URI is not set\n"
        f"Hint: export MLFLOW_TRACKING_URI=<the tracking store that holds it>, or download the model with "
        f"`mlflow artifacts download -u {uri} -d ./model` and pass --path ./model\n",
    )
    assert registry.bytes() is None


def test_a_missing_example_model_points_to_its_training_script(cli, registry, tmp_path, monkeypatch):
    """The README's tour registers ./model, which `python train_model.py` makes: the error says so."""
    (tmp_path / "example").mkdir()
    (tmp_path / "example" / "train_model.py").write_text("")
    monkeypatch.chdir(tmp_path / "example")
    result = cli("model", "create", "--name", "heart", "--type", "mlflow_model", "--path", "./model")
    trainer = tmp_path / "example" / "train_model.py"
    assert (result.exit_code, result.stderr) == (
        3,
        f"Error: model path: '{tmp_path}/example/model' does not exist\n"
        f"Hint: the model is made by its training script: run `python {trainer}` first, then register it\n",
    )
    assert registry.bytes() is None
