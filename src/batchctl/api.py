"""The Python API and the only thing the CLI calls: specs + registry + jobs orchestration.

Every function takes a Workspace and returns plain JSON-ready dicts (the records `show` prints).
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import ConflictError, NotFoundError, SpecError
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace, content_hash, copy_into, now

if TYPE_CHECKING:
    from batchctl.specs.deployment import DeploymentSpec
LATEST = "latest"
BUILTIN_COMPUTE = "local"
DEFAULT_DATASTORE = "workspaceblobstore"
_VERSIONED = {"models": "model", "data": "data"}


# ---------------------------------------------------------------- helpers


def _dep_key(endpoint: str, name: str) -> str:
    return f"{endpoint}/{name}"


def _stamp(record: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    record["created_at"] = previous.get("created_at", now()) if previous else now()
    record["updated_at"] = now()
    return record


def _same(previous: dict[str, Any] | None, record: dict[str, Any]) -> bool:
    if previous is None:
        return False
    ignore = {"created_at", "updated_at"}
    return {k: v for k, v in previous.items() if k not in ignore} == {
        k: v for k, v in record.items() if k not in ignore
    }


def _upsert(
    ws: Workspace, section: str, name: str, record: dict[str, Any], notice: str | None = None
) -> dict[str, Any]:
    """Create or overwrite a record; the same record again is a no-op. A notice is shown, never stored."""
    with ws.store.transaction() as state:
        previous = state[section].get(name)
        if previous is not None and _same(previous, record):
            result = dict(previous)
        else:
            _stamp(record, previous)
            state[section][name] = record
            result = dict(record)
    if notice:
        result["notice"] = notice
    return result


def parse_asset_ref(ref: str, kind: str) -> tuple[str, str]:
    """`azureml:<name>:<version>` / `azureml:<name>@latest` / `<name>:<version>` -> (name, version)."""
    body = ref[len("azureml:") :] if ref.startswith("azureml:") else ref
    if body.endswith("@latest"):
        name, version = body[: -len("@latest")], LATEST
    elif ":" in body:
        name, _, version = body.rpartition(":")
    else:
        name, version = body, LATEST
    spec_load.validate_name(kind, name)
    if version != LATEST:
        from batchctl.specs._base import version_problem

        problem = version_problem(version)
        if problem:
            raise SpecError(f"{kind} reference '{ref}': {problem}")
    return name, version


def _version_key(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def _latest(versions: dict[str, Any]) -> str | None:
    if not versions:
        return None
    return max(versions, key=lambda v: (versions[v].get("created_at", ""), _version_key(v)))


def _next_version(versions: dict[str, Any]) -> str:
    numbers = [int(v) for v in versions if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def _get_versioned(state: dict[str, Any], section: str, name: str, version: str) -> dict[str, Any]:
    kind = _VERSIONED[section]
    versions = state[section].get(name)
    if not versions:
        raise NotFoundError(
            f"{kind} '{name}' not found",
            f"register it with `batchctl {kind} create --name {name} ...`",
        )
    if version == LATEST:
        version = _latest(versions) or ""
    record = versions.get(version)
    if record is None:
        raise NotFoundError(
            f"{kind} '{name}' has no version '{version}'; versions: {', '.join(sorted(versions, key=_version_key))}"
        )
    return dict(record)


# ---------------------------------------------------------------- endpoints


def create_endpoint(
    ws: Workspace,
    file: str | None = None,
    name: str | None = None,
    overrides: Iterable[str] = (),
    description: str | None = None,
) -> dict[str, Any]:
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
        elif default is not None and _dep_key(spec.name, default) not in state["deployments"]:
            raise NotFoundError(
                f"defaults.deployment_name: deployment '{default}' not found in endpoint '{spec.name}'",
                "create the deployment first, then set it as default",
            )
        record["provisioning_state"] = "Succeeded"
        record["scoring_uri"] = f"batchctl://{ws.root}/endpoints/{spec.name}"
        record["spec_hash"] = spec_load.spec_hash(spec)
        if _same(previous, {**record, "created_at": None}) and previous is not None:
            return previous
        _stamp(record, previous)
        state["endpoints"][spec.name] = record
    return record


def get_endpoint(ws: Workspace, name: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    name = spec_load.validate_name("endpoint", name)
    state = state if state is not None else ws.store.read()
    record = state["endpoints"].get(name)
    if record is None:
        raise NotFoundError(f"endpoint '{name}' not found", f"create it with `batchctl endpoint create --name {name}`")
    return dict(record)


def list_endpoints(ws: Workspace) -> list[dict[str, Any]]:
    return [dict(r) for _, r in sorted(ws.store.read()["endpoints"].items())]


ENDPOINT_UPDATABLE = ("description", "tags", "properties", "defaults")


def update_endpoint(ws: Workspace, name: str, overrides: Iterable[str] = (), file: str | None = None) -> dict[str, Any]:
    """Update description, tags, properties or defaults (`--set defaults.deployment_name=D`)."""
    from batchctl.specs.endpoint import EndpointSpec

    name = spec_load.validate_name("endpoint", name)
    overrides = list(overrides)
    with ws.store.transaction() as state:
        previous = get_endpoint(ws, name, state)
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
        if default is not None and _dep_key(name, default) not in state["deployments"]:
            existing = _deployment_names(state, name)
            raise NotFoundError(
                f"deployment '{default}' not found in endpoint '{name}'"
                + (f"; existing: {', '.join(existing)}" if existing else "; it has no deployments"),
            )
        record = {**previous, **spec.model_dump(mode="json")}
        record["spec_hash"] = spec_load.spec_hash(spec)
        if not _same(previous, record):
            record["updated_at"] = now()
            state["endpoints"][name] = record
    return record


def delete_endpoint(ws: Workspace, name: str) -> dict[str, Any]:
    """Delete an endpoint and all its deployments; its jobs stay listed."""
    name = spec_load.validate_name("endpoint", name)
    with ws.store.transaction() as state:
        record = get_endpoint(ws, name, state)
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


def _deployment_names(state: dict[str, Any], endpoint: str) -> list[str]:
    return sorted(k.split("/", 1)[1] for k in state["deployments"] if k.startswith(f"{endpoint}/"))


# ---------------------------------------------------------------- models


def _check_model_path(path: Path, kind: str, source: str) -> None:
    if not path.exists():
        raise SpecError(f"{source}: path: '{path}' does not exist")
    if kind == "mlflow_model" and not (path.is_dir() and (path / "MLmodel").is_file()):
        raise SpecError(f"{source}: path: '{path}' is not an MLflow model folder (no MLmodel file)")


def _register_model_files(
    ws: Workspace,
    name: str,
    version: str | None,
    kind: str,
    source: Path,
    meta: dict[str, Any],
    origin: str | None = None,
) -> dict[str, Any]:
    """Copy a model into the workspace and register it; the same content again is a no-op."""
    digest = content_hash(source)
    existing = ws.store.read()["models"].get(name, {})
    for record in existing.values():
        if record["content_hash"] == digest and record["type"] == kind and (version in (None, record["version"])):
            same_meta = all(record.get(k) == v for k, v in meta.items())
            if same_meta:
                return dict(record)
    model_root = ws.inside(ws.models_dir / name)
    staging = copy_into(source, model_root)
    try:
        with ws.store.transaction() as state:
            versions = state["models"].setdefault(name, {})
            chosen = version or _next_version(versions)
            previous = versions.get(chosen)
            if previous is not None:
                if previous["content_hash"] == digest and previous["type"] == kind:
                    record = {**previous, **meta, "updated_at": now()}
                    versions[chosen] = record
                    return dict(record)
                raise ConflictError(
                    f"model '{name}' version '{chosen}' exists with other content; versions are immutable",
                    "omit --version to register a new version",
                )
            target = model_root / chosen
            if target.exists():
                shutil.rmtree(target)  # left over from a crashed registration: the registry never named it
            os.rename(staging, target)
            record = {
                "name": name,
                "version": chosen,
                "id": f"azureml:{name}:{chosen}",
                "type": kind,
                "path": str(target / source.name),
                "model_dir": str(target),
                "source": origin or str(source),
                "content_hash": digest,
                **meta,
            }
            _stamp(record, None)
            versions[chosen] = record
            return dict(record)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _load_versioned(
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


def create_model(
    ws: Workspace,
    file: str | None = None,
    name: str | None = None,
    version: str | None = None,
    type: str | None = None,
    path: str | None = None,
    description: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Register a model: files are copied into the workspace; versions auto-increment from 1."""
    from batchctl.specs.assets import ModelSpec

    spec, source = _load_versioned("model", ModelSpec, file, overrides, name, version, type, path, description)
    _check_model_path(Path(spec.path), spec.type, source)
    meta = {"description": spec.description, "tags": spec.tags, "properties": spec.properties}
    return _register_model_files(ws, spec.name, spec.version, spec.type, Path(spec.path), meta)


def get_model(ws: Workspace, name: str, version: str | None = None, label: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("model", name)
    return _get_versioned(ws.store.read(), "models", name, version or LATEST)


def resolve_model_ref(ws: Workspace, ref: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    name, version = parse_asset_ref(ref, "model")
    return _get_versioned(state if state is not None else ws.store.read(), "models", name, version)


def _list_versioned(ws: Workspace, section: str, name: str | None) -> list[dict[str, Any]]:
    state = ws.store.read()
    if name is not None:
        spec_load.validate_name(_VERSIONED[section], name)
        versions = state[section].get(name, {})
        return [dict(versions[v]) for v in sorted(versions, key=_version_key)]
    out = []
    for _asset, versions in sorted(state[section].items()):
        latest = _latest(versions)
        if latest:
            out.append(dict(versions[latest]))
    return out


def list_models(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    return _list_versioned(ws, "models", name)


def _pop_versions(
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


def delete_model(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    """Delete one version (or all): refused while a deployment uses it."""
    spec_load.validate_name("model", name)
    with ws.store.transaction() as state:

        def not_in_use(v: str) -> None:
            users = [k for k, d in state["deployments"].items() if d.get("model") == f"azureml:{name}:{v}"]
            if users:
                raise ConflictError(
                    f"model '{name}' version '{v}' is used by deployment {', '.join(users)}",
                    "delete or update those deployments first",
                )

        removed = _pop_versions(state, "models", "model", name, version, not_in_use)
    for record in removed:
        with contextlib.suppress(OSError):
            shutil.rmtree(ws.inside(Path(record["model_dir"])))
    return {"name": name, "versions_deleted": [r["version"] for r in removed]}


# ---------------------------------------------------------------- data assets


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

    spec, source = _load_versioned("data", DataSpec, file, overrides, name, version, type, path, description)
    local = not (spec.path.startswith("azureml:") or spec_load.is_url(spec.path))
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
            latest = _latest(versions)
            if latest and all(versions[latest].get(k) == v for k, v in body.items()):
                return dict(versions[latest])
        chosen = spec.version or _next_version(versions)
        previous = versions.get(chosen)
        record = {**body, "version": chosen, "id": f"azureml:{spec.name}:{chosen}"}
        if previous is not None:
            if previous["path"] != record["path"] or previous["type"] != record["type"]:
                raise ConflictError(
                    f"data asset '{spec.name}' version '{chosen}' exists with another path or type; "
                    "versions are immutable",
                    "omit the version to register a new one",
                )
            if _same(previous, {**record, "created_at": previous.get("created_at")}):
                return dict(previous)
        _stamp(record, previous)
        versions[chosen] = record
    return record


def get_data(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("data", name)
    return _get_versioned(ws.store.read(), "data", name, version or LATEST)


def resolve_data_ref(ws: Workspace, ref: str) -> dict[str, Any]:
    name, version = parse_asset_ref(ref, "data")
    return _get_versioned(ws.store.read(), "data", name, version)


def list_data(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    return _list_versioned(ws, "data", name)


def delete_data(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("data", name)
    with ws.store.transaction() as state:
        removed = _pop_versions(state, "data", "data asset", name, version)
    return {"name": name, "versions_deleted": [r["version"] for r in removed]}


# ---------------------------------------------------------------- datastores


def _builtin_datastore(ws: Workspace) -> dict[str, Any]:
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
    return _upsert(ws, "datastores", spec.name, record, notice)


def get_datastore(ws: Workspace, name: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    spec_load.validate_name("datastore", name)
    state = state if state is not None else ws.store.read()
    record = state["datastores"].get(name)
    if record is None:
        if name == DEFAULT_DATASTORE:
            return _builtin_datastore(ws)
        raise NotFoundError(
            f"datastore '{name}' not found", "register it with `batchctl datastore create -f datastore.yml`"
        )
    return dict(record)


def list_datastores(ws: Workspace) -> list[dict[str, Any]]:
    state = ws.store.read()
    records = dict(state["datastores"])
    records.setdefault(DEFAULT_DATASTORE, _builtin_datastore(ws))
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


# ---------------------------------------------------------------- computes


def _builtin_compute() -> dict[str, Any]:
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
) -> dict[str, Any]:
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
    return _upsert(ws, "computes", spec.name, record, notice)


def get_compute(ws: Workspace, name: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    name = spec_load.validate_name("compute", name)
    state = state if state is not None else ws.store.read()
    record = state["computes"].get(name)
    if record is None:
        if name == BUILTIN_COMPUTE:
            return _builtin_compute()
        raise NotFoundError(
            f"compute '{name}' not found",
            f"create it with `batchctl compute create -n {name} --type local` (or --type ray --address ADDR)",
        )
    return dict(record)


def list_computes(ws: Workspace) -> list[dict[str, Any]]:
    records = dict(ws.store.read()["computes"])
    records.setdefault(BUILTIN_COMPUTE, _builtin_compute())
    return [dict(records[k]) for k in sorted(records)]


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


# ---------------------------------------------------------------- deployments


def _check_code(spec: DeploymentSpec, source: str, skip_script_validation: bool) -> None:
    cc = spec.code_configuration
    if cc is None:
        return
    code = Path(cc.code)
    if not code.is_dir():
        raise SpecError(f"{source}: code_configuration.code: folder '{code}' does not exist")
    script = code / cc.scoring_script
    if not script.is_file():
        raise SpecError(f"{source}: code_configuration.scoring_script: '{cc.scoring_script}' not found in '{code}'")
    if skip_script_validation:
        return
    try:
        ast.parse(script.read_bytes(), filename=str(script))
    except SyntaxError as exc:
        raise SpecError(
            f"{source}: Failed to submit deployment {spec.name} due to syntax errors in scoring script "
            f"{cc.scoring_script}. Error on line {exc.lineno}: {exc.msg}",
            "fix the script, or pass --skip-script-validation",
        ) from exc
    except ValueError as exc:
        raise SpecError(f"{source}: code_configuration.scoring_script: {exc}") from exc


def _snapshot_code(ws: Workspace, code: Path) -> str:
    digest = content_hash(code)[:20]
    target = ws.code_dir / digest
    if not target.exists():
        staging = copy_into(code, ws.code_dir)
        try:
            os.rename(staging / code.name, staging / "src")
            os.rename(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():
                raise
    return str(target / "src")


def _mlflow_uri_model(ws: Workspace, uri: str, deployment: str) -> dict[str, Any]:
    import tempfile

    try:
        from mlflow.artifacts import download_artifacts
    except ImportError as exc:  # pragma: no cover - mlflow-skinny is a core dependency
        from batchctl.errors import MissingDependencyError

        raise MissingDependencyError("mlflow is needed to resolve models:/ and runs:/ URIs") from exc
    if uri.startswith("models:/"):
        base = uri[len("models:/") :].split("/")[0].split("@")[0]
    else:
        parts = uri[len("runs:/") :].strip("/").split("/")
        base = f"run-{parts[0][:12]}-{'-'.join(parts[1:]) or 'model'}"
    name = re.sub(r"[^a-zA-Z0-9_-]", "-", base).strip("-_") or f"{deployment}-model"
    with tempfile.TemporaryDirectory(prefix="batchctl-mlflow-") as tmp:
        try:
            local = download_artifacts(artifact_uri=uri, dst_path=tmp)
        except Exception as exc:  # mlflow raises many types; report them as one line
            raise NotFoundError(
                f"model '{uri}' could not be resolved by mlflow: {str(exc).splitlines()[0][:300]}",
                "check MLFLOW_TRACKING_URI and the model name/version",
            ) from exc
        path = Path(local)
        if path.is_dir() and not (path / "MLmodel").is_file():
            candidates = [p for p in path.iterdir() if (p / "MLmodel").is_file()]
            if len(candidates) == 1:
                path = candidates[0]
        _check_model_path(path, "mlflow_model", uri)
        return _register_model_files(
            ws, name, None, "mlflow_model", path, {"description": f"resolved from {uri}"}, origin=uri
        )


def _resolve_deployment_model(ws: Workspace, spec: DeploymentSpec, source: str) -> dict[str, Any]:
    from batchctl.specs.deployment import InlineModel

    model = spec.model
    if isinstance(model, InlineModel):
        path = Path(model.path)
        _check_model_path(path, model.type, source)
        name = model.name or f"{spec.endpoint_name}-{spec.name}-model"
        spec_load.validate_name("model", name)
        meta = {"description": model.description, "tags": model.tags, "properties": model.properties}
        return _register_model_files(ws, name, model.version, model.type, path, meta)
    if model.startswith(("models:/", "runs:/")):
        return _mlflow_uri_model(ws, model, spec.name)
    return resolve_model_ref(ws, model)


def create_deployment(
    ws: Workspace,
    file: str,
    name: str | None = None,
    endpoint_name: str | None = None,
    overrides: Iterable[str] = (),
    set_default: bool = False,
    skip_script_validation: bool = False,
) -> dict[str, Any]:
    """Create or overwrite a deployment; the endpoint's first deployment becomes its default."""
    from batchctl.specs.deployment import DeploymentSpec

    spec = spec_load.load_spec(
        "deployment",
        DeploymentSpec,
        file,
        overrides,
        fields={"name": name, "endpoint_name": endpoint_name.lower() if endpoint_name is not None else None},
    )
    return _save_deployment(ws, spec, Path(file).name, set_default, skip_script_validation)


def _save_deployment(
    ws: Workspace, spec: DeploymentSpec, source: str, set_default: bool, skip_script_validation: bool
) -> dict[str, Any]:
    state = ws.store.read()
    get_endpoint(ws, spec.endpoint_name, state)
    compute = get_compute(ws, spec.compute, state)
    _check_code(spec, source, skip_script_validation)
    model = _resolve_deployment_model(ws, spec, source)
    if spec.code_configuration is None and model["type"] != "mlflow_model":
        raise SpecError(f"{source}: code_configuration: required because model {model['id']} is not an MLflow model")
    record = spec.model_dump(mode="json")
    record["model"] = model["id"]
    record["model_type"] = model["type"]
    if spec.code_configuration is not None:
        record["code_configuration"]["source_code"] = spec.code_configuration.code
        record["code_configuration"]["code"] = _snapshot_code(ws, Path(spec.code_configuration.code))
    record["compute_type"] = compute["type"]
    record["provisioning_state"] = "Succeeded"
    record["spec_hash"] = spec_load.spec_hash(spec)
    key = _dep_key(spec.endpoint_name, spec.name)
    with ws.store.transaction() as state:
        endpoint = get_endpoint(ws, spec.endpoint_name, state)
        previous = state["deployments"].get(key)
        if not _same(previous, record):
            _stamp(record, previous)
            state["deployments"][key] = record
        else:
            record = dict(previous)  # type: ignore[arg-type]
        current_default = endpoint["defaults"].get("deployment_name")
        if (
            set_default
            or current_default is None
            or _dep_key(spec.endpoint_name, current_default) not in state["deployments"]
        ):
            if current_default != spec.name:
                endpoint["defaults"]["deployment_name"] = spec.name
                endpoint["updated_at"] = now()
                state["endpoints"][spec.endpoint_name] = endpoint
    return record


def get_deployment(ws: Workspace, name: str, endpoint: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    endpoint = spec_load.validate_name("endpoint", endpoint)
    spec_load.validate_name("deployment", name)
    state = state if state is not None else ws.store.read()
    get_endpoint(ws, endpoint, state)
    record = state["deployments"].get(_dep_key(endpoint, name))
    if record is None:
        existing = _deployment_names(state, endpoint)
        raise NotFoundError(
            f"deployment '{name}' not found in endpoint '{endpoint}'"
            + (f"; existing: {', '.join(existing)}" if existing else "; it has no deployments"),
            f"create it with `batchctl deployment create -f deployment.yml -e {endpoint}`",
        )
    return dict(record)


def list_deployments(ws: Workspace, endpoint: str) -> list[dict[str, Any]]:
    endpoint = spec_load.validate_name("endpoint", endpoint)
    state = ws.store.read()
    get_endpoint(ws, endpoint, state)
    return [dict(state["deployments"][_dep_key(endpoint, n)]) for n in _deployment_names(state, endpoint)]


def update_deployment(
    ws: Workspace,
    name: str | None,
    endpoint: str | None,
    overrides: Iterable[str] = (),
    file: str | None = None,
    skip_script_validation: bool = False,
) -> dict[str, Any]:
    """Update an existing deployment from a file and/or `--set` overrides."""
    from batchctl.specs.deployment import DeploymentSpec

    if file is not None:
        spec = spec_load.load_spec(
            "deployment",
            DeploymentSpec,
            file,
            overrides,
            fields={"name": name, "endpoint_name": endpoint.lower() if endpoint is not None else None},
        )
        get_deployment(ws, spec.name, spec.endpoint_name)
        return _save_deployment(ws, spec, Path(file).name, False, skip_script_validation)
    if not name or not endpoint:
        raise SpecError("deployment update needs --name and --endpoint-name (or --file)")
    previous = get_deployment(ws, name, endpoint)
    data = {k: previous[k] for k in DeploymentSpec.model_fields if k in previous}
    if previous.get("code_configuration"):
        data["code_configuration"] = {
            "code": previous["code_configuration"]["code"],
            "scoring_script": previous["code_configuration"]["scoring_script"],
        }
    data = spec_load.apply_overrides(data, overrides)
    spec = spec_load.validate_data(DeploymentSpec, data, "deployment update")
    if spec.name != previous["name"] or spec.endpoint_name != previous["endpoint_name"]:
        raise SpecError("deployment update: name and endpoint_name cannot be changed")
    return _save_deployment(ws, spec, "deployment update", False, skip_script_validation)


def set_default_deployment(ws: Workspace, endpoint: str, name: str) -> dict[str, Any]:
    return update_endpoint(ws, endpoint, [f"defaults.deployment_name={name}"])


def delete_deployment(ws: Workspace, name: str, endpoint: str) -> dict[str, Any]:
    """Delete a deployment; deleting the default while others exist is refused."""
    endpoint = spec_load.validate_name("endpoint", endpoint)
    with ws.store.transaction() as state:
        get_deployment(ws, name, endpoint, state)
        ep = state["endpoints"][endpoint]
        others = [n for n in _deployment_names(state, endpoint) if n != name]
        if ep["defaults"].get("deployment_name") == name:
            if others:
                raise ConflictError(
                    f"deployment '{name}' is the default of endpoint '{endpoint}' and other deployments exist",
                    f"make another one the default first: batchctl deployment set-default -e {endpoint} -n {others[0]}",
                )
            ep["defaults"]["deployment_name"] = None
            ep["updated_at"] = now()
        del state["deployments"][_dep_key(endpoint, name)]
    return {"name": name, "endpoint_name": endpoint, "deleted": True}


def routing_error_message(endpoint: str) -> str:
    return (
        f"endpoint {endpoint} has no default deployment; pass --deployment-name or run "
        "`batchctl deployment set-default`"
    )


# ---------------------------------------------------------------- jobs (batchctl.jobs does the work)


def submit_job(ws: Workspace, **kwargs: Any) -> dict[str, Any]:
    """Validate an invocation and write a Queued job (or return the plan with dry_run=True)."""
    from batchctl.jobs import service

    return service.submit(ws, **kwargs)


def run_job(ws: Workspace, name: str, on_event: Any = None) -> dict[str, Any]:
    """Run a Queued job in this process until it ends; returns the final record."""
    from batchctl.jobs.runner import run_job as _run

    return _run(ws, name, on_event)


def start_job_detached(ws: Workspace, name: str) -> dict[str, Any]:
    from batchctl.jobs import service

    return service.start_detached(ws, name)


def get_job(ws: Workspace, name: str) -> dict[str, Any]:
    from batchctl.jobs import service

    return service.get_job(ws, name)


def list_jobs(
    ws: Workspace, endpoint: str | None = None, deployment: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    from batchctl.jobs import service

    return service.list_jobs(ws, endpoint, deployment, status)


def cancel_job(ws: Workspace, name: str) -> dict[str, Any]:
    from batchctl.jobs import service

    return service.cancel_job(ws, name)


def download_job(
    ws: Workspace, name: str, output_name: str = "score", download_path: str | None = None
) -> dict[str, Any]:
    from batchctl.jobs import service

    return service.download_job(ws, name, output_name, download_path)


def rerun_job(ws: Workspace, name: str, **kwargs: Any) -> dict[str, Any]:
    from batchctl.jobs import service

    return service.rerun_failed(ws, name, **kwargs)
