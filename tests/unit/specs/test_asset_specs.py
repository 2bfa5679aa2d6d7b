from __future__ import annotations

import pytest

COMMON = {"description": None, "tags": {}, "properties": {}}


def test_model_defaults(load, tmp_path):
    spec = load("model", {"name": "heart", "path": "model"})
    assert spec.model_dump() == {
        **COMMON,
        "name": "heart",
        "version": None,
        "type": "custom_model",
        "path": str(tmp_path / "model"),
        "stage": None,
    }


def test_model_version_number_becomes_a_string(load):
    assert load("model", {"name": "heart", "path": "m", "version": 2}).version == "2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "triton_model"}, "type: Input should be 'mlflow_model' or 'custom_model'"),
        ({"version": "a b"}, "version: version 'a b' is invalid: use letters, digits, '.', '-' or '_'"),
        ({"path": None}, "path: Input should be a valid string"),
        ({"flavor": "x"}, "flavor: unknown field (not part of the schema)"),
    ],
)
def test_model_rejections(reject, change, message):
    assert reject("model", {"name": "heart", "path": "m", **change}) == f"spec.yml: {message}"


def test_data_defaults(load, tmp_path):
    spec = load("data", {"name": "heart-unlabeled", "path": "./data"})
    assert spec.model_dump() == {
        **COMMON,
        "name": "heart-unlabeled",
        "version": None,
        "type": "uri_folder",
        "path": str(tmp_path / "data"),
    }


@pytest.mark.parametrize(
    "path",
    ["https://example.org/heart.csv", "azureml://datastores/workspaceblobstore/paths/heart/", "az://c/p"],
)
def test_data_urls_are_not_resolved(load, path):
    assert load("data", {"name": "d", "path": path}).path == path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"type": "mltable"},
            "type: mltable data assets are not supported by batch endpoints; use uri_folder",
        ),
        ({"type": "uri_files"}, "type: Input should be 'uri_file' or 'uri_folder'"),
        ({"path": ""}, "path: String should have at least 1 character"),
        (
            {"name": "bad name"},
            "name: name 'bad name' is invalid: use 1-255 letters, digits, '-' or '_', starting with a letter or digit",
        ),
    ],
)
def test_data_rejections(reject, change, message):
    assert reject("data", {"name": "d", "path": "p", **change}) == f"spec.yml: {message}"


def test_datastore_local(load, tmp_path):
    spec = load("datastore", {"name": "files", "type": "local", "path": "store"})
    assert spec.model_dump() == {**COMMON, "name": "files", "type": "local", "path": str(tmp_path / "store")}


def test_datastore_azure_blob_defaults(load):
    spec = load("datastore", {"name": "blobs", "type": "azure_blob", "account_name": "acct1", "container_name": "c01"})
    assert (spec.endpoint, spec.protocol, spec.credentials) == ("core.windows.net", "https", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "d", "type": "s3"},
            "type: Input should be 'azure_blob', 'azure_data_lake_gen2' or 'local'",
        ),
        ({"name": "d", "path": "p"}, "type: field required"),
        (
            {"name": "d", "type": "azure_blob", "account_name": "Acct", "container_name": "c01"},
            "account_name: String should match pattern '^[a-z0-9]+$'",
        ),
        (
            {"name": "d", "type": "azure_blob", "account_name": "acct", "container_name": "c"},
            "container_name: String should have at least 3 characters",
        ),
        ({"name": "d", "type": "local"}, "path: field required"),
    ],
)
def test_datastore_rejections(reject, data, message):
    assert reject("datastore", data) == f"spec.yml: {message}"


def test_compute_defaults(load):
    assert load("compute", {"name": "cpu", "type": "local"}).model_dump() == {
        **COMMON,
        "name": "cpu",
        "type": "local",
        "max_workers": None,
    }
    ray = load("compute", {"name": "ray1", "type": "ray", "address": "local"})
    assert (ray.address, ray.max_workers, ray.connect_timeout) == ("local", None, None)
    ray = load("compute", {"name": "ray2", "type": "ray", "address": "10.0.0.5:6379", "connect_timeout": 2.5})
    assert ray.connect_timeout == 2.5
    aml = load("compute", {"name": "batch-cluster", "type": "amlcompute", "size": "STANDARD_DS3_V2"})
    assert (aml.min_instances, aml.max_instances, aml.size) == (0, 1, "STANDARD_DS3_V2")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "c", "type": "kubernetes"}, "type: Input should be 'local', 'ray' or 'amlcompute'"),
        (
            {"name": "c", "type": "ray", "address": "nowhere"},
            "address: must be ray://<host>:<port>, <host>:<port>, auto, or local",
        ),
        ({"name": "c", "type": "ray"}, "address: field required"),
        (
            {"name": "c", "type": "local", "max_workers": 0},
            "max_workers: Input should be greater than or equal to 1",
        ),
        (
            {"name": "c", "type": "amlcompute", "min_instances": 3, "max_instances": 2},
            "min_instances must not exceed max_instances",
        ),
        (
            {"name": "c", "type": "ray", "address": "h:1", "connect_timeout": 0},
            "connect_timeout: Input should be greater than 0",
        ),
        (
            {"name": "c", "type": "ray", "address": "h:1", "connect_timeout": True},
            "connect_timeout: Input should be a number, not a boolean",
        ),
    ],
)
def test_compute_rejections(reject, data, message):
    assert reject("compute", data) == f"spec.yml: {message}"


def test_invocation_defaults_and_paths(load, tmp_path):
    spec = load(
        "job",
        {"inputs": {"heart": {"type": "uri_folder", "path": "data"}}, "outputs": {"score": {"path": "o"}}},
    )
    assert spec.inputs["heart"].path == str(tmp_path / "data")
    assert spec.outputs["score"].model_dump() == {
        "type": "uri_folder",
        "path": str(tmp_path / "o"),
        "mode": None,
    }
    assert (spec.endpoint, spec.deployment, spec.mini_batch_size, spec.output_file_name) == (
        None,
        None,
        None,
        None,
    )


def test_invocation_uri_input_kept(load):
    spec = load("job", {"inputs": {"x": {"type": "uri_file", "path": "https://example.org/a.csv"}}})
    assert spec.inputs["x"].path == "https://example.org/a.csv"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"inputs": {"a": {"path": "x"}, "b": {"path": "y"}}},
            "model deployments take exactly one input; this file names 2",
        ),
        (
            {"inputs": {"a": {"path": "x"}}, "outputs": {"other": {"path": "y"}}},
            "model deployments have one output named 'score', not ['other']",
        ),
        (
            {"inputs": {"a": {"path": "x", "type": "mltable"}}},
            "inputs.a.type: Input should be 'uri_folder' or 'uri_file'",
        ),
        (
            {"inputs": {"a": {"path": "x"}}, "output_file_name": "../a"},
            "output_file_name: '../a' must be a plain file name, without folders",
        ),
        (
            {"inputs": {"a": {"path": "x"}}, "mini_batch_size": 0},
            "mini_batch_size: Input should be greater than 0",
        ),
        (
            {"inputs": {"a": {"path": "x"}}, "error_threshold": -5},
            "error_threshold: Input should be greater than or equal to -1",
        ),
    ],
)
def test_invocation_rejections(reject, data, message):
    assert reject("job", data) == f"spec.yml: {message}"
