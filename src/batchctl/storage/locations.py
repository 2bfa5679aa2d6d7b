"""Where data lives: `Location` (a local path or an fsspec URL), its JSON record, and the filesystem for it.

Local paths use plain os calls; every other URL goes through fsspec, which is imported only when a remote
location is used. Credentials are never stored: `storage_options()` and the Azure filesystem read them
from the environment each time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from batchctl.errors import StorageError
from batchctl.storage.azure import CONNECT_TIMEOUT, READ_TIMEOUT, _azure_fs
from batchctl.storage.faults import _reason
from batchctl.urls import AZURE_PROTOCOLS, azure_address, check_remote_path, protocol_of


@dataclass(frozen=True)
class Location:
    """A resolved place: `local` is an absolute path, otherwise `url` is an fsspec URL."""

    url: str
    protocol: str  # "file" for local

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def path(self) -> str:
        if self.is_local:
            return self.url
        return self.url.split("://", 1)[1]

    def join(self, *parts: str) -> Location:
        if self.is_local:
            return Location(os.path.join(self.url, *parts), "file")
        return Location("/".join([self.url.rstrip("/"), *[p.strip("/") for p in parts]]), self.protocol)


def location_from_record(data: dict[str, Any]) -> Location:
    return Location(data["url"], data["protocol"])


def location_record(loc: Location) -> dict[str, str]:
    return {"url": loc.url, "protocol": loc.protocol}


def location(url: str) -> Location:
    protocol = protocol_of(url)
    if protocol == "file":
        local = url[len("file://") :] if url.startswith("file://") else url
        return Location(os.path.abspath(os.path.expanduser(local)), "file")
    check_remote_path(url)
    return Location(url, protocol)


def storage_options(protocol: str) -> dict[str, Any]:
    """Options for fsspec filesystems other than Azure (Azure: `_azure_fs`). Never persisted, never logged."""
    if protocol in ("http", "https"):
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
        return {"client_kwargs": {"timeout": timeout}, "skip_instance_cache": True}
    return {}


def filesystem(protocol: str) -> Any:
    """An fsspec filesystem for a protocol other than Azure's (those need an account: see `remote`)."""
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
        from batchctl.errors import MissingDependencyError

        raise MissingDependencyError("fsspec is not installed", "pip install batchctl") from exc
    try:
        return fsspec.filesystem(protocol, **storage_options(protocol))
    except (ImportError, ValueError) as exc:
        from batchctl.errors import MissingDependencyError

        hint = f"install the fsspec implementation for {protocol}://"
        if isinstance(exc, ValueError) and "Protocol not known" not in str(exc):
            raise StorageError(f"cannot open {protocol}:// storage: {_reason(exc)}") from exc
        raise MissingDependencyError(f"no filesystem for {protocol}:// is installed", hint) from exc


def remote(loc: Location) -> tuple[Any, str]:
    """(filesystem, path for that filesystem) of a remote location."""
    if loc.protocol in AZURE_PROTOCOLS:
        addr = azure_address(loc.url)
        return _azure_fs(addr), addr.path
    return filesystem(loc.protocol), loc.url
