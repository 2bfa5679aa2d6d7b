"""Batch endpoints: a name that routes jobs to its deployments."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchctl.errors import NotFoundError, SpecError
from batchctl.resources._common import deployment_key, deployment_names, same_record, stamp
from batchctl.resources.records import EndpointRecord
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace, now


def create_endpoint(
    ws: Workspace,
    file: str | None = None,
    name: str | None = None,
    overrides: Iterable[str] = (),
    description: str | None = None,
) -> EndpointRecord:
    """Create or overwrite an endpoint (as `az ml batch-endpoint create`)."""
    from batchctl.specs.endpoint import EndpointSpec

    if file is None and name is None:
        raise SpecError("endpoint create needs --file or --name")
    spec = spec_load.load_spec(
        "endpoint", EndpointSpec, file, overrides, fields={"name": name, "description": description}
    )
    with ws.store.transaction() as state:
        previous = state["endpoints"].get(spec.name)
        record = spec.model_dump(mode="json")
        default = record["defaults"]["deployment_name"]
        if default is None and previous:
            record["defaults"]["deployment_name"] = previous["defaults"].get("deployment_name")
        elif default is not None and deployment_key(spec.name, default) not in state["deployments"]:
            raise NotFoundError(
                f"defaults.deployment_name: deployment '{default}' not found in endpoint '{spec.name}'",
                "create the deployment first, then set it as default",
            )
        record["provisioning_state"] = "Succeeded"
        # no scoring_uri is stored: it is where `batchctl serve` listens, known only when read (api.get_endpoint)
        record.pop("scoring_uri", None)
        record["spec_hash"] = spec_load.spec_hash(spec)
        if same_record(previous, {**record, "created_at": None}) and previous is not None:
            return EndpointRecord.load(previous)
        stamp(record, previous)
        state["endpoints"][spec.name] = record
    return EndpointRecord.load(record)


def stored_endpoint(state: dict[str, Any], name: str) -> dict[str, Any]:
    """The endpoint's dict in a registry state (to change it inside a transaction); NotFoundError if none."""
    name = spec_load.validate_name("endpoint", name)
    record = state["endpoints"].get(name)
    if record is None:
        raise NotFoundError(f"endpoint '{name}' not found", f"create it with `batchctl endpoint create --name {name}`")
    return dict(record)


def get_endpoint(ws: Workspace, name: str, state: dict[str, Any] | None = None) -> EndpointRecord:
    return EndpointRecord.load(stored_endpoint(state if state is not None else ws.store.read(), name))


def list_endpoints(ws: Workspace) -> list[EndpointRecord]:
    return [EndpointRecord.load(r) for _, r in sorted(ws.store.read()["endpoints"].items())]


ENDPOINT_UPDATABLE = ("description", "tags", "properties", "defaults")


def update_endpoint(
    ws: Workspace, name: str | None, overrides: Iterable[str] = (), file: str | None = None
) -> EndpointRecord:
    """Update description, tags, properties or defaults (`--set defaults.deployment_name=D`).

    With no name, the endpoint is the one the file names."""
    from batchctl.specs.endpoint import EndpointSpec

    if name is None and file is not None:
        name = str(spec_load.read_yaml(Path(file)).get("name") or "")
    if not name:
        raise SpecError("endpoint update needs --name (or a --file with a name)")
    name = spec_load.validate_name("endpoint", name)
    overrides = list(overrides)
    with ws.store.transaction() as state:
        previous = stored_endpoint(state, name)
        base = {k: previous[k] for k in ("name", *ENDPOINT_UPDATABLE, "auth_mode") if k in previous}
        if file is not None:
            incoming = spec_load.read_yaml(Path(file))
            incoming.pop("$schema", None)
            for key in incoming:
                if key not in (*ENDPOINT_UPDATABLE, "name", "auth_mode"):
                    raise SpecError(f"{Path(file).name}: {key}: cannot be updated on an existing endpoint")
            base.update({k: v for k, v in incoming.items() if k != "name"})
        for item in overrides:
            key = item.partition("=")[0].strip().split(".")[0]
            if key not in ENDPOINT_UPDATABLE:
                raise SpecError(f"--set: '{key}' cannot be updated; updatable: {', '.join(ENDPOINT_UPDATABLE)}")
        data = spec_load.apply_overrides(base, overrides)
        spec = spec_load.validate_data(EndpointSpec, data, "endpoint update")
        default = spec.defaults.deployment_name
        if default is not None and deployment_key(name, default) not in state["deployments"]:
            existing = deployment_names(state, name)
            raise NotFoundError(
                f"deployment '{default}' not found in endpoint '{name}'"
                + (f"; existing: {', '.join(existing)}" if existing else "; it has no deployments"),
            )
        record = {**previous, **spec.model_dump(mode="json")}
        record["spec_hash"] = spec_load.spec_hash(spec)
        if not same_record(previous, record):
            record["updated_at"] = now()
            state["endpoints"][name] = record
    return EndpointRecord.load(record)


def delete_endpoint(ws: Workspace, name: str) -> dict[str, Any]:
    """Delete an endpoint and all its deployments; its jobs stay listed."""
    name = spec_load.validate_name("endpoint", name)
    with ws.store.transaction() as state:
        if name not in state["endpoints"]:  # a missing endpoint is no reason to create one
            raise NotFoundError(
                f"endpoint '{name}' not found; nothing was deleted", "`batchctl endpoint list` shows the endpoints"
            )
        record = stored_endpoint(state, name)
        removed = [k for k in state["deployments"] if k.startswith(f"{name}/")]
        for key in removed:
            del state["deployments"][key]
        del state["endpoints"][name]
    return {
        "name": name,
        "deleted": True,
        "deployments_deleted": [k.split("/", 1)[1] for k in removed],
        "record": record,
    }
