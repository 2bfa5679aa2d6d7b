"""Azure Blob Storage: credentials from the environment, and one adlfs filesystem per account.

Credentials are never stored or logged: `_azure_auth` reads them from the environment each time, and a
filesystem (which holds the account key) is never pickled to a worker: each process builds its own.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any

from batchctl.errors import StorageError
from batchctl.storage.faults import _reason, _status, _storage_error
from batchctl.urls import AzureAddress, connection_string_parts

if TYPE_CHECKING:
    from batchctl.storage.locations import Location

# Bounded transport: a store that cannot be reached fails in seconds, not after the SDK's default
# 15 s / 18 s / 24 s back-offs (measured: 85 s for a closed port). Transient errors still get 3 retries.
CONNECT_TIMEOUT = 10  # seconds to open a TCP connection
READ_TIMEOUT = 120  # seconds without bytes on an open connection
_RETRY: dict[str, Any] = {
    "initial_backoff": 1,
    "increment_base": 2,
    "retry_total": 3,
    "retry_connect": 2,
    "retry_read": 2,
    "retry_status": 3,
    "random_jitter_range": 1,
}
_CRED_ENV = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_ANON",
)


def _azure_auth(addr: AzureAddress) -> tuple[str, str | None, str | None, Any]:
    """(kind, account, account_url, credential) from the environment only. Kinds: connection_string, key, sas,
    anon, aad. Secrets stay in memory: never returned to callers outside this module, never logged."""
    env = os.environ
    conn = env.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        check_connection_string(conn)
    env_account = env.get("AZURE_STORAGE_ACCOUNT_NAME")
    if addr.account is None:
        if conn:
            return "connection_string", connection_string_parts(conn).get("accountname"), None, conn
        if not env_account:
            raise StorageError(
                "no Azure storage account for an az:// or abfs:// URL without one",
                "set AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_NAME), "
                "write abfs://<container>@<account>.dfs.core.windows.net/<path>, or use a datastore path",
            )
        addr = AzureAddress(env_account, f"https://{env_account}.blob.core.windows.net", addr.path)
    account, url = addr.account, addr.account_url
    assert account is not None and url is not None
    if conn:
        parts = connection_string_parts(conn)
        if parts.get("accountname", "").lower() == account.lower():
            if parts.get("accountkey"):
                return "key", account, url, {"account_name": account, "account_key": parts["accountkey"]}
            if parts.get("sharedaccesssignature"):
                return "sas", account, url, parts["sharedaccesssignature"].lstrip("?")
    same_account = not env_account or env_account.lower() == account.lower()
    if same_account and env.get("AZURE_STORAGE_ACCOUNT_KEY"):
        return "key", account, url, {"account_name": account, "account_key": env["AZURE_STORAGE_ACCOUNT_KEY"]}
    if same_account and env.get("AZURE_STORAGE_SAS_TOKEN"):
        return "sas", account, url, env["AZURE_STORAGE_SAS_TOKEN"].lstrip("?")
    if env.get("AZURE_STORAGE_ANON", "").lower() in ("1", "true", "yes"):
        return "anon", account, url, None
    if not url.startswith("https://"):
        raise StorageError(
            f"no credentials for storage account '{account}' at {url}, and Azure AD sign-in needs https",
            "set AZURE_STORAGE_CONNECTION_STRING (for this account), AZURE_STORAGE_ACCOUNT_KEY or "
            "AZURE_STORAGE_SAS_TOKEN",
        )
    return "aad", account, url, None


def check_connection_string(conn: str) -> None:
    """A StorageError naming AZURE_STORAGE_CONNECTION_STRING (never its value) when it cannot be one."""
    import binascii

    parts = connection_string_parts(conn)
    problem = None
    if not parts:
        problem = "it is not a list of Key=Value pairs separated by ';'"
    elif not parts.get("accountname") and not parts.get("blobendpoint"):
        problem = "it names no AccountName (nor a BlobEndpoint)"
    elif "accountkey" in parts:
        try:
            base64.b64decode(parts["accountkey"], validate=True)
        except (binascii.Error, ValueError):
            problem = "its AccountKey is not base64"
    if problem:
        raise StorageError(
            f"AZURE_STORAGE_CONNECTION_STRING is malformed: {problem}",
            "set it to the account's connection string as the Azure portal shows it (AccountName, AccountKey "
            "and the endpoint, as Key=Value pairs separated by ';'), or unset it",
        )


def connection_string_account_url(account: str) -> str | None:
    """The blob service URL that AZURE_STORAGE_CONNECTION_STRING gives `account` (its BlobEndpoint, else
    its protocol and EndpointSuffix), or None when the connection string is unset or names another account."""
    from batchctl.errors import SpecError
    from batchctl.urls import account_url

    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not conn:
        return None
    parts = connection_string_parts(conn)
    if parts.get("accountname", "").lower() != account.lower():
        return None
    try:
        if parts.get("blobendpoint"):
            return account_url(account, parts["blobendpoint"])
        if parts.get("endpointsuffix"):
            return account_url(account, parts["endpointsuffix"], parts.get("defaultendpointsprotocol") or "https")
    except SpecError as exc:
        raise StorageError(
            f"AZURE_STORAGE_CONNECTION_STRING: BlobEndpoint/EndpointSuffix is not usable for account '{account}': "
            f"{exc.message}"
        ) from None
    return None


def _blob_service_client(kind: str, url: str | None, credential: Any) -> Any:
    from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

    common: dict[str, Any] = {
        "retry_policy": ExponentialRetry(**_RETRY),
        "connection_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "user_agent": "batchctl",
    }
    if kind == "connection_string":
        return BlobServiceClient.from_connection_string(credential, **common)
    if url is None:  # the SDK's own refusal of a missing URL, which the caller reports
        raise ValueError("no account URL")
    return BlobServiceClient(account_url=url, credential=credential, **common)


_fs_cache: dict[tuple[Any, ...], Any] = {}


def _azure_fs(addr: AzureAddress) -> Any:
    """One adlfs filesystem per account and credential set, per process. Workers build their own from the
    environment (a pickled adlfs filesystem carries the account key: one is never sent to a worker)."""
    import hashlib

    fingerprint = hashlib.sha256("\0".join(os.environ.get(k, "") for k in _CRED_ENV).encode()).hexdigest()
    key = (addr.account, addr.account_url, fingerprint, os.getpid())
    cached = _fs_cache.get(key)
    if cached is not None:
        return cached
    try:
        import adlfs
    except ImportError as exc:
        from batchctl.errors import MissingDependencyError

        raise MissingDependencyError("no filesystem for az:// is installed", "pip install 'batchctl[azure]'") from exc
    import logging

    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    kind, account, url, credential = _azure_auth(addr)
    if kind == "aad":
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        client = _blob_service_client(kind, url, credential)
    except ValueError as exc:  # the SDK's own parsing of the connection string or the account URL
        what = "AZURE_STORAGE_CONNECTION_STRING" if kind == "connection_string" else f"the account URL {url}"
        raise StorageError(f"cannot use {what}: {_reason(exc)}") from None

    class _BlobFileSystem(adlfs.AzureBlobFileSystem):
        def do_connect(self) -> None:
            self.service_client = client

    options: dict[str, Any] = {"skip_instance_cache": True}
    if kind == "aad":
        options["credential"] = credential  # adlfs closes it with the filesystem
    else:
        options["anon"] = True  # keeps adlfs from building a credential of its own
    if account:
        options["account_name"] = account
    try:
        fs = _BlobFileSystem(**options)
    except Exception as exc:
        raise StorageError(f"cannot open Azure storage {url or ''}: {_reason(exc)}") from exc
    fs.account_url = url
    fs.sas_permissions = sas_permissions(kind, credential)
    if len(_fs_cache) >= 8:  # credential sets changed: drop the old filesystems
        _fs_cache.clear()
    _fs_cache[key] = fs
    return fs


def sas_permissions(kind: str, credential: Any) -> str | None:
    """The `sp=` of the SAS token a filesystem uses (None: not a SAS, or one without `sp`)."""
    from urllib.parse import parse_qs

    token = None
    if kind == "sas" and isinstance(credential, str):
        token = credential
    elif kind == "connection_string" and isinstance(credential, str):
        token = connection_string_parts(credential).get("sharedaccesssignature")
    if not token:
        return None
    values = parse_qs(token.lstrip("?")).get("sp")
    return values[0] if values else None


def _container_exists(fs: Any, container: str, loc: Location) -> bool:
    from fsspec.asyn import sync

    async def check() -> bool:
        return bool(await fs.service_client.get_container_client(container).exists())

    try:
        return bool(sync(fs.loop, check))
    except Exception as exc:  # transport errors from the store
        if _status(exc) == 403:  # a container SAS may not read container properties: let the real call tell
            return True
        raise _storage_error("check", loc.url, exc, loc) from exc
