"""Azure's component YAML (commandComponent / pipelineComponent schemas) and pipeline jobs (pipelineJob):
pure YAML -> validated models, `--set` applied, local paths resolved against each file's folder.
No workspace access: `azureml:` references stay strings, resolved by resources/pipelines.py.

A step's `component:` given as a file is loaded here (recursively, relative to the file naming it), so a
loaded pipeline holds its command components; an inline component is validated in place."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, PrivateAttr, field_validator, model_validator

from batchctl.errors import SpecError
from batchctl.specs import load as spec_load
from batchctl.specs._base import AssetName, StrictModel, Tags, Version
from batchctl.specs.bindings import BindingError, command_refs

PORT_TYPES = (
    "uri_file",
    "uri_folder",
    "mlflow_model",
    "custom_model",
    "mltable",
    "string",
    "number",
    "integer",
    "boolean",
)
ASSET_TYPES = frozenset({"uri_file", "uri_folder", "mlflow_model", "custom_model", "mltable"})
PortType = Literal[
    "uri_file", "uri_folder", "mlflow_model", "custom_model", "mltable", "string", "number", "integer", "boolean"
]
OutputType = Literal["uri_file", "uri_folder", "mlflow_model", "custom_model", "mltable"]
MODES = ("ro_mount", "rw_mount", "download", "upload", "direct", "eval_mount", "eval_download")
Mode = Literal["ro_mount", "rw_mount", "download", "upload", "direct", "eval_mount", "eval_download"]


class InputPort(StrictModel):
    """A declared input of a component (commandComponent.schema.json `inputs.<name>`)."""

    type: PortType
    optional: bool = False
    default: Any = None
    mode: Mode | None = None
    description: str | None = None
    min: float | None = None
    max: float | None = None
    enum: list[Any] | None = None


class OutputPort(StrictModel):
    """A declared output of a component."""

    type: OutputType = "uri_folder"
    mode: Mode | None = None
    description: str | None = None


class _ComponentBase(StrictModel):
    name: AssetName | None = None
    version: Version | None = None
    display_name: str | None = None
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    is_deterministic: bool = True
    inputs: dict[str, InputPort] = Field(default_factory=dict)
    outputs: dict[str, OutputPort] = Field(default_factory=dict)

    # where the spec came from (a file, `azureml:name:version`, or "<pipeline>: jobs.<step>.component")
    _source: str = PrivateAttr("")

    @property
    def source(self) -> str:
        return self._source

    def with_source(self, source: str) -> Self:
        self._source = source
        return self


class CommandComponentSpec(_ComponentBase):
    type: Literal["command"] = "command"
    command: str = Field(min_length=1)
    code: str | None = Field(None, description="The component's code folder (relative to its file).")
    environment: str | dict[str, Any] | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    resources: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    additional_includes: list[str] | None = None

    @model_validator(mode="after")
    def _references(self) -> CommandComponentSpec:
        """Every `${{inputs.x}}` / `${{outputs.y}}` of the command is declared (Azure refuses the others)."""
        try:
            refs = command_refs(self.command)
        except BindingError as exc:
            raise ValueError(f"command: {exc}") from None
        for kind, named, declared in (("input", refs.inputs, self.inputs), ("output", refs.outputs, self.outputs)):
            unknown = sorted(set(named) - set(declared))
            if unknown:
                raise ValueError(
                    f"command: ${{{{{kind}s.{unknown[0]}}}}} names no declared {kind} "
                    f"(declared: {', '.join(sorted(declared)) or 'none'})"
                )
        return self

    @field_validator("environment_variables", mode="before")
    @classmethod
    def _env_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v if isinstance(v, str) else _scalar_text(v) for k, v in value.items()}
        return value


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    return value


class StepSpec(StrictModel):
    """One entry of a pipeline's `jobs:` (a command node)."""

    type: Literal["command"] = "command"
    component: str | CommandComponentSpec
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    display_name: str | None = None
    description: str | None = None
    compute: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    resources: dict[str, Any] | None = None
    tags: Tags = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("component", mode="before")
    @classmethod
    def _inline_is_command(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type", "command") != "command":
            raise ValueError("only command components can be steps of a pipeline here (nested pipelines are not)")
        return value

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return {} if value is None else value


class PipelineComponentSpec(_ComponentBase):
    type: Literal["pipeline"] = "pipeline"
    jobs: dict[str, StepSpec] = Field(min_length=1)

    @field_validator("jobs")
    @classmethod
    def _step_names(cls, value: dict[str, StepSpec]) -> dict[str, StepSpec]:
        for key in value:
            if not key.replace("_", "a").replace("-", "a").isalnum() or not key[0].isalpha():
                raise ValueError(f"step name '{key}': use letters, digits, '_' and '-', starting with a letter")
        return value


class PipelineJobSettings(StrictModel):
    continue_on_step_failure: bool = False
    default_compute: str | None = None
    default_datastore: str | None = None
    force_rerun: bool = False
    default_environment: str | None = None


class PipelineJobSpec(StrictModel):
    """pipelineJob.schema.json: `component:` (file, reference, or inline) or inline `jobs:`."""

    type: Literal["pipeline"] = "pipeline"
    name: AssetName | None = None
    display_name: str | None = None
    experiment_name: AssetName | None = None
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    compute: str | None = None
    component: str | PipelineComponentSpec | None = None
    jobs: dict[str, StepSpec] | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    settings: PipelineJobSettings = Field(default_factory=PipelineJobSettings)

    _source: str = PrivateAttr("")

    @property
    def source(self) -> str:
        return self._source

    def with_source(self, source: str) -> Self:
        self._source = source
        return self

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _component_or_jobs(self) -> PipelineJobSpec:
        if (self.component is None) == (self.jobs is None):
            raise ValueError("give either component (a pipeline component) or jobs (the steps inline), not both")
        return self


MAX_DEPTH = 8


def _local(value: str, base: Path) -> str:
    return spec_load.resolve_local(value, base)


def _resolve_command_paths(data: dict[str, Any], base: Path) -> None:
    """A command component's `code` and inline environment's `conda_file`, against its file's folder."""
    code = data.get("code")
    if isinstance(code, str) and code:
        data["code"] = _local(code, base)
    env = data.get("environment")
    if isinstance(env, dict) and isinstance(env.get("conda_file"), str) and env["conda_file"]:
        env["conda_file"] = _local(env["conda_file"], base)


def _resolve_io_paths(data: dict[str, Any], base: Path) -> None:
    """`inputs.<x>.path` / `outputs.<y>.path` given as local paths (not bindings), against the file's folder."""
    for section in ("inputs", "outputs"):
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for entry in entries.values():
            path = entry.get("path") if isinstance(entry, dict) else None
            if isinstance(path, str) and path and "${{" not in path:
                entry["path"] = _local(path, base)


def _load_steps(data: dict[str, Any], base: Path, source: str, depth: int) -> None:
    """Each `jobs.<step>.component`: a file is loaded (its own paths against its own folder), an inline one has
    its paths resolved against this file's folder; an `azureml:` reference stays as written."""
    jobs = data.get("jobs")
    if not isinstance(jobs, dict):
        return
    for step, node in jobs.items():
        if not isinstance(node, dict):
            continue
        _resolve_io_paths(node, base)
        comp = node.get("component")
        if isinstance(comp, dict):
            _resolve_command_paths(comp, base)
            node["component"] = _validated(CommandComponentSpec, comp, f"{source}: jobs.{step}.component", source)
        elif isinstance(comp, str) and comp and not comp.startswith("azureml:"):
            path = Path(_local(comp, base))
            if not path.is_file():
                raise SpecError(f"{source}: jobs.{step}.component: '{comp}' does not exist (no such component file)")
            child = _load_file(path, (), depth + 1)
            if not isinstance(child, CommandComponentSpec):
                raise SpecError(
                    f"{source}: jobs.{step}.component: '{comp}' is a pipeline component; "
                    "only command components can be steps here (nested pipelines are not supported)"
                )
            node["component"] = child


def _validated(model: Any, data: Any, label: str, source: str) -> Any:
    """Validate `data`; errors name `source` and the field (inline parts say where they sit in the file)."""
    spec = spec_load.validate_data(model, data, label)
    return spec.with_source(label if label != source else source)


def _component_model(data: dict[str, Any], source: str) -> Any:
    kind = data.get("type", "command")
    if kind == "command":
        return CommandComponentSpec
    if kind == "pipeline":
        return PipelineComponentSpec
    raise SpecError(f"{source}: type: '{kind}' is not a component type batchctl runs (command or pipeline)")


def _load_file(path: Path, overrides: Iterable[str], depth: int) -> CommandComponentSpec | PipelineComponentSpec:
    if depth > MAX_DEPTH:
        raise SpecError(f"{path.name}: components nest more than {MAX_DEPTH} files deep (a file naming itself?)")
    data = spec_load.read_yaml(path)
    data = spec_load.apply_overrides(data, overrides)
    return component_from_data(data, path.absolute().parent, path.name, depth)


def component_from_data(
    data: dict[str, Any], base: Path, source: str, depth: int = 0
) -> CommandComponentSpec | PipelineComponentSpec:
    """A component from its mapping (a file's content, or a deployment's inline `component:`)."""
    model = _component_model(data, source)
    data = copy.deepcopy(data)
    if model is CommandComponentSpec:
        _resolve_command_paths(data, base)
    else:
        _load_steps(data, base, source, depth)
    spec: CommandComponentSpec | PipelineComponentSpec = _validated(model, data, source, source)
    return spec


def load_component(file: str | Path, overrides: Iterable[str] = ()) -> CommandComponentSpec | PipelineComponentSpec:
    """A component file (command or pipeline), `--set` applied, children loaded."""
    return _load_file(Path(file), list(overrides), 0)


def load_pipeline_job(file: str | Path, overrides: Iterable[str] = ()) -> PipelineJobSpec:
    """A pipeline job file (`az ml job create -f pipeline-job.yml`), `--set` applied, children loaded."""
    path = Path(file)
    data = spec_load.read_yaml(path)
    data = spec_load.apply_overrides(data, overrides)
    return pipeline_job_from_data(data, path.absolute().parent, path.name)


def pipeline_job_from_data(data: dict[str, Any], base: Path, source: str) -> PipelineJobSpec:
    data = copy.deepcopy(data)
    if data.get("type", "pipeline") != "pipeline":
        raise SpecError(f"{source}: type: '{data.get('type')}' is not a pipeline job (type: pipeline)")
    _resolve_io_paths(data, base)
    comp = data.get("component")
    if isinstance(comp, str) and comp and not comp.startswith("azureml:"):
        path = Path(_local(comp, base))
        if not path.is_file():
            raise SpecError(f"{source}: component: '{comp}' does not exist (no such component file)")
        child = _load_file(path, (), 1)
        if not isinstance(child, PipelineComponentSpec):
            raise SpecError(f"{source}: component: '{comp}' is a command component; a pipeline job takes a pipeline")
        data["component"] = child
    elif isinstance(comp, dict):
        data["component"] = component_from_data({"type": "pipeline", **comp}, base, f"{source}: component", 1)
    _load_steps(data, base, source, 0)
    job: PipelineJobSpec = _validated(PipelineJobSpec, data, source, source)
    return job
