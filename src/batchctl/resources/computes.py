"""Computes: this machine (`local`, built in) or a Ray cluster."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from batchctl.errors import ConflictError, NotFoundError
from batchctl.resources._common import upsert
from batchctl.resources.records import ComputeRecord
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace

BUILTIN_COMPUTE = "local"


def builtin_compute() -> dict[str, Any]:
    return {
        "name": BUILTIN_COMPUTE,
        "type": "local",
        "max_workers": None,
        "description": "This machine: a supervised pool of spawned processes.",
        "tags": {},
        "properties": {},
    }


def create_compute(
    ws: Workspace,
    file: str | None = None,
    name: str | None = None,
    type: str | None = None,
    address: str | None = None,
    max_workers: int | None = None,
    min_instances: int | None = None,
    max_instances: int | None = None,
    size: str | None = None,
    overrides: Iterable[str] = (),
) -> ComputeRecord:
    """Create or overwrite a compute; the record (with a `notice` for an amlcompute cluster, never stored)."""
    from batchctl.specs.assets import ComputeSpec

    spec = spec_load.load_spec(
        "compute",
        ComputeSpec,
        file,
        overrides,
        fields={
            "name": name,
            "type": type,
            "address": address,
            "max_workers": max_workers,
            "min_instances": min_instances,
            "max_instances": max_instances,
            "size": size,
        },
    )
    if spec.name == BUILTIN_COMPUTE and spec.type != "local":
        raise ConflictError("'local' is the built-in compute and stays of type local")
    record = spec.model_dump(mode="json")
    notice = None
    if spec.type == "amlcompute":
        record["runs_as"] = "local"
        notice = f"compute '{spec.name}' is an Azure amlcompute cluster: batchctl runs its jobs locally"
    return ComputeRecord.load(upsert(ws, "computes", spec.name, record, notice))


def get_compute(ws: Workspace, name: str, state: dict[str, Any] | None = None) -> ComputeRecord:
    name = spec_load.validate_name("compute", name)
    state = state if state is not None else ws.store.read()
    record = state["computes"].get(name)
    if record is None:
        if name == BUILTIN_COMPUTE:
            return ComputeRecord.load(builtin_compute())
        raise NotFoundError(
            f"compute '{name}' not found",
            f"create it with `batchctl compute create -n {name} --type local` (or --type ray --address ADDR)",
        )
    return ComputeRecord.load(record)


def list_computes(ws: Workspace) -> list[ComputeRecord]:
    records = dict(ws.store.read()["computes"])
    records.setdefault(BUILTIN_COMPUTE, builtin_compute())
    return [ComputeRecord.load(records[k]) for k in sorted(records)]


def delete_compute(ws: Workspace, name: str) -> dict[str, Any]:
    spec_load.validate_name("compute", name)
    if name == BUILTIN_COMPUTE:
        raise ConflictError("the built-in compute 'local' cannot be deleted")
    with ws.store.transaction() as state:
        if name not in state["computes"]:
            raise NotFoundError(f"compute '{name}' not found")
        users = [k for k, d in state["deployments"].items() if d.get("compute") == name]
        if users:
            raise ConflictError(f"compute '{name}' is used by deployment {', '.join(users)}")
        del state["computes"][name]
    return {"name": name, "deleted": True}
