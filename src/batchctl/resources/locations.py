"""Where a job reads and writes: `azureml://datastores/<ds>/paths/<p>`, data asset references and
plain paths or URLs, resolved to a storage Location."""

from __future__ import annotations

import os
from pathlib import Path

from batchctl import storage
from batchctl.errors import SpecError
from batchctl.resources.data import resolve_data_ref
from batchctl.resources.datastores import get_datastore
from batchctl.urls import account_url, check_remote_path
from batchctl.workspace import Workspace

DATASTORE_PREFIX = "azureml://datastores/"
DEFAULT_ENDPOINT = "core.windows.net"  # a datastore spec's default: "no endpoint given"


def resolve_datastore_path(ws: Workspace, url: str) -> storage.Location:
    """azureml://datastores/<name>/paths/<path> -> a concrete location."""
    rest = url[len(DATASTORE_PREFIX) :]
    name, sep, path = rest.partition("/paths/")
    if not sep:
        name, _, path = rest.partition("/")
        if path and not path.startswith("paths"):
            raise SpecError(f"'{url}' must look like azureml://datastores/<name>/paths/<path>")
        path = path[len("paths") :].lstrip("/")
    datastore = get_datastore(ws, name)
    path = path.strip("/")
    segments = [s for s in path.split("/") if s]
    if any(s in ("..", ".") for s in segments) or "\x00" in path:
        raise SpecError(f"'{url}': datastore paths may not contain '.' or '..' segments")
    kind = datastore["type"]
    if kind == "local":
        base = Path(datastore["path"])
        target = (base / path) if path else base
        resolved = os.path.abspath(target)
        if os.path.commonpath([os.path.abspath(base), resolved]) != os.path.abspath(base):
            raise SpecError(f"'{url}' leaves datastore '{name}'")
        return storage.Location(resolved, "file")
    # azure_blob / azure_data_lake_gen2: the datastore's own account and endpoint (docs/storage.md),
    # written as the blob URL so that a worker process can rebuild it from the job plan alone.
    container = datastore.get("container_name") or datastore.get("filesystem")
    endpoint = datastore.get("endpoint") or DEFAULT_ENDPOINT
    # no endpoint of its own: AZURE_STORAGE_CONNECTION_STRING for the same account (Azurite, a sovereign
    # cloud, a private endpoint) says where it lives, as it does for az:// URLs
    base_url = (
        storage.connection_string_account_url(datastore["account_name"]) if endpoint == DEFAULT_ENDPOINT else None
    )
    base_url = base_url or account_url(datastore["account_name"], endpoint, datastore.get("protocol") or "https")
    protocol = "abfs" if kind == "azure_data_lake_gen2" else "az"
    blob_url = "/".join(p for p in (base_url, container, path) if p)
    check_remote_path(blob_url)
    return storage.Location(blob_url, protocol)


def resolve_location(ws: Workspace, value: str) -> storage.Location:
    """A datastore path, a URL or a local path (not a data asset reference)."""
    if value.startswith(DATASTORE_PREFIX):
        return resolve_datastore_path(ws, value)
    if value.startswith("azureml:"):
        raise SpecError(f"'{value}' is a data asset reference, not a path")
    return storage.location(value)


def resolve_input(ws: Workspace, value: str, input_type: str | None) -> tuple[storage.Location, str | None, str]:
    """(location, type or None to probe, description) for --input."""
    if not value:
        raise SpecError("Input path can't be empty for batch endpoint invoke")
    if value.startswith("azureml:") and not value.startswith("azureml://"):
        asset = resolve_data_ref(ws, value)
        loc = resolve_location(ws, asset["path"])
        return loc, input_type or asset["type"], f"{asset['id']} ({asset['path']})"
    return resolve_location(ws, value), input_type, value


def default_output(endpoint: str, job: str) -> str:
    """Azure's default: the workspace's default datastore, under <endpoint>/<job>/."""
    return f"{DATASTORE_PREFIX}workspaceblobstore/paths/{endpoint}/{job}/"
