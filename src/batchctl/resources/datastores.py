"""Datastores: named storage roots. Credentials are never stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from batchctl.errors import ConflictError, NotFoundError, SpecError
from batchctl.resources._common import upsert
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace

DEFAULT_DATASTORE = "workspaceblobstore"


def builtin_datastore(ws: Workspace) -> dict[str, Any]:
    return {
        "name": DEFAULT_DATASTORE,
        "type": "local",
        "path": str(ws.default_datastore_dir()),
        "description": "The workspace's default datastore (a local folder until re-pointed).",
        "tags": {},
        "properties": {},
        "is_default": True,
    }


def create_datastore(
    ws: Workspace, file: str | None = None, name: str | None = None, overrides: Iterable[str] = ()
) -> dict[str, Any]:
    """Register a datastore. Credentials are never stored: they come from the environment at run time."""
    from batchctl.specs.assets import DatastoreSpec

    if file is None:
        raise SpecError("datastore create needs --file")
    spec = spec_load.load_spec("datastore", DatastoreSpec, file, overrides, fields={"name": name})
    record = spec.model_dump(mode="json", exclude={"credentials"})
    notice = None
    if getattr(spec, "credentials", None):
        notice = (
            "credentials in the spec were not stored; batchctl reads them from the environment "
            "(AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or Azure sign-in)"
        )
    record["is_default"] = spec.name == DEFAULT_DATASTORE
    return upsert(ws, "datastores", spec.name, record, notice)


def get_datastore(ws: Workspace, name: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    spec_load.validate_name("datastore", name)
    state = state if state is not None else ws.store.read()
    record = state["datastores"].get(name)
    if record is None:
        if name == DEFAULT_DATASTORE:
            return builtin_datastore(ws)
        raise NotFoundError(
            f"datastore '{name}' not found", "register it with `batchctl datastore create -f datastore.yml`"
        )
    return dict(record)


def list_datastores(ws: Workspace) -> list[dict[str, Any]]:
    state = ws.store.read()
    records = dict(state["datastores"])
    records.setdefault(DEFAULT_DATASTORE, builtin_datastore(ws))
    return [dict(records[k]) for k in sorted(records)]


def delete_datastore(ws: Workspace, name: str) -> dict[str, Any]:
    spec_load.validate_name("datastore", name)
    if name == DEFAULT_DATASTORE:
        raise ConflictError(
            "the default datastore 'workspaceblobstore' cannot be deleted",
            "re-point it with `batchctl datastore create -f` instead",
        )
    with ws.store.transaction() as state:
        if name not in state["datastores"]:
            raise NotFoundError(f"datastore '{name}' not found")
        del state["datastores"][name]
    return {"name": name, "deleted": True}
