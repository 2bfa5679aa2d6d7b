"""Helpers every resource shares: create-or-overwrite records, versioned assets, asset references."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchctl.errors import NotFoundError, SpecError
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace, now

LATEST = "latest"


VERSIONED = {"models": "model", "data": "data", "environments": "environment", "components": "component"}


def deployment_key(endpoint: str, name: str) -> str:
    return f"{endpoint}/{name}"


def stamp(record: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    record["created_at"] = previous.get("created_at", now()) if previous else now()
    record["updated_at"] = now()
    return record


def same_record(previous: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    if previous is None:
        return False
    ignore = {"created_at", "updated_at"}
    return {k: v for k, v in previous.items() if k not in ignore} == {
        k: v for k, v in record.items() if k not in ignore
    }


def upsert(ws: Workspace, section: str, name: str, record: dict[str, Any], notice: str | None = None) -> dict[str, Any]:
    """Create or overwrite a record; the same record again is a no-op. A notice is shown, never stored."""
    with ws.store.transaction() as state:
        previous = state[section].get(name)
        if previous is not None and same_record(previous, record):
            result = dict(previous)
        else:
            stamp(record, previous)
            state[section][name] = record
            result = dict(record)
    if notice:
        result["notice"] = notice
    return result


def split_ref(body: str) -> tuple[str, str]:
    """`<name>:<version>` / `<name>@latest` / `<name>` (the part after `azureml:`) -> (name, version)."""
    if body.endswith("@latest"):
        return body[: -len("@latest")], LATEST
    if ":" in body:
        name, _, version = body.rpartition(":")
        return name, version
    return body, LATEST


def parse_asset_ref(ref: str, kind: str) -> tuple[str, str]:
    """`azureml:<name>:<version>` / `azureml:<name>@latest` / `<name>:<version>` -> (name, version)."""
    name, version = split_ref(ref[len("azureml:") :] if ref.startswith("azureml:") else ref)
    spec_load.validate_name(kind, name)
    if version != LATEST:
        from batchctl.specs._base import version_problem

        problem = version_problem(version)
        if problem:
            raise SpecError(f"{kind} reference '{ref}': {problem}")
    return name, version


def version_key(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def latest_version(versions: dict[str, Any]) -> str | None:
    if not versions:
        return None
    return max(versions, key=lambda v: (versions[v].get("created_at", ""), version_key(v)))


def next_version(versions: dict[str, Any]) -> str:
    numbers = [int(v) for v in versions if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def get_versioned(state: dict[str, Any], section: str, name: str, version: str) -> dict[str, Any]:
    kind = VERSIONED[section]
    versions = state[section].get(name)
    if not versions:
        raise NotFoundError(
            f"{kind} '{name}' not found",
            f"register it with `batchctl {kind} create --name {name} ...`",
        )
    if version == LATEST:
        version = latest_version(versions) or ""
    record = versions.get(version)
    if record is None:
        raise NotFoundError(
            f"{kind} '{name}' has no version '{version}'; versions: {', '.join(sorted(versions, key=version_key))}"
        )
    return dict(record)


def deployment_names(state: dict[str, Any], endpoint: str) -> list[str]:
    return sorted(k.split("/", 1)[1] for k in state["deployments"] if k.startswith(f"{endpoint}/"))


def load_versioned(
    kind: str,
    model: Any,
    file: str | None,
    overrides: Iterable[str],
    name: str | None,
    version: str | None,
    type: str | None,
    path: str | None,
    description: str | None,
) -> tuple[Any, str]:
    """A model or data spec from a file and/or the command's options (a --path is relative to the cwd)."""
    fields = {
        "name": name,
        "version": version,
        "type": type,
        "path": spec_load.resolve_local(path, Path.cwd()) if path else None,
        "description": description,
    }
    spec = spec_load.load_spec(kind, model, file, overrides, fields=fields)
    return spec, (Path(file).name if file else f"{kind} options")


def list_versioned(ws: Workspace, section: str, name: str | None) -> list[dict[str, Any]]:
    state = ws.store.read()
    if name is not None:
        spec_load.validate_name(VERSIONED[section], name)
        versions = state[section].get(name, {})
        return [dict(versions[v]) for v in sorted(versions, key=version_key)]
    out = []
    for _asset, versions in sorted(state[section].items()):
        latest = latest_version(versions)
        if latest:
            out.append(dict(versions[latest]))
    return out


def pop_versions(
    state: dict[str, Any], section: str, label: str, name: str, version: str | None, check: Any = None
) -> list[dict[str, Any]]:
    """Remove one version (or every version) of a versioned asset; `check(v)` may refuse first."""
    versions = state[section].get(name)
    if not versions:
        raise NotFoundError(f"{label} '{name}' not found")
    targets = [version] if version else list(versions)
    for v in targets:
        if v not in versions:
            raise NotFoundError(f"{label} '{name}' has no version '{v}'")
        if check is not None:
            check(v)
    removed = [versions.pop(v) for v in targets]
    if not versions:
        del state[section][name]
    return removed
