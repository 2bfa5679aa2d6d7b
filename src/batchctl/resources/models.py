"""Registered models: files copied into the workspace, immutable versions, `models:/` and `runs:/` URIs."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchctl.errors import ConflictError, NotFoundError, SpecError
from batchctl.resources._common import (
    LATEST,
    get_versioned,
    list_versioned,
    load_versioned,
    next_version,
    parse_asset_ref,
    pop_versions,
    stamp,
)
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace, content_hash, copy_into, now

MLFLOW_URI_PREFIXES = ("models:/", "runs:/")
# the keys of a model record that are paths inside the workspace: stored relative to its root
WORKSPACE_PATHS = ("path", "model_dir")


def resolved_model(ws: Workspace, record: dict[str, Any]) -> dict[str, Any]:
    """A stored model record with its paths inside the workspace made absolute (a registry written before
    paths were stored relative holds absolute ones, kept as they are)."""
    return {k: ws.resolved_path(v) if k in WORKSPACE_PATHS and isinstance(v, str) else v for k, v in record.items()}


def check_model_path(path: Path, kind: str, source: str) -> None:
    field = spec_load.field_label(source, "path")
    if not path.exists():
        trainer = path.parent / "train_model.py"
        if trainer.is_file():
            hint = f"the model is made by its training script: run `python {trainer}` first, then register it"
        else:
            hint = (
                f"a relative --path is resolved against the current folder ({Path.cwd()})"
                if source.endswith(spec_load.OPTIONS)
                else f"a relative path is resolved against the folder of {source}"
            )
        raise SpecError(f"{field}: '{path}' does not exist", hint)
    if kind == "mlflow_model" and not (path.is_dir() and (path / "MLmodel").is_file()):
        raise SpecError(f"{field}: '{path}' is not an MLflow model folder (no MLmodel file)")


def download_mlflow_model(uri: str, tmp: str) -> Path:
    """The folder of the MLflow model `uri` (models:/ or runs:/), downloaded by mlflow into tmp."""
    try:
        from mlflow.artifacts import download_artifacts
    except ImportError as exc:  # pragma: no cover - mlflow-skinny is a core dependency
        from batchctl.errors import MissingDependencyError

        raise MissingDependencyError("mlflow is needed to resolve models:/ and runs:/ URIs") from exc
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
    check_model_path(path, "mlflow_model", uri)
    return path


def register_model_files(
    ws: Workspace,
    name: str,
    version: str | None,
    kind: str,
    source: Path,
    meta: dict[str, Any],
    origin: str | None = None,
) -> dict[str, Any]:
    """Copy a model into the workspace and register it; the same content again is a no-op."""
    ws.refuse_source_holding_workspace(source, f"model '{name}' path")
    digest = content_hash(source)
    existing = ws.store.read()["models"].get(name, {})
    for record in existing.values():
        if record["content_hash"] == digest and record["type"] == kind and (version in (None, record["version"])):
            same_meta = all(record.get(k) == v for k, v in meta.items())
            if same_meta:
                return resolved_model(ws, record)
    model_root = ws.inside(ws.models_dir / name)
    staging = copy_into(source, model_root)
    try:
        with ws.store.transaction() as state:
            versions = state["models"].setdefault(name, {})
            chosen = version or next_version(versions)
            previous = versions.get(chosen)
            if previous is not None:
                if previous["content_hash"] == digest and previous["type"] == kind:
                    record = {**previous, **meta, "updated_at": now()}
                    versions[chosen] = record
                    return resolved_model(ws, record)
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
                "path": ws.stored_path(target / source.name),
                "model_dir": ws.stored_path(target),
                "source": origin or str(source),
                "content_hash": digest,
                **meta,
            }
            stamp(record, None)
            versions[chosen] = record
            return resolved_model(ws, record)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


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

    spec, source = load_versioned("model", ModelSpec, file, overrides, name, version, type, path, description)
    meta = {"description": spec.description, "tags": spec.tags, "properties": spec.properties}
    if spec.path.startswith(MLFLOW_URI_PREFIXES):
        return _register_from_mlflow(ws, spec, meta, source)
    check_model_path(Path(spec.path), spec.type, source)
    return register_model_files(ws, spec.name, spec.version, spec.type, Path(spec.path), meta)


def _register_from_mlflow(ws: Workspace, spec: Any, meta: dict[str, Any], source: str) -> dict[str, Any]:
    """`--path models:/<name>/<version>` or `runs:/<run>/<path>`: mlflow downloads the model from the tracking
    store that MLFLOW_TRACKING_URI names (as `mlflow models predict -m` does), then it is copied in as any path."""
    import tempfile

    uri = spec.path
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        raise SpecError(
            f"{spec_load.field_label(source, 'path')}: '{uri}' is an MLflow URI, and MLFLOW_TRACKING_URI is not set",
            f"export MLFLOW_TRACKING_URI=<the tracking store that holds it>, or download the model with "
            f"`mlflow artifacts download -u {uri} -d ./model` and pass --path ./model",
        )
    with tempfile.TemporaryDirectory(prefix="batchctl-mlflow-") as tmp:
        path = download_mlflow_model(uri, tmp)
        if spec.type == "mlflow_model":
            check_model_path(path, spec.type, uri)
        return register_model_files(ws, spec.name, spec.version, spec.type, path, meta, origin=uri)


def get_model(ws: Workspace, name: str, version: str | None = None) -> dict[str, Any]:
    spec_load.validate_name("model", name)
    return resolved_model(ws, get_versioned(ws.store.read(), "models", name, version or LATEST))


def resolve_model_ref(ws: Workspace, ref: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
    name, version = parse_asset_ref(ref, "model")
    return resolved_model(ws, get_versioned(state if state is not None else ws.store.read(), "models", name, version))


def list_models(ws: Workspace, name: str | None = None) -> list[dict[str, Any]]:
    return [resolved_model(ws, record) for record in list_versioned(ws, "models", name)]


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

        removed = pop_versions(state, "models", "model", name, version, not_in_use)
    for record in removed:
        with contextlib.suppress(OSError):
            shutil.rmtree(ws.inside(Path(ws.resolved_path(record["model_dir"]))))
    return {"name": name, "versions_deleted": [r["version"] for r in removed]}


def register_mlflow_uri_model(ws: Workspace, uri: str, deployment: str) -> dict[str, Any]:
    import tempfile

    if uri.startswith("models:/"):
        base = uri[len("models:/") :].split("/")[0].split("@")[0]
    else:
        parts = uri[len("runs:/") :].strip("/").split("/")
        base = f"run-{parts[0][:12]}-{'-'.join(parts[1:]) or 'model'}"
    name = re.sub(r"[^a-zA-Z0-9_-]", "-", base).strip("-_") or f"{deployment}-model"
    with tempfile.TemporaryDirectory(prefix="batchctl-mlflow-") as tmp:
        path = download_mlflow_model(uri, tmp)
        return register_model_files(
            ws, name, None, "mlflow_model", path, {"description": f"resolved from {uri}"}, origin=uri
        )
