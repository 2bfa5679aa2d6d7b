"""The front doors of pipeline jobs: `endpoint invoke` on a `type: pipeline` deployment (an inputs file
`-f inputs.yml`, `--set inputs.<x>.value|path=...`, `--set outputs.<y>.path=...`) and `job create -f
pipeline-job.yml`. Both bind the pipeline (every reference and binding checked before any step runs) and
queue a parent job (submit.queue_pipeline)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batchctl.errors import SpecError
from batchctl.fsutil import atomic_write_json
from batchctl.jobs import records
from batchctl.jobs.pipelines.submit import PipelineRequest, queue_pipeline
from batchctl.resources.deployments import PIPELINE_JOB_SPEC, resolve_deployment
from batchctl.resources.pipelines import BoundPipeline, PipelineSettings, bind_pipeline, pipeline_from_deployment
from batchctl.specs import load as spec_load
from batchctl.workspace import Workspace

_LOCAL_ONLY = ("azureml:", "http://", "https://", "abfs://", "abfss://", "az://", "wasbs://", "s3://", "gs://")


def _local(value: str, base: Path) -> str:
    if value.startswith(_LOCAL_ONLY) or Path(value).is_absolute():
        return value
    return str((base / value).absolute())


def _literal_of(entry: dict[str, Any]) -> Any:
    for key in ("value", "default"):
        if key in entry:
            return entry[key]
    return None


def read_inputs_file(file: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Azure's inputs.yml: `inputs:` ({type, path} for data, a literal or {type, value|default} for the
    rest) and `outputs:` ({type, mode, path?}); relative paths are the file's folder's."""
    path = Path(file)
    data = spec_load.read_yaml(path)
    unknown = sorted(set(data) - {"inputs", "outputs", "$schema"})
    if unknown:
        raise SpecError(f"{path.name}: {unknown[0]}: not a field of an inputs file (inputs:, outputs:)")
    base = path.absolute().parent
    inputs: dict[str, Any] = {}
    for name, entry in (data.get("inputs") or {}).items():
        if isinstance(entry, dict) and "path" in entry:
            inputs[name] = {**entry, "path": _local(str(entry["path"]), base)}
        elif isinstance(entry, dict):
            inputs[name] = _literal_of(entry)
        else:
            inputs[name] = entry
    outputs: dict[str, Any] = {}
    for name, entry in (data.get("outputs") or {}).items():
        entry = dict(entry or {})
        if isinstance(entry.get("path"), str):
            entry["path"] = _local(entry["path"], base)
        outputs[name] = entry
    return inputs, outputs


def apply_io_sets(inputs: dict[str, Any], outputs: dict[str, Any], overrides: Iterable[str]) -> list[str]:
    """`--set inputs.<x>.value=v` (or `.default=v`, as Azure's docs write it: `--set inputs.score_mode.type=string
    inputs.score_mode.default=append`), `inputs.<x>=v`, `inputs.<x>.path=p`, `inputs.<x>.type=t`,
    `outputs.<y>.path=p` onto the invocation; the rest is returned. A literal given replaces what the file gave
    for that input, bare or `{type, default}`; the file's other inputs stay (az ml replaces the file's whole
    `inputs:` by --set's, docs/pipelines.md). Values are read as YAML scalars (`true`, `3`, `0.5`)."""
    import yaml

    rest = []
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or parts[0] not in ("inputs", "outputs") or len(parts) not in (2, 3):
            rest.append(item)
            continue
        value = yaml.safe_load(text) if text else ""
        if parts[0] == "outputs":
            outputs.setdefault(parts[1], {})[parts[2] if len(parts) == 3 else "path"] = text
        elif len(parts) == 2 or parts[2] in ("value", "default"):
            inputs[parts[1]] = value
        elif parts[2] == "path":
            current = inputs.get(parts[1])
            kind = current.get("type") if isinstance(current, dict) else None
            inputs[parts[1]] = {"type": kind or "uri_folder", "path": _local(text, Path.cwd())}
        elif parts[2] == "type":
            current = inputs.get(parts[1])
            if isinstance(current, dict) or current is None:
                inputs[parts[1]] = {**(current or {}), "type": text}
            # a literal already set (`.default=append` before `.type=string`) stays the literal
        else:
            raise SpecError(f"--set: {key}: use inputs.<name>.value, .default, .path or .type, or outputs.<name>.path")
    return rest


def is_pipeline_job_file(file: str | None) -> bool:
    if file is None:
        return False
    try:
        return spec_load.read_yaml(Path(file)).get("type") == "pipeline"
    except SpecError:
        return False


def _output_paths(outputs: dict[str, Any]) -> dict[str, str]:
    return {k: str(v["path"]) for k, v in outputs.items() if isinstance(v, dict) and v.get("path")}


def invoke_pipeline(
    ws: Workspace,
    *,
    endpoint: str,
    deployment: str | None = None,
    file: str | None = None,
    overrides: Iterable[str] = (),
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    job_name: str | None = None,
    experiment_name: str | None = None,
    tags: dict[str, str] | None = None,
    force_rerun: bool = False,
    dry_run: bool = False,
    tracking_uri: str | None = None,
    **env: Any,
) -> dict[str, Any]:
    """A pipeline job of a `type: pipeline` deployment, queued. `inputs`/`outputs` (REST's body, already
    typed) lay over the inputs file, `overrides` (`--set`) over both."""
    found = resolve_deployment(ws, spec_load.validate_name("endpoint", endpoint), deployment)
    ep, record = found[0].dump(), found[1].dump()  # the stored keys (a pipeline deployment's are its own)
    given_inputs, given_outputs = read_inputs_file(file) if file else ({}, {})
    inputs = {**given_inputs, **(inputs or {})}
    outputs = {**given_outputs, **(outputs or {})}
    rest = apply_io_sets(inputs, outputs, overrides)
    if rest:
        raise SpecError(
            f"--set: {rest[0].partition('=')[0]}: a pipeline deployment takes inputs.<name>.value|path and "
            "outputs.<name>.path"
        )
    settings = record.get("settings") or {}
    pipeline_settings = PipelineSettings(
        continue_on_step_failure=bool(settings.get("continue_on_step_failure")),
        default_compute=settings.get("default_compute"),
        default_datastore=settings.get("default_datastore"),
        force_rerun=force_rerun,
    )
    if record.get("job_spec") is not None:
        from batchctl.specs.component import PipelineJobSpec

        job = PipelineJobSpec.model_validate(record["job_spec"]).with_source(f"deployment {record['name']}")
        bound = bind_pipeline(ws, job, {**job.inputs, **inputs}, {**job.outputs, **outputs}, pipeline_settings)
    else:
        spec = pipeline_from_deployment(ws, record)
        bound = bind_pipeline(ws, spec, inputs, outputs, pipeline_settings)
    request = PipelineRequest(
        bound=bound,
        job_name=job_name,
        experiment_name=experiment_name or ep["name"],
        tags=dict(tags or {}),
        endpoint=ep["name"],
        deployment=record["name"],
        output_paths=_output_paths(outputs),
        force_rerun=force_rerun,
        tracking_uri=tracking_uri,
        **_env_options(env),
    )
    return queue_pipeline(ws, request, dry_run)


def _env_options(env: dict[str, Any]) -> dict[str, Any]:
    return {
        "env_manager": env.get("env_manager"),
        "env_strict": bool(env.get("env_strict")),
        "env_constraints": list(env.get("env_constraints") or []),
    }


def create_pipeline_job(
    ws: Workspace,
    *,
    file: str,
    name: str | None = None,
    overrides: Iterable[str] = (),
    tags: dict[str, str] | None = None,
    experiment_name: str | None = None,
    force_rerun: bool = False,
    dry_run: bool = False,
    tracking_uri: str | None = None,
    **env: Any,
) -> dict[str, Any]:
    """`job create -f pipeline-job.yml`: a standalone pipeline job (its spec kept for `job_definition`)."""
    from batchctl.specs.component import load_pipeline_job

    if name is not None:
        spec_load.validate_name("job", name)
    spec = load_pipeline_job(file, list(overrides))
    settings = PipelineSettings(
        continue_on_step_failure=spec.settings.continue_on_step_failure,
        default_compute=(spec.settings.default_compute or spec.compute or None),
        default_datastore=spec.settings.default_datastore,
        force_rerun=force_rerun or spec.settings.force_rerun,
    )
    bound: BoundPipeline = bind_pipeline(ws, spec, spec.inputs, spec.outputs, settings)
    request = PipelineRequest(
        bound=bound,
        job_name=name or spec.name,
        display_name=spec.display_name,
        experiment_name=experiment_name or spec.experiment_name,
        description=spec.description,
        tags={**spec.tags, **(tags or {})},
        output_paths=_output_paths(spec.outputs),
        force_rerun=force_rerun,
        tracking_uri=tracking_uri,
        **_env_options(env),
    )
    record = queue_pipeline(ws, request, dry_run)
    if not dry_run:
        folder = records.job_dir(ws, record["name"])
        atomic_write_json(folder / PIPELINE_JOB_SPEC, spec.model_dump(mode="json"))
    return record
