"""Blob URL forms, datastore endpoints, and where credentials come from (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchctl import storage
from batchctl.errors import StorageError
from batchctl.storage.azure import _CRED_ENV, _azure_auth

KEY = "a2V5a2V5a2V5a2V5"


@pytest.mark.parametrize(
    ("account", "endpoint", "protocol", "url"),
    [
        ("acct", "core.windows.net", "https", "https://acct.blob.core.windows.net"),
        ("acct", "core.chinacloudapi.cn", "wasbs", "https://acct.blob.core.chinacloudapi.cn"),
        ("devstoreaccount1", "http://127.0.0.1:10000", "http", "http://127.0.0.1:10000/devstoreaccount1"),
        ("devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1/", "http", "http://127.0.0.1:10000/devstoreaccount1"),
        ("acct", "https://acct.privatelink.blob.core.windows.net", "https", "https://acct.privatelink.blob.core.windows.net"),
    ],
)  # fmt: skip
def test_account_url(account: str, endpoint: str, protocol: str, url: str) -> None:
    assert storage.account_url(account, endpoint, protocol) == url


@pytest.mark.parametrize(
    ("url", "account", "account_url", "path"),
    [
        ("az://c/a/b.csv", None, None, "c/a/b.csv"),
        ("abfs://c@acct.dfs.core.windows.net/a", "acct", "https://acct.blob.core.windows.net", "c/a"),
        ("http://127.0.0.1:1/devstoreaccount1/c/a", "devstoreaccount1", "http://127.0.0.1:1/devstoreaccount1",
         "c/a"),
        ("https://acct.blob.core.windows.net/c/a/b", "acct", "https://acct.blob.core.windows.net", "c/a/b"),
    ],
)  # fmt: skip
def test_azure_address(url: str, account: str | None, account_url: str | None, path: str) -> None:
    assert storage.azure_address(url) == storage.AzureAddress(account, account_url, path)


def test_datastore_endpoint_naming_another_account_is_rejected(cli: Any, write_spec: Any) -> None:
    spec = write_spec("ds.yml", {"name": "bad", "type": "azure_blob", "account_name": "devstoreaccount1",
                                 "container_name": "data",
                                 "endpoint": "http://127.0.0.1:10000/other"})  # fmt: skip
    result = cli("datastore", "create", "-f", str(spec))
    assert result.exit_code == 3
    assert "names account 'other', not 'devstoreaccount1'" in result.output


def _auth(monkeypatch: pytest.MonkeyPatch, url: str, **env: str) -> tuple[str, Any]:
    for name in _CRED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    kind, _, _, cred = _azure_auth(storage.azure_address(url))
    return kind, cred


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://acct.blob.core.windows.net/c/p"
    conn = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"
    assert _auth(monkeypatch, url, AZURE_STORAGE_CONNECTION_STRING=conn) == (
        "key", {"account_name": "acct", "account_key": KEY})  # fmt: skip
    # a connection string for another account is not used for this one
    other = conn.replace("AccountName=acct", "AccountName=other")
    assert _auth(monkeypatch, url, AZURE_STORAGE_CONNECTION_STRING=other)[0] == "aad"
    assert _auth(monkeypatch, url, AZURE_STORAGE_ACCOUNT_KEY=KEY)[0] == "key"
    assert _auth(monkeypatch, url, AZURE_STORAGE_SAS_TOKEN="?sv=1&sig=abc") == ("sas", "sv=1&sig=abc")
    assert _auth(monkeypatch, url, AZURE_STORAGE_ANON="true")[0] == "anon"
    with pytest.raises(StorageError, match="no Azure storage account"):
        _auth(monkeypatch, "az://c/p")


def test_default_azure_credential_is_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Azure AD sign-in cannot exist here: only DefaultAzureCredential is mocked, and no request is made."""
    import azure.identity.aio

    made: list[Any] = []

    class FakeCredential:
        def __init__(self, **kwargs: Any) -> None:
            made.append(self)

        async def get_token(self, *scopes: str, **kwargs: Any) -> Any:  # pragma: no cover - never called
            raise AssertionError("no request expected")

        async def close(self) -> None:
            pass

    monkeypatch.setattr(azure.identity.aio, "DefaultAzureCredential", FakeCredential)
    for name in _CRED_ENV:
        monkeypatch.delenv(name, raising=False)
    fs, path = storage.remote(storage.Location("https://acct.blob.core.windows.net/c/p", "az"))
    assert path == "c/p" and len(made) == 1
    assert fs.service_client.credential is made[0]
    assert fs.service_client.url.startswith("https://acct.blob.core.windows.net")
