"""batchctl.urls: pure parsing of protocols, blob URLs, datastore account URLs and connection strings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from batchctl.errors import SpecError, StorageError
from batchctl.urls import (
    AzureAddress,
    account_url,
    azure_address,
    check_remote_path,
    connection_string_parts,
    is_url,
    protocol_of,
)


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("az://c/p", "az"),
        ("ABFSS://c@a.dfs.core.windows.net/p", "abfss"),
        ("https://acct.blob.core.windows.net/c", "https"),
        ("file:///tmp/a", "file"),
        ("/tmp/a", "file"),
        ("relative/dir", "file"),
    ],
)
def test_protocol_of(url: str, protocol: str) -> None:
    assert protocol_of(url) == protocol


def test_is_url() -> None:
    assert is_url("az://c/p") and is_url("git+https://h/r") and is_url("file:///tmp/a")
    assert not is_url("/tmp/a") and not is_url("C:\\data") and not is_url("c://x") and not is_url("a b://x")


@pytest.mark.parametrize(
    ("account", "endpoint", "protocol", "url"),
    [
        ("acct", "core.windows.net", "https", "https://acct.blob.core.windows.net"),
        ("acct", "core.windows.net", "http", "http://acct.blob.core.windows.net"),
        ("acct", "core.chinacloudapi.cn.", "abfss", "https://acct.blob.core.chinacloudapi.cn"),
        ("devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1", "https", "http://127.0.0.1:10000/devstoreaccount1"),
        ("devstoreaccount1", "http://127.0.0.1:10000", "http", "http://127.0.0.1:10000/devstoreaccount1"),
        ("devstoreaccount1", "http://localhost:10000/", "http", "http://localhost:10000/devstoreaccount1"),
    ],
)  # fmt: skip
def test_account_url(account: str, endpoint: str, protocol: str, url: str) -> None:
    assert account_url(account, endpoint, protocol) == url


def test_account_url_defaults_to_the_public_cloud() -> None:
    assert account_url("acct") == "https://acct.blob.core.windows.net"


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://127.0.0.1:10000/other", "names account 'other', not 'devstoreaccount1'"),
        ("ftp://127.0.0.1", r"must be a DNS suffix or an http\(s\):// URL"),
        ("http://127.0.0.1:10000?sig=x", "must not carry a query, a fragment or credentials"),
        ("https://acct.privatelink.blob.core.windows.net/path", "must not have a path"),
    ],
)
def test_account_url_refuses_bad_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        account_url("devstoreaccount1", endpoint)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("az://container/path/x.csv", AzureAddress(None, None, "container/path/x.csv")),
        ("az://container/", AzureAddress(None, None, "container")),
        ("abfs://container@account.dfs.core.windows.net/p",
         AzureAddress("account", "https://account.blob.core.windows.net", "container/p")),
        ("abfss://container@account.blob.core.chinacloudapi.cn",
         AzureAddress("account", "https://account.blob.core.chinacloudapi.cn", "container")),
        ("https://account.blob.core.windows.net/container/dir/f%20g.csv",
         AzureAddress("account", "https://account.blob.core.windows.net", "container/dir/f g.csv")),
        ("http://127.0.0.1:10000/devstoreaccount1/c/p",
         AzureAddress("devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1", "c/p")),
    ],
)  # fmt: skip
def test_azure_address(url: str, address: AzureAddress) -> None:
    assert azure_address(url) == address


def test_azure_address_container() -> None:
    assert azure_address("az://container/path/x.csv").container == "container"
    assert azure_address("abfs://container@account.dfs.core.windows.net/p").container == "container"


def test_azure_address_refusals() -> None:
    with pytest.raises(SpecError, match=r"expected abfs://<container>@<account>\.blob\.core\.windows\.net/<path>"):
        azure_address("abfs://c@acct.files.core.windows.net/p")
    with pytest.raises(StorageError, match="names no storage account"):
        azure_address("http://127.0.0.1:10000/")


@pytest.mark.parametrize("url", ["az://c/../x", "az://c/a/./b", "az://c/a\\..\\b", "../x"])
def test_check_remote_path_refuses_dot_segments(url: str) -> None:
    with pytest.raises(SpecError, match="contains a '..' or '.' segment"):
        check_remote_path(url)


def test_check_remote_path() -> None:
    for url in ("az://c/a/b.csv", "az://c/a/", "az://c/a/.", "https://h/c/a..b"):  # no error
        check_remote_path(url)
    with pytest.raises(SpecError, match="NUL character"):
        check_remote_path("az://c/a\x00b")


def test_connection_string_parts() -> None:
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=abc==;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    )
    assert connection_string_parts(conn) == {
        "defaultendpointsprotocol": "http",
        "accountname": "devstoreaccount1",
        "accountkey": "abc==",
        "blobendpoint": "http://127.0.0.1:10000/devstoreaccount1",
    }
    assert connection_string_parts(" AccountName = a ; junk ; SharedAccessSignature=?sv=1&sig=x==") == {
        "accountname": "a",
        "sharedaccesssignature": "?sv=1&sig=x==",
    }


def test_urls_imports_only_the_standard_library_and_errors() -> None:
    probe = "import json, sys, batchctl.urls; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    loaded = set(json.loads(out))
    assert sorted(m for m in loaded if m.startswith("batchctl")) == ["batchctl", "batchctl.errors", "batchctl.urls"]
    assert {m.split(".")[0] for m in loaded} & {"pydantic", "yaml", "fsspec", "adlfs", "aiohttp", "azure"} == set()
