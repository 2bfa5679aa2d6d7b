"""A pipeline component or pipeline job, bound: every step's component, environment, code folder and
inputs resolved, every binding checked, steps in topological order (PIPELINE-CONTRACT.md).

Everything is validated here before any step runs; errors are one SpecError line (exit 3):
`<file>: jobs.<step>.inputs.<x>: <what is wrong>`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from batchctl.specs.component import PipelineComponentSpec, PipelineJobSpec
    from batchctl.workspace import Workspace


@dataclass(frozen=True)
class Port:
    """A declared input or output of a component."""

    name: str
    type: str  # uri_file|uri_folder|mlflow_model|custom_model|mltable|string|number|integer|boolean
    optional: bool = False
    default: Any = None
    mode: str | None = None  # ro_mount|download|rw_mount|upload|direct... (recorded; local paths either way)


@dataclass(frozen=True)
class BoundInput:
    """One input of one step after binding; exactly one kind."""

    kind: Literal["literal", "path", "step_output", "unset"]
    type: str  # the component port's type
    value: str | int | float | bool | None = None  # kind == "literal"
    uri: str | None = None  # kind == "path": a local path or any location the model path accepts
    step: str | None = None  # kind == "step_output": the producing step
    output: str | None = None  # ... and its output name


@dataclass(frozen=True)
class BoundOutput:
    type: str
    mode: str | None = None
    promoted_to: str | None = None  # the parent output name (path: ${{parent.outputs.y}}), else anonymous


@dataclass(frozen=True)
class BoundStep:
    name: str  # the key under jobs:
    component_name: str
    component_version: str
    command: str  # the template, unrendered
    code: Path | None  # absolute local folder; the step's working folder is a copy of it
    environment: dict[str, Any] | None  # the environment record jobs/environment.py takes; None = this interpreter
    environment_variables: dict[str, str]
    is_deterministic: bool
    inputs: dict[str, BoundInput]
    outputs: dict[str, BoundOutput]
    ports: dict[str, Port]  # the component's declared inputs (for render_command's optional blocks)
    depends_on: tuple[str, ...]
    definition_sha256: str  # the component's canonical spec + code folder content + environment key


@dataclass(frozen=True)
class PipelineSettings:
    continue_on_step_failure: bool = False
    default_compute: str | None = None
    default_datastore: str | None = None
    force_rerun: bool = False


@dataclass(frozen=True)
class BoundPipeline:
    source: str  # a file or azureml:name:version, for messages
    name: str  # the component's name (or the job's display name)
    steps: tuple[BoundStep, ...]  # topological order, ties broken by name
    inputs: dict[str, Any]  # the parent's inputs as given (literals and {type, path}) for the job record
    outputs: dict[str, BoundOutput]  # the parent's outputs, keyed by parent output name
    settings: PipelineSettings = field(default_factory=PipelineSettings)


def bind_pipeline(
    ws: Workspace,
    spec: PipelineComponentSpec | PipelineJobSpec,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any] | None = None,
    settings: PipelineSettings | None = None,
) -> BoundPipeline:
    """Validate and resolve everything before any step runs (SpecError, exit 3, one line)."""
    raise NotImplementedError


def render_command(step: BoundStep, values: Mapping[str, str | None], outputs: Mapping[str, str]) -> str:
    """The step's command with `${{inputs.x}}` / `${{outputs.y}}` substituted and `$[[ ... ]]` blocks
    dropped when an input they name is unset (None)."""
    raise NotImplementedError


def pipeline_from_deployment(ws: Workspace, deployment: dict[str, Any]) -> PipelineComponentSpec:
    """The pipeline component of a `type: pipeline` deployment: `component:` as a file, an `azureml:`
    reference or inline (24b fills the `job_definition:` side)."""
    raise NotImplementedError
