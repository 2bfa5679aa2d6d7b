"""Azure's component YAML (commandComponent / pipelineComponent schemas) and pipeline jobs (pipelineJob):
pure YAML -> validated models, `--set` applied, local paths resolved against each file's folder.
No workspace access: `azureml:` references stay strings, resolved by resources/pipelines.py.

A step's `component:` given as a file is loaded here (recursively, relative to the file naming it), so a
loaded pipeline holds its command components; an inline component is validated in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from batchctl.specs._base import AssetName, StrictModel, Tags, Version

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

    def with_source(self, source: str) -> Any:
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

    def with_source(self, source: str) -> PipelineJobSpec:
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


def load_component(
    file: str | Path, overrides: tuple[str, ...] | list[str] = ()
) -> CommandComponentSpec | PipelineComponentSpec:
    """A component file (command or pipeline), `--set` applied, children loaded."""
    raise NotImplementedError


def load_pipeline_job(file: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> PipelineJobSpec:
    """A pipeline job file (`az ml job create -f pipeline-job.yml`), `--set` applied, children loaded."""
    raise NotImplementedError
