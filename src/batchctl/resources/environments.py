"""Registered environments (Azure's environment assets): immutable versions; the conda file and a local
build context copied into the workspace like models. Each record keeps the conda file's sha256 and the
pip requirements it lists; `deployment_env_spec` turns a deployment's environment into the spec that
`batchctl.envs` builds (docs/environments.md)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchctl.errors import ConflictError, SpecError
from batchctl.notices import notify
from batchctl.resources._common import (
    LATEST,
    get_versioned,
    list_versioned,
    next_version,
    pop_versions,
    split_ref,
    stamp,
)
from batchctl.specs import load as spec_load
from batchctl.urls import is_url
from batchctl.workspace import Workspace, content_hash, copy_into

if TYPE_CHECKING:
    from batchctl.envs.spec import EnvSpec
    from batchctl.resources.records import DeploymentRecord
    from batchctl.specs.assets import EnvironmentSpec

SECTION = "environments"
CONDA_FILE = "conda.yml"


def resolved_environment(ws: Workspace, record: dict[str, Any]) -> dict[str, Any]:
    """A stored environment record with its paths inside the workspace (the conda file, the folder, the
    build context's copy), stored relative to the workspace root, made absolute."""
    out = dict(record)
    for key in ("conda_file", "environment_dir"):
        if isinstance(out.get(key), str):
            out[key] = ws.resolved_path(out[key])
    build = out.get("build")
    # a local build context is copied in (its `path` is the copy's); a URL one is recorded as given (path == source)
    if isinstance(build, dict) and isinstance(build.get("path"), str) and build["path"] != build.get("source"):
        out["build"] = {**build, "path": ws.resolved_path(build["path"])}
    return out


def environments_dir(ws: Workspace) -> Path:
    return ws.root / "environments"


def _conda(spec: EnvironmentSpec, source: str) -> tuple[bytes, str, dict[str, Any]] | None:
    """(the conda file's bytes, its file name, its parsed content), or None without a conda file."""
    import yaml

    if spec.conda_file is None:
        return None
    if isinstance(spec.conda_file, dict):
        return yaml.safe_dump(spec.conda_file, sort_keys=False).encode(), CONDA_FILE, spec.conda_file
    if is_url(spec.conda_file) or spec.conda_file.startswith("azureml:"):
        raise SpecError(f"{source}: conda_file: '{spec.conda_file}' must be a local file (or the content inline)")
    path = Path(spec.conda_file)
    if not path.is_file():
        raise SpecError(f"{source}: conda_file: '{path}' does not exist or is not a file")
    data = spec_load.read_yaml(path)
    return path.read_bytes(), path.name, data


def pip_requirements(conda: dict[str, Any], source: str) -> list[str]:
    """The `pip:` list of a conda file's `dependencies` (what a virtualenv would install)."""
    deps = conda.get("dependencies") or []
    if not isinstance(deps, list):
        raise SpecError(f"{source}: conda_file: dependencies must be a list")
    out: list[str] = []
    for dep in deps:
        if isinstance(dep, dict) and "pip" in dep:
            pip = dep["pip"] or []
            if not isinstance(pip, list) or not all(isinstance(p, str) for p in pip):
                raise SpecError(f"{source}: conda_file: dependencies.pip must be a list of requirement strings")
            out.extend(p.strip() for p in pip)
    return out


def python_version(conda: dict[str, Any]) -> str | None:
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, str):
            name, _, version = dep.replace("==", "=").partition("=")
            if name.strip() == "python" and version:
                return version.strip()
    return None


def _build_context(ws: Workspace, spec: EnvironmentSpec, source: str) -> Path | None:
    """The local build context folder (checked), or None for no build or a URL one (recorded as given)."""
    if spec.build is None or is_url(spec.build.path):
        return None
    folder = Path(spec.build.path)
    if not folder.is_dir():
        raise SpecError(f"{source}: build.path: folder '{folder}' does not exist")
    ws.refuse_source_holding_workspace(folder, f"{source}: build.path")
    dockerfile = folder / spec.build.dockerfile_path
    if not dockerfile.is_file():
        raise SpecError(f"{source}: build.dockerfile_path: '{spec.build.dockerfile_path}' not found in '{folder}'")
    return folder


def create_environment(
    ws: Workspace,
    file: str | None = None,
    name: str | None = None,
    version: str | None = None,
    image: str | None = None,
    conda_file: str | None = None,
    build_context: str | None = None,
    dockerfile_path: str | None = None,
    description: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Register an environment version (auto-incremented from 1); the same definition again is a no-op."""
    from batchctl.specs.assets import EnvironmentSpec

    cwd = Path.cwd()
    fields: dict[str, Any] = {
        "name": name,
        "version": version,
        "image": image,
        "conda_file": spec_load.resolve_local(conda_file, cwd) if conda_file else None,
        "description": description,
    }
    extra = list(overrides)
    if build_context:
        fields["build"] = {"path": spec_load.resolve_local(build_context, cwd)}
    if dockerfile_path:
        extra.append(f"build.dockerfile_path={json.dumps(dockerfile_path)}")
    spec = spec_load.load_spec("environment", EnvironmentSpec, file, extra, fields=fields)
    source = Path(file).name if file else "environment options"
    return register_environment(ws, spec, source)


def register_environment(ws: Workspace, spec: EnvironmentSpec, source: str) -> dict[str, Any]:
    conda = _conda(spec, source)
    context = _build_context(ws, spec, source)
    conda_hash = hashlib.sha256(conda[0]).hexdigest() if conda else None
    definition = {
        "image": spec.image,
        "conda_file_sha256": conda_hash,
        "build": spec.build.model_dump() if spec.build else None,
        "build_context_hash": content_hash(context, follow_links=False) if context else None,
        "os_type": spec.os_type,
        "inference_config": spec.inference_config,
    }
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    meta = {"description": spec.description, "tags": spec.tags, "properties": spec.properties}
    for record in ws.store.read()[SECTION].get(spec.name, {}).values():
        same = record["content_hash"] == digest and all(record.get(k) == v for k, v in meta.items())
        if same and spec.version in (None, record["version"]):
            return resolved_environment(ws, record)
    root = ws.inside(environments_dir(ws) / spec.name)
    staging = _stage(root, conda, context)
    try:
        with ws.store.transaction() as state:
            versions = state[SECTION].setdefault(spec.name, {})
            chosen = spec.version or next_version(versions)
            previous = versions.get(chosen)
            if previous is not None:
                if previous["content_hash"] == digest:
                    record = {**previous, **meta}
                    stamp(record, previous)
                    versions[chosen] = record
                    return resolved_environment(ws, record)
                raise ConflictError(
                    f"environment '{spec.name}' version '{chosen}' exists with another definition; "
                    "versions are immutable",
                    "omit --version to register a new version",
                )
            target = root / chosen
            if target.exists():
                shutil.rmtree(target)  # left over from a crashed registration: the registry never named it
            os.rename(staging, target)
            record = {
                "name": spec.name,
                "version": chosen,
                "id": f"azureml:{spec.name}:{chosen}",
                "image": spec.image,
                "conda_file": ws.stored_path(target / conda[1]) if conda else None,
                "conda_file_source": _conda_source(spec),
                "conda_file_sha256": conda_hash,
                "pip_requirements": pip_requirements(conda[2], source) if conda else [],
                "python_version": python_version(conda[2]) if conda else None,
                "build": _build_record(ws, spec, target if context else None),
                "os_type": spec.os_type,
                "inference_config": spec.inference_config,
                "environment_dir": ws.stored_path(target),
                "content_hash": digest,
                **meta,
            }
            stamp(record, None)
            versions[chosen] = record
            return resolved_environment(ws, record)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _stage(root: Path, conda: tuple[bytes, str, dict[str, Any]] | None, context: Path | None) -> Path:
    """A staging folder under `root` holding the conda file and a copy of the build context."""
    root.mkdir(parents=True, exist_ok=True)
    if context is not None:
        # symbolic links are copied as links, as Docker sends them in a build context: one that points at
        # /etc must not bring /etc into the workspace
        staging = copy_into(context, root, symlinks=True)
        os.rename(staging / context.name, staging / "build")
    else:
        staging = root / f".staging-{os.urandom(8).hex()}"
        staging.mkdir()
    if conda is not None:
        (staging / conda[1]).write_bytes(conda[0])
    return staging


def _conda_source(spec: EnvironmentSpec) -> str | None:
    if spec.conda_file is None:
        return None
    return "inline" if isinstance(spec.conda_file, dict) else spec.conda_file


def _build_record(ws: Workspace, spec: EnvironmentSpec, target: Path | None) -> dict[str, Any] | None:
    if spec.build is None:
        return None
    record = spec.build.model_dump()
    record["source"] = spec.build.path
    if target is not None:
        record["path"] = ws.stored_path(target / "build")
    return record


def get_environment(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("environment", name)
    return resolved_environment(ws, get_versioned(ws.store.read(), SECTION, name, version or LATEST))


def list_environments(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    return [resolved_environment(ws, record) for record in list_versioned(ws, SECTION, name)]


def delete_environment(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    """Delete one version (or all): refused while a deployment uses it."""
    spec_load.validate_name("environment", name)
    with ws.store.transaction() as state:

        def not_in_use(v: str) -> None:
            users = [k for k, d in state["deployments"].items() if d.get("environment") == f"azureml:{name}:{v}"]
            if users:
                raise ConflictError(
                    f"environment '{name}' version '{v}' is used by deployment {', '.join(users)}",
                    "delete or update those deployments first",
                )

        removed = pop_versions(state, SECTION, "environment", name, version, not_in_use)
    for record in removed:
        with contextlib.suppress(OSError):
            shutil.rmtree(ws.inside(Path(ws.resolved_path(record["environment_dir"]))))
    return {"name": name, "versions_deleted": [r["version"] for r in removed]}


def resolve_environment_ref(ref: str, state: dict[str, Any]) -> dict[str, Any] | None:
    """A deployment's `environment: azureml:<env>:<version>` / `azureml:<env>@latest`: the registered
    version; None (with a notice) for an environment this workspace does not hold, such as Azure's curated
    `AzureML-...` ones, which are recorded as given."""
    body = ref[len("azureml:") :]
    if body.startswith("//"):
        notify(f"environment '{ref}' is not a workspace environment; recorded as given")
        return None
    name, version = split_ref(body)
    if name not in state[SECTION]:
        notify(
            f"environment '{name}' is not registered in this workspace; recorded as given "
            "(register it with `batchctl environment create`)"
        )
        return None
    return get_versioned(state, SECTION, name, version)


def deployment_env_spec(
    ws: Workspace, deployment: DeploymentRecord, model_path: str, model_type: str
) -> EnvSpec | None:
    """Where a deployment's environment comes from (docs/environments.md): a registered environment's or an
    inline conda file; else, for an MLflow model, the model's own files (python_env.yaml + requirements.txt,
    else conda.yaml); else None: the current interpreter, as before."""
    from batchctl.envs import spec as env_spec

    env = deployment.environment
    if isinstance(env, str):
        body = env[len("azureml:") :]
        name, version = split_ref(body) if not body.startswith("//") else (body, None)
        record = None
        if name in ws.store.read()[SECTION]:
            record = resolved_environment(ws, get_versioned(ws.store.read(), SECTION, name, version or LATEST))
        if record is not None and record.get("conda_file"):
            return env_spec.from_conda_file(Path(record["conda_file"]), f"environment {record['id']}")
        if record is not None:
            notify(
                f"environment {record['id']} has no conda file (an image only: its Docker layers are not "
                "reproduced here); its deployment runs in the current interpreter"
                + (" or in the model's own environment" if model_type == "mlflow_model" else "")
            )
        # an environment this workspace does not hold (Azure's curated ones): the model's files, if any
    elif isinstance(env, dict) and env.get("conda_file"):
        label = env.get("name") or "inline"
        return env_spec.from_conda_file(Path(env["conda_file"]), f"inline environment ({label}) {env['conda_file']}")
    if model_type == "mlflow_model":
        return env_spec.from_mlflow_model(Path(model_path))
    return None
