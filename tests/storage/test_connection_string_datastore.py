"""A datastore with no endpoint, behind AZURE_STORAGE_CONNECTION_STRING: the connection string's BlobEndpoint
and credentials serve the datastore when it names the same account (issue 16, item 1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchctl import api
from batchctl.errors import StorageError
from batchctl.resources.locations import resolve_datastore_path

pytestmark = [pytest.mark.azurite]


def _datastore(tmp_path: Path, name: str, account: str, container: str) -> Path:
    spec = tmp_path / f"{name}.yml"
    spec.write_text(
        yaml.safe_dump({"name": name, "type": "azure_blob", "account_name": account, "container_name": container})
    )
    return spec


@pytest.mark.mlflow
@pytest.mark.slow
def test_datastore_without_endpoint_uses_the_connection_strings_blob_endpoint(
    heart: Any, azurite: Any, upload: Any, blob_reader: Any, tmp_path: Path
) -> None:
    container = azurite.new_container()
    upload(container, {"in/a.csv": b"age,chol,thal\n63,233,fixed\n41,204,normal\n"})
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
    heart.ok("datastore", "create", "-f", str(_datastore(tmp_path, "emu", "devstoreaccount1", container)))
    proc = heart.invoke(
        "--input", "azureml://datastores/emu/paths/in", "--output-path", "azureml://datastores/emu/paths/out"
    )
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["status"] == "Completed"
    assert job["output_file"] == f"{azurite.blob_endpoint}/{container}/out/predictions.csv"
    assert len((blob_reader(f"{container}/out/predictions.csv") or b"").splitlines()) == 2


def test_the_connection_string_is_used_only_for_its_own_account(
    azurite: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ws = api.Workspace.open(None)
    api.create_datastore(ws, str(_datastore(tmp_path, "emu", "devstoreaccount1", "data")))
    api.create_datastore(ws, str(_datastore(tmp_path, "other", "otheraccount", "data")))
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    same = resolve_datastore_path(ws, "azureml://datastores/emu/paths/x/y.csv")
    assert same.url == f"{azurite.blob_endpoint}/data/x/y.csv"
    # a mismatch keeps the public endpoint
    other = resolve_datastore_path(ws, "azureml://datastores/other/paths/x")
    assert other.url == "https://otheraccount.blob.core.windows.net/data/x"
    # a sovereign cloud: no BlobEndpoint, an EndpointSuffix
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=https;AccountName=otheraccount;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
    )
    assert resolve_datastore_path(ws, "azureml://datastores/other/paths/x").url == (
        "https://otheraccount.blob.core.chinacloudapi.cn/data/x"
    )
    # a connection string whose endpoint is not a blob URL is a clear error, not a silent fallback
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", "AccountName=otheraccount;AccountKey=a2V5;BlobEndpoint=ftp://x"
    )
    with pytest.raises(StorageError, match="BlobEndpoint"):
        resolve_datastore_path(ws, "azureml://datastores/other/paths/x")
