"""Data assets: versioned references to a local path, URL or datastore path (nothing is copied)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchctl.errors import ConflictError, SpecError
from batchctl.resources._common import (
    LATEST,
    get_versioned,
    latest_version,
    list_versioned,
    load_versioned,
    next_version,
    parse_asset_ref,
    pop_versions,
    same_record,
    stamp,
)
from batchctl.specs import load as spec_load
from batchctl.urls import is_url
from batchctl.workspace import Workspace


def create_data(
    ws: Workspace,
    file: str | None = None,
    name: str | None = None,
    version: str | None = None,
    type: str | None = None,
    path: str | None = None,
    description: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Register a data asset (a reference to a local path, URL or datastore path; nothing is copied)."""
    from batchctl.specs.assets import DataSpec

    spec, source = load_versioned("data", DataSpec, file, overrides, name, version, type, path, description)
    local = not (spec.path.startswith("azureml:") or is_url(spec.path))
    if local:
        p = Path(spec.path)
        if not p.exists():
            raise SpecError(f"{source}: path: '{p}' does not exist")
        if spec.type == "uri_file" and not p.is_file():
            raise SpecError(f"{source}: path: '{p}' is a folder but type is uri_file")
        if spec.type == "uri_folder" and not p.is_dir():
            raise SpecError(f"{source}: path: '{p}' is a file but type is uri_folder")
    with ws.store.transaction() as state:
        versions = state["data"].setdefault(spec.name, {})
        body = {
            "name": spec.name,
            "type": spec.type,
            "path": spec.path,
            "description": spec.description,
            "tags": spec.tags,
            "properties": spec.properties,
        }
        if spec.version is None:
            latest = latest_version(versions)
            if latest and all(versions[latest].get(k) == v for k, v in body.items()):
                return dict(versions[latest])
        chosen = spec.version or next_version(versions)
        previous = versions.get(chosen)
        record = {**body, "version": chosen, "id": f"azureml:{spec.name}:{chosen}"}
        if previous is not None:
            if previous["path"] != record["path"] or previous["type"] != record["type"]:
                raise ConflictError(
                    f"data asset '{spec.name}' version '{chosen}' exists with another path or type; "
                    "versions are immutable",
                    "omit the version to register a new one",
                )
            if same_record(previous, {**record, "created_at": previous.get("created_at")}):
                return dict(previous)
        stamp(record, previous)
        versions[chosen] = record
    return record


def get_data(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("data", name)
    return get_versioned(ws.store.read(), "data", name, version or LATEST)


def resolve_data_ref(ws: Workspace, ref: str) -> dict[str, Any]:
    name, version = parse_asset_ref(ref, "data")
    return get_versioned(ws.store.read(), "data", name, version)


def list_data(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    return list_versioned(ws, "data", name)


def delete_data(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("data", name)
    with ws.store.transaction() as state:
        removed = pop_versions(state, "data", "data asset", name, version)
    return {"name": name, "versions_deleted": [r["version"] for r in removed]}
