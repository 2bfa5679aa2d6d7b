"""Pure URL parsing shared by `specs/` and `storage/`: protocols, blob URL forms, datastore account URLs and
connection strings.

String work only: no I/O, no environment, no third-party import. This module may import only
`batchctl.errors` and the standard library, so that validating a spec never loads the storage layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchctl.errors import SpecError, StorageError

AZURE_PROTOCOLS = ("az", "abfs", "abfss", "adl")


def is_url(value: str) -> bool:
    head, sep, _ = value.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").isalnum() and len(head) > 1


def protocol_of(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head.lower() if sep else "file"


def check_remote_path(url: str) -> None:
    path = url.split("://", 1)[1] if "://" in url else url
    segments = path.replace("\\", "/").split("/")
    if ".." in segments or "." in segments[1:-1]:
        raise SpecError(f"path '{url}' contains a '..' or '.' segment, which is not allowed in remote paths")
    if "\x00" in path:
        raise SpecError("path contains a NUL character")


@dataclass(frozen=True)
class AzureAddress:
    """Where a blob location lives: the account (None: from the environment) and `container/blob` path."""

    account: str | None
    account_url: str | None
    path: str

    @property
    def container(self) -> str:
        return self.path.split("/", 1)[0]


def _path_style(host: str) -> bool:
    """Emulator style (`http://127.0.0.1:10000/<account>/...`): the host is an IP, localhost or bare."""
    import ipaddress

    if host == "localhost" or "." not in host:
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def account_url(account_name: str, endpoint: str = "core.windows.net", protocol: str = "https") -> str:
    """The blob service URL of a datastore's account.

    `endpoint` is a DNS suffix (`core.windows.net`, `core.chinacloudapi.cn`) or, batchctl's extension for
    emulators and private endpoints, a URL: `http://127.0.0.1:10000/devstoreaccount1` (the connection
    string's BlobEndpoint) or `http://127.0.0.1:10000` (the account is appended, path style).
    """
    from urllib.parse import urlsplit

    if "://" in endpoint:
        parts = urlsplit(endpoint.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpecError(f"datastore endpoint '{endpoint}' must be a DNS suffix or an http(s):// URL")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise SpecError("datastore endpoint must not carry a query, a fragment or credentials")
        base = endpoint.rstrip("/")
        if _path_style(parts.hostname):
            segments = [s for s in parts.path.split("/") if s]
            if not segments:
                return f"{base}/{account_name}"
            if segments != [account_name]:
                raise SpecError(f"datastore endpoint '{endpoint}' names account '{segments[0]}', not '{account_name}'")
            return base
        if parts.path.strip("/"):
            raise SpecError(f"datastore endpoint '{endpoint}' must not have a path (the account URL only)")
        return base
    scheme = "http" if protocol == "http" else "https"
    return f"{scheme}://{account_name}.blob.{endpoint.strip('.')}"


def azure_address(url: str) -> AzureAddress:
    """Parse the blob URL forms batchctl accepts (docs/storage.md "Blob URLs")."""
    from urllib.parse import unquote, urlsplit

    scheme, _, rest = url.partition("://")
    if scheme in ("http", "https"):  # a datastore location: the account URL, then container/path
        parts = urlsplit(url)
        host = parts.hostname or ""
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if _path_style(host):
            if not segments:
                raise StorageError(f"'{url}' names no storage account")
            account, base = segments[0], f"{parts.scheme}://{parts.netloc}/{segments[0]}"
            segments = segments[1:]
        else:
            account, base = host.split(".", 1)[0], f"{parts.scheme}://{parts.netloc}"
        return AzureAddress(account, base, "/".join(segments))
    head, slash, tail = rest.partition("/")
    if "@" in head:  # abfs://<container>@<account>.dfs.core.windows.net/<path> (Azure's own form)
        container, _, host = head.partition("@")
        account, _, suffix = host.partition(".")
        kind, _, dns = suffix.partition(".")
        if kind not in ("blob", "dfs") or not dns or not account:
            raise SpecError(f"'{url}': expected {scheme}://<container>@<account>.blob.core.windows.net/<path>")
        path = "/".join(p for p in (container, tail) if p)
        return AzureAddress(account, f"https://{account}.blob.{dns}", path)
    return AzureAddress(None, None, rest.strip("/"))


def connection_string_parts(conn: str) -> dict[str, str]:
    """`Key=Value;...` of an Azure storage connection string, keys lower-cased. The result holds secrets."""
    out = {}
    for item in conn.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out
