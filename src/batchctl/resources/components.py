"""Registered components (Azure's component assets): immutable versions, the code folder snapshotted into
the workspace at create time as a model's files are (`components/<name>/<version>/code/<folder>`).

A pipeline component's steps given as files are registered too, as Azure does, when they have a name
(the pipeline's record then names them `azureml:<name>:<version>`); an unnamed or inline step component
stays inside the pipeline's record, its code snapshotted under `components/<pipeline>/<version>/steps/<step>`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import ConflictError, NotFoundError, SpecError
from batchctl.resources._common import (
    LATEST,
    get_versioned,
    list_versioned,
    next_version,
    parse_asset_ref,
    pop_versions,
    stamp,
)
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace, content_hash, copy_into

if TYPE_CHECKING:
    from batchctl.specs.component import CommandComponentSpec, PipelineComponentSpec

    ComponentSpec = CommandComponentSpec | PipelineComponentSpec

SECTION = "components"
REGISTRY_PREFIX = "azureml://registries/"


def components_dir(ws: Workspace) -> Path:
    return ws.root / "components"


def code_digest(code: str | None) -> str | None:
    """The content hash of a local code folder (None when the component has none)."""
    if not code:
        return None
    path = Path(code)
    if not path.exists():
        return None
    return content_hash(path)


# what names or describes a component without changing what it runs
DESCRIPTIVE = frozenset({"name", "version", "display_name", "description", "tags", "properties"})


def definition_digest(spec: ComponentSpec, runnable_only: bool = False) -> str:
    """sha256 of a component's canonical spec, its code folder's content in place of the folder's path, and
    (for a pipeline) each step component's digest: the same component from another folder is the same.
    `runnable_only`: without the fields that only name or describe it (a step's definition for reuse)."""
    from batchctl.specs.component import CommandComponentSpec

    body = spec.model_dump(mode="json", exclude={"code", "jobs", *(DESCRIPTIVE if runnable_only else ())})
    if isinstance(spec, CommandComponentSpec):
        body["code"] = code_digest(spec.code)
    else:
        body["jobs"] = {
            step: {
                **node.model_dump(mode="json", exclude={"component"}),
                "component": node.component if isinstance(node.component, str) else definition_digest(node.component),
            }
            for step, node in spec.jobs.items()
        }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_code(spec: CommandComponentSpec) -> None:
    """A component's code folder exists (a `code:` that is not local is refused)."""
    if spec.code is None:
        return
    if spec.code.startswith("azureml:") or "://" in spec.code:
        raise SpecError(f"{spec.source}: code: '{spec.code}' is not a local folder (only local code is supported)")
    if not Path(spec.code).exists():
        raise SpecError(
            f"{spec.source}: code: '{spec.code}' does not exist",
            "a relative code path is resolved against the folder of the component's file",
        )


def check_component_paths(spec: ComponentSpec) -> None:
    from batchctl.specs.component import CommandComponentSpec

    if isinstance(spec, CommandComponentSpec):
        check_code(spec)
        return
    for node in spec.jobs.values():
        if not isinstance(node.component, str):
            check_code(node.component)


def pin_step_refs(ws: Workspace, spec: ComponentSpec) -> None:
    """A pipeline's `azureml:` step components exist in this workspace (checked before anything is written);
    `@latest` is replaced by the version it stands for now, as a deployment records its environment."""
    from batchctl.specs.component import PipelineComponentSpec

    if not isinstance(spec, PipelineComponentSpec):
        return
    state = ws.store.read()
    for step, node in spec.jobs.items():
        if isinstance(node.component, str):
            try:
                node.component = resolve_component_record(node.component, state)["id"]
            except (NotFoundError, SpecError) as exc:
                raise SpecError(f"{spec.source}: jobs.{step}.component: {exc.message}", exc.hint) from None


def register_component(ws: Workspace, spec: ComponentSpec) -> dict[str, Any]:
    """Register `spec` (named) and, for a pipeline, its named file steps first."""
    from batchctl.specs.component import PipelineComponentSpec

    assert spec.name is not None  # create_component checked it
    digest = definition_digest(spec)
    same = _same_content(ws, spec.name, spec.version, digest)
    if same is not None:
        return same
    _refuse_conflict(ws, spec.name, spec.version)
    for child in _named_children(spec):  # before any child is written: a conflict leaves nothing behind
        assert child.name is not None
        if _same_content(ws, child.name, child.version, definition_digest(child)) is None:
            _refuse_conflict(ws, child.name, child.version)
    steps: dict[str, str] = {}
    if isinstance(spec, PipelineComponentSpec):
        for step, node in spec.jobs.items():
            comp = node.component
            if not isinstance(comp, str) and comp.name is not None:
                steps[step] = register_component(ws, comp)["id"]
    return _store(ws, spec, digest, steps)


def _named_children(spec: ComponentSpec) -> list[CommandComponentSpec]:
    jobs = getattr(spec, "jobs", {})
    return [n.component for n in jobs.values() if not isinstance(n.component, str) and n.component.name]


def _same_content(ws: Workspace, name: str, version: str | None, digest: str) -> dict[str, Any] | None:
    for record in ws.store.read()[SECTION].get(name, {}).values():
        if record["content_hash"] == digest and version in (None, record["version"]):
            return dict(record)
    return None


def _refuse_conflict(ws: Workspace, name: str, version: str | None) -> None:
    if version is not None and version in ws.store.read()[SECTION].get(name, {}):
        raise ConflictError(
            f"component '{name}' version '{version}' exists with other content; versions are immutable",
            "omit the version (or --version) to register a new version",
        )


def _snapshot(source: str, root: Path, rel: str) -> tuple[Path, str]:
    """Copy a code folder into a staging folder under `root`; (staging, the code's path relative to the
    version folder once the staging folder is renamed to it)."""
    src = Path(source)
    staging_parent = root / ".staging-parts"
    staging = copy_into(src, staging_parent)
    return staging, f"{rel}/{src.name}"


def _store(ws: Workspace, spec: ComponentSpec, digest: str, steps: dict[str, str]) -> dict[str, Any]:
    """Snapshot the code folders, then write the record in one registry transaction."""
    from batchctl.specs.component import CommandComponentSpec

    assert spec.name is not None
    root = ws.inside(components_dir(ws) / spec.name)
    body = spec.model_dump(mode="json", exclude_none=True)
    parts: list[tuple[Path, str]] = []  # (staging folder, where its content goes inside the version folder)
    try:
        if isinstance(spec, CommandComponentSpec) and spec.code:
            ws.refuse_source_holding_workspace(Path(spec.code), f"component '{spec.name}' code")
            staging, rel = _snapshot(spec.code, root, "code")
            parts.append((staging, "code"))
            body["code"] = rel
        else:
            for step, node in getattr(spec, "jobs", {}).items():
                if step in steps:
                    body["jobs"][step]["component"] = steps[step]
                elif not isinstance(node.component, str) and node.component.code:
                    staging, rel = _snapshot(node.component.code, root, f"steps/{step}")
                    parts.append((staging, f"steps/{step}"))
                    body["jobs"][step]["component"]["code"] = rel
        return _commit(ws, spec, digest, body, root, parts)
    finally:
        for staging, _ in parts:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            (root / ".staging-parts").rmdir()


def _commit(
    ws: Workspace, spec: ComponentSpec, digest: str, body: dict[str, Any], root: Path, parts: list[tuple[Path, str]]
) -> dict[str, Any]:
    assert spec.name is not None
    with ws.store.transaction() as state:
        versions = state[SECTION].setdefault(spec.name, {})
        chosen = spec.version or next_version(versions)
        if chosen in versions:
            raise ConflictError(
                f"component '{spec.name}' version '{chosen}' exists with other content; versions are immutable",
                "omit the version (or --version) to register a new version",
            )
        target = root / chosen
        if target.exists():
            shutil.rmtree(target)  # left over from a crashed registration: the registry never named it
        target.mkdir(parents=True)
        for staging, rel in parts:
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, dest)
        body["version"] = chosen
        record = {
            "name": spec.name,
            "version": chosen,
            "id": f"azureml:{spec.name}:{chosen}",
            "type": spec.type,
            "display_name": spec.display_name,
            "description": spec.description,
            "tags": spec.tags,
            "is_deterministic": spec.is_deterministic,
            "path": str(target),
            "source": spec.source,
            "content_hash": digest,
            "spec": body,
        }
        stamp(record, None)
        versions[chosen] = record
        return dict(record)


def resolve_component_record(ref: str, state: dict[str, Any]) -> dict[str, Any]:
    """`azureml:<name>:<version>` / `azureml:<name>@latest` -> the registered record. A registry URI
    (`azureml://registries/...`) cannot be had locally: one SpecError line."""
    if ref.startswith(REGISTRY_PREFIX):
        raise SpecError(
            f"component '{ref}' lives in an Azure ML registry, which batchctl cannot reach",
            "copy its YAML and code next to the pipeline and name the file instead",
        )
    name, version = parse_asset_ref(ref, "component")
    versions = state[SECTION].get(name)
    if not versions:
        raise NotFoundError(
            f"component '{name}' is not registered in this workspace",
            f"register it with `batchctl component create -f <{name}>.yml`",
        )
    return get_versioned(state, SECTION, name, version)


def component_from_record(record: dict[str, Any]) -> ComponentSpec:
    """The spec a record holds, its snapshotted code paths made absolute again."""
    from batchctl.specs.component import CommandComponentSpec, PipelineComponentSpec

    body = json.loads(json.dumps(record["spec"]))
    base = Path(record["path"])
    source = record["id"]
    if body.get("type") == "pipeline":
        for node in body.get("jobs", {}).values():
            comp = node.get("component")
            if isinstance(comp, dict) and comp.get("code"):
                comp["code"] = str(base / comp["code"])
        pipeline: PipelineComponentSpec = spec_load.validate_data(PipelineComponentSpec, body, source)
        for step, node in pipeline.jobs.items():
            if not isinstance(node.component, str):
                node.component.with_source(f"{source}: jobs.{step}.component")
        spec: ComponentSpec = pipeline
    else:
        if body.get("code"):
            body["code"] = str(base / body["code"])
        spec = spec_load.validate_data(CommandComponentSpec, body, source)
    return spec.with_source(source)


def resolve_component_ref(ws: Workspace, ref: str, state: dict[str, Any] | None = None) -> ComponentSpec:
    return component_from_record(resolve_component_record(ref, state if state is not None else ws.store.read()))


def get_component(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("component", name)
    return get_versioned(ws.store.read(), SECTION, name, version or LATEST)


def list_components(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    return list_versioned(ws, SECTION, name)


def users_of(state: dict[str, Any], component_id: str) -> list[str]:
    """Pipeline components and deployments that name `component_id`."""
    users = []
    for name, versions in state[SECTION].items():
        for version, record in versions.items():
            jobs = (record.get("spec") or {}).get("jobs") or {}
            if any(node.get("component") == component_id for node in jobs.values()):
                users.append(f"component {name}:{version}")
    for key, deployment in state["deployments"].items():
        if deployment.get("component") == component_id:
            users.append(f"deployment {key}")
    return users


def delete_component(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    """Delete one version (or all): refused while a pipeline component or a deployment names it."""
    spec_load.validate_name("component", name)
    with ws.store.transaction() as state:

        def not_in_use(v: str) -> None:
            users = users_of(state, f"azureml:{name}:{v}")
            if users:
                raise ConflictError(
                    f"component '{name}' version '{v}' is used by {', '.join(users)}",
                    "delete those first",
                )

        removed = pop_versions(state, SECTION, "component", name, version, not_in_use)
    for record in removed:
        with contextlib.suppress(OSError):
            shutil.rmtree(ws.inside(Path(record["path"])))
    return {"name": name, "versions_deleted": [r["version"] for r in removed]}
