"""A pipeline component or pipeline job, bound: every step's component, environment, code folder and
inputs resolved, every binding checked, steps in topological order (PIPELINE-CONTRACT.md).

Everything is validated here before any step runs; errors are one SpecError line (exit 3):
`<file>: jobs.<step>.inputs.<x>: <what is wrong>`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from batchctl.errors import BatchctlError, SpecError
from batchctl.resources import components as comp_res
from batchctl.specs import bindings
from batchctl.specs.component import (
    ASSET_TYPES,
    CommandComponentSpec,
    InputPort,
    OutputPort,
    PipelineComponentSpec,
    PipelineJobSpec,
    StepSpec,
)
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
    uri: str | None = None  # a parent output only: the `path:` its caller gave (where to publish), else None


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


# Azure ML registry environments (`azureml://registries/azureml/environments/<name>/...`) cannot be pulled
# here; these are their local equivalents (docs/pipelines.md): the packages the curated image is built
# around, the Python release left to the host. A name not in this table is refused with one line.
REGISTRY_ENVIRONMENTS: dict[str, tuple[str, ...]] = {
    "sklearn-1.5": ("scikit-learn~=1.5.0", "pandas", "numpy", "scipy", "mlflow"),
    "sklearn-1.1": ("scikit-learn~=1.1.0", "pandas", "numpy", "scipy", "mlflow"),
    "lightgbm-3.3": ("lightgbm~=3.3.0", "scikit-learn", "pandas", "numpy", "mlflow"),
    "minimal-ubuntu22.04-py311-cpu-inference": (),
    "minimal-ubuntu20.04-py38-cpu-inference": (),
}
REGISTRY_ENV_PREFIX = "azureml://registries/"
FOLDER_TYPES = frozenset({"uri_folder", "mlflow_model", "custom_model", "mltable"})
MODEL_TYPES = frozenset({"mlflow_model", "custom_model"})


def _fail(source: str, where: str, what: str, hint: str | None = None) -> SpecError:
    return SpecError(f"{source}: {where}: {what}" if where else f"{source}: {what}", hint)


def _compatible(produced: str, wanted: str) -> bool:
    """Whether a value of type `produced` can feed a port of type `wanted`: the same type; any folder-like
    asset for another (an mlflow model is a folder, as Azure lets uri_folder and custom_model meet)."""
    if produced == wanted:
        return True
    return produced in FOLDER_TYPES and wanted in FOLDER_TYPES


def coerce_literal(value: Any, port_type: str) -> str | int | float | bool:
    """A literal checked against a primitive port type (ValueError says what is wrong)."""
    if isinstance(value, dict | list) or value is None:
        raise ValueError(f"expected a {port_type} value, got a {type(value).__name__}")
    if port_type == "string":
        return value if isinstance(value, str) else bindings.literal_text(value)
    if port_type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"expected a boolean (true or false), got '{value}'")
    if isinstance(value, bool):
        raise ValueError(f"expected {'an integer' if port_type == 'integer' else 'a number'}, got a boolean")
    if port_type == "integer":
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        raise ValueError(f"expected an integer, got '{value}'")
    try:
        return value if isinstance(value, int | float) else float(value)
    except ValueError:
        raise ValueError(f"expected a number, got '{value}'") from None


def _check_range(value: Any, port: InputPort) -> None:
    if port.enum is not None and value not in port.enum and str(value) not in [str(e) for e in port.enum]:
        raise ValueError(f"'{value}' is not one of {', '.join(str(e) for e in port.enum)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if port.min is not None and value < port.min:
            raise ValueError(f"{value} is below the minimum {port.min:g}")
        if port.max is not None and value > port.max:
            raise ValueError(f"{value} is above the maximum {port.max:g}")


def port_of(name: str, port: InputPort | OutputPort) -> Port:
    if isinstance(port, InputPort):
        return Port(name, port.type, port.optional, port.default, port.mode)
    return Port(name, port.type, False, None, port.mode)


def resolve_asset_path(ws: Workspace, state: dict[str, Any], ref: str, port_type: str) -> str:
    """`azureml:<name>@latest` / `:<v>` -> the registered model's (mlflow_model/custom_model) or data asset's
    location; anything else (a local path, a URL, `azureml://datastores/...`) as given."""
    if not ref.startswith("azureml:") or ref.startswith("azureml://"):
        return ref
    from batchctl.resources._common import get_versioned, parse_asset_ref

    if port_type in MODEL_TYPES:
        from batchctl.resources.models import resolved_model

        name, version = parse_asset_ref(ref, "model")
        return str(resolved_model(ws, get_versioned(state, "models", name, version))["path"])
    name, version = parse_asset_ref(ref, "data")
    return str(get_versioned(state, "data", name, version)["path"])


@dataclass
class _Parent:
    """The pipeline's own side while its steps bind: its declared (or inferred) ports and what was given."""

    source: str
    inputs: dict[str, BoundInput]  # parent input name -> resolved value (never step_output)
    ports: dict[str, InputPort]
    outputs: dict[str, BoundOutput]
    steps: dict[str, StepSpec]
    require_inputs: bool


_GIVEN_KEYS = frozenset({"type", "path", "mode", "value", "default", "description", "optional"})


def _infer_port(value: Any) -> InputPort:
    """The port an inline pipeline job's input implies (it declares none): its `type:`, else a path's
    uri_folder, else the literal's own type."""
    if isinstance(value, dict):
        kind = value.get("type") or ("uri_folder" if value.get("path") else "string")
        return InputPort.model_validate({"type": kind, "optional": True})
    if isinstance(value, bool):
        return InputPort(type="boolean", optional=True)
    if isinstance(value, int):
        return InputPort(type="integer", optional=True)
    if isinstance(value, float):
        return InputPort(type="number", optional=True)
    return InputPort(type="string", optional=True)


def _literal_or_path(
    ws: Workspace, state: dict[str, Any], value: Any, port: InputPort, where: str, source: str
) -> BoundInput:
    """A value (a literal, or a path for an asset port) checked against the port it feeds."""
    if port.type in ASSET_TYPES:
        if not isinstance(value, str) or not value:
            raise _fail(source, where, f"a {port.type} input takes a path, not '{value}'")
        try:
            return BoundInput("path", port.type, uri=resolve_asset_path(ws, state, value, port.type))
        except BatchctlError as exc:
            raise _fail(source, where, exc.message, exc.hint) from None
    try:
        literal = coerce_literal(value, port.type)
        _check_range(literal, port)
    except ValueError as exc:
        raise _fail(source, where, str(exc)) from None
    return BoundInput("literal", port.type, value=literal)


def _given_value(given: Any, port: InputPort, where: str, source: str) -> Any:
    """The value inside what a caller gave: a literal, or a mapping's path/value/default (None: unset)."""
    if not isinstance(given, dict):
        return given
    unknown = sorted(set(given) - _GIVEN_KEYS)
    if unknown:
        raise _fail(source, f"{where}.{unknown[0]}", "unknown field (not part of the schema)")
    kind = given.get("type")
    if kind is not None and not _compatible(str(kind), port.type):
        raise _fail(source, f"{where}.type", f"'{kind}' does not match the input's type {port.type}")
    if given.get("path") is not None:
        if port.type not in ASSET_TYPES:
            raise _fail(source, f"{where}.path", f"a {port.type} input takes a value, not a path")
        return given["path"]
    for key in ("value", "default"):
        if given.get(key) is not None:
            return given[key]
    return None


def _parent_input(
    ws: Workspace, state: dict[str, Any], name: str, port: InputPort, given: Any, parent_source: str, require: bool
) -> BoundInput:
    where = f"inputs.{name}"
    value = _given_value(given, port, where, parent_source)
    if value is None:
        value = port.default
    if value is None:
        if require and not port.optional:
            raise _fail(parent_source, where, "required input is not given", f"give it: --set {where}.path=...")
        return BoundInput("unset", port.type)
    return _literal_or_path(ws, state, value, port, where, parent_source)


def _parent_inputs(
    ws: Workspace,
    state: dict[str, Any],
    ports: dict[str, InputPort] | None,
    given: Mapping[str, Any],
    source: str,
    require: bool,
) -> tuple[dict[str, InputPort], dict[str, BoundInput]]:
    if ports is None:  # an inline pipeline job: its inputs are its ports
        ports = {name: _infer_port(value) for name, value in given.items()}
    unknown = sorted(set(given) - set(ports))
    if unknown:
        raise _fail(
            source,
            f"inputs.{unknown[0]}",
            f"not an input of the pipeline (its inputs: {', '.join(sorted(ports)) or 'none'})",
        )
    bound = {
        name: _parent_input(ws, state, name, port, given.get(name), source, require) for name, port in ports.items()
    }
    return ports, bound


def _parent_outputs(
    ports: dict[str, OutputPort] | None, given: Mapping[str, Any], source: str
) -> dict[str, BoundOutput]:
    if ports is None:
        ports = {
            name: OutputPort.model_validate({"type": (value or {}).get("type") or "uri_folder"})
            if isinstance(value, dict | None)
            else OutputPort()
            for name, value in given.items()
        }
    out: dict[str, BoundOutput] = {}
    for name, value in given.items():
        if name not in ports:
            raise _fail(
                source,
                f"outputs.{name}",
                f"not an output of the pipeline (its outputs: {', '.join(sorted(ports)) or 'none'})",
            )
        if value is not None and not isinstance(value, dict):
            raise _fail(source, f"outputs.{name}", "give a mapping such as {type: uri_folder, path: ..., mode: upload}")
    for name, port in ports.items():
        value = given.get(name) or {}
        unknown = sorted(set(value) - {"type", "path", "mode", "description", "name", "version"})
        if unknown:
            raise _fail(source, f"outputs.{name}.{unknown[0]}", "unknown field (not part of the schema)")
        kind = value.get("type") or port.type
        if not _compatible(kind, port.type):
            raise _fail(source, f"outputs.{name}.type", f"'{kind}' does not match the output's type {port.type}")
        path = value.get("path")
        out[name] = BoundOutput(kind, value.get("mode") or port.mode, name, str(path) if path else None)
    return out


def _step_component(
    ws: Workspace, state: dict[str, Any], source: str, step: str, node: StepSpec
) -> CommandComponentSpec:
    comp = node.component
    if not isinstance(comp, str):
        return comp
    where = f"jobs.{step}.component"
    try:
        spec = comp_res.resolve_component_ref(ws, comp, state)
    except BatchctlError as exc:
        raise _fail(source, where, exc.message, exc.hint) from None
    if not isinstance(spec, CommandComponentSpec):
        raise _fail(source, where, f"'{comp}' is a pipeline component; only command components can be steps")
    return spec


def _default_or_unset(ws: Workspace, state: dict[str, Any], port: InputPort, where: str, ctx: _Parent) -> BoundInput:
    if port.default is not None:
        return _literal_or_path(ws, state, port.default, port, where, ctx.source)
    if port.optional:
        return BoundInput("unset", port.type)
    raise _fail(ctx.source, where, "required input is not bound (bind it, or give the component a default)")


def _bound_parent_input(
    ws: Workspace, state: dict[str, Any], ref: bindings.ParentRef, port: InputPort, where: str, ctx: _Parent
) -> BoundInput:
    if ref.name not in ctx.ports:
        raise _fail(
            ctx.source, where, f"no pipeline input '{ref.name}' (its inputs: {', '.join(sorted(ctx.ports)) or 'none'})"
        )
    produced = ctx.ports[ref.name].type
    if not _compatible(produced, port.type):
        raise _fail(ctx.source, where, f"pipeline input '{ref.name}' is a {produced}; this input takes a {port.type}")
    value = ctx.inputs[ref.name]
    if value.kind != "unset":
        if value.kind == "literal" and port.type != value.type:
            return _literal_or_path(ws, state, value.value, port, where, ctx.source)
        return BoundInput(value.kind, port.type, value=value.value, uri=value.uri)
    if not ctx.require_inputs:
        return BoundInput("unset", port.type)
    if port.default is None and not port.optional:
        raise _fail(ctx.source, where, f"bound to pipeline input '{ref.name}', which is not given and has no default")
    return _default_or_unset(ws, state, port, where, ctx)


def _bound_step_output(
    ref: bindings.ParentRef, port: InputPort, where: str, ctx: _Parent, comps: dict[str, CommandComponentSpec]
) -> BoundInput:
    assert ref.step is not None
    if ref.step not in comps:
        raise _fail(ctx.source, where, f"no step '{ref.step}' in this pipeline (steps: {', '.join(sorted(comps))})")
    outputs = comps[ref.step].outputs
    if ref.name not in outputs:
        raise _fail(
            ctx.source,
            where,
            f"step '{ref.step}' has no output '{ref.name}' (its outputs: {', '.join(sorted(outputs)) or 'none'})",
        )
    produced = outputs[ref.name].type
    if not _compatible(produced, port.type):
        raise _fail(ctx.source, where, f"{ref.step}.outputs.{ref.name} is a {produced}; this input takes a {port.type}")
    return BoundInput("step_output", port.type, step=ref.step, output=ref.name)


def _step_input(
    ws: Workspace,
    state: dict[str, Any],
    step: str,
    name: str,
    port: InputPort,
    raw: Any,
    ctx: _Parent,
    comps: dict[str, CommandComponentSpec],
) -> BoundInput:
    where = f"jobs.{step}.inputs.{name}"
    value = raw
    if isinstance(raw, dict):
        value = _given_value(raw, port, where, ctx.source)
        if isinstance(raw.get("path"), str):
            value = raw["path"]
    if value is None:
        return _default_or_unset(ws, state, port, where, ctx)
    try:
        ref = bindings.parse_parent_ref(value)
    except bindings.BindingError as exc:
        raise _fail(ctx.source, where, str(exc)) from None
    if ref is None:
        return _literal_or_path(ws, state, value, port, where, ctx.source)
    if ref.kind == "input":
        return _bound_parent_input(ws, state, ref, port, where, ctx)
    if ref.kind == "step_output":
        return _bound_step_output(ref, port, where, ctx, comps)
    raise _fail(ctx.source, where, "${{parent.outputs...}} binds a step's output, not an input")


def _step_output(step: str, name: str, port: OutputPort, raw: Any, ctx: _Parent) -> BoundOutput:
    where = f"jobs.{step}.outputs.{name}"
    value, kind, mode = raw, port.type, port.mode
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"type", "path", "mode", "description", "name", "version"})
        if unknown:
            raise _fail(ctx.source, f"{where}.{unknown[0]}", "unknown field (not part of the schema)")
        kind = raw.get("type") or port.type
        if not _compatible(kind, port.type):
            raise _fail(ctx.source, f"{where}.type", f"'{kind}' does not match the output's type {port.type}")
        mode, value = raw.get("mode") or port.mode, raw.get("path")
    if value is None:
        return BoundOutput(port.type, mode)
    try:
        ref = bindings.parse_parent_ref(value)
    except bindings.BindingError as exc:
        raise _fail(ctx.source, where, str(exc)) from None
    if ref is None or ref.kind != "output":
        raise _fail(
            ctx.source,
            where,
            "a step's output path must be ${{parent.outputs.<name>}} (the pipeline's outputs say where)",
        )
    if ref.name not in ctx.outputs:
        raise _fail(
            ctx.source,
            where,
            f"no pipeline output '{ref.name}' (its outputs: {', '.join(sorted(ctx.outputs)) or 'none'})",
        )
    parent = ctx.outputs[ref.name]
    if not _compatible(port.type, parent.type):
        raise _fail(ctx.source, where, f"a {port.type} cannot be the pipeline's {parent.type} output '{ref.name}'")
    return BoundOutput(port.type, mode or parent.mode, ref.name)


def _registry_environment(ref: str, where: str, source: str) -> dict[str, Any]:
    import re

    from batchctl.envs import spec as env_spec

    match = re.fullmatch(r"azureml://registries/([^/]+)/environments/([^/]+)(?:/(?:labels|versions)/[^/]+)?", ref)
    name = match.group(2) if match else ""
    if not match or name not in REGISTRY_ENVIRONMENTS:
        raise _fail(
            source,
            where,
            f"environment '{ref}' has no local equivalent (known: {', '.join(sorted(REGISTRY_ENVIRONMENTS))})",
            "register an environment with `batchctl environment create -f env.yml` and name it azureml:<name>@latest",
        )
    spec = env_spec.from_requirements(list(REGISTRY_ENVIRONMENTS[name]), None, f"registry environment {name}")
    return _env_record(ref, spec)


def _env_record(ref: str, spec: Any) -> dict[str, Any]:
    """What jobs/environment.prepare takes, less the job's own choices (manager, strict) the runner adds.
    A step runs its component's command, no batchctl code: its Python may be older than the worker's."""
    from dataclasses import replace

    spec = replace(spec, worker_code=False)
    return {"id": ref, **spec.describe(), "skipped": [c.as_dict() for c in spec.skipped], "key": spec.key}


def resolve_step_environment(
    ws: Workspace, state: dict[str, Any], env: str | dict[str, Any] | None, where: str, source: str
) -> dict[str, Any] | None:
    """A component's environment -> the record the environments layer builds (None: this interpreter)."""
    from batchctl.envs import spec as env_spec
    from batchctl.notices import notify
    from batchctl.resources._common import get_versioned, split_ref
    from batchctl.resources.environments import resolved_environment

    if env is None:
        return None
    if isinstance(env, dict):
        conda = env.get("conda_file")
        label = f"inline environment ({env.get('name') or 'unnamed'})"
        if isinstance(conda, dict):
            return _env_record(label, env_spec.from_conda(conda, label))
        if isinstance(conda, str):
            if not Path(conda).is_file():
                raise _fail(source, f"{where}.conda_file", f"'{conda}' does not exist")
            return _env_record(label, env_spec.from_conda_file(Path(conda), label))
        return None  # an image alone: its layers are not reproduced; this interpreter
    if env.startswith(REGISTRY_ENV_PREFIX):
        return _registry_environment(env, where, source)
    name, version = split_ref(env[len("azureml:") :] if env.startswith("azureml:") else env)
    if name not in state["environments"]:
        raise _fail(
            source,
            where,
            f"environment '{name}' is not registered in this workspace",
            "register it first: `batchctl environment create -f <its environment YAML>`",
        )
    try:
        record = resolved_environment(ws, get_versioned(state, "environments", name, version))
    except BatchctlError as exc:
        raise _fail(source, where, exc.message, exc.hint) from None
    if not record.get("conda_file"):
        notify(f"environment {record['id']} has no conda file (an image only): its step runs in this interpreter")
        return None
    return _env_record(
        record["id"], env_spec.from_conda_file(Path(record["conda_file"]), f"environment {record['id']}")
    )


def _definition_sha256(comp: CommandComponentSpec, env: dict[str, Any] | None, env_vars: dict[str, str]) -> str:
    body = {
        "component": comp_res.definition_digest(comp, runnable_only=True),
        "environment": env["key"] if env else None,
        "environment_variables": env_vars,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _bind_step(
    ws: Workspace, state: dict[str, Any], step: str, ctx: _Parent, comps: dict[str, CommandComponentSpec]
) -> BoundStep:
    node, comp = ctx.steps[step], comps[step]
    for section, declared in (("inputs", comp.inputs), ("outputs", comp.outputs)):
        unknown = sorted(set(getattr(node, section)) - set(declared))
        if unknown:
            raise _fail(
                ctx.source,
                f"jobs.{step}.{section}.{unknown[0]}",
                f"not an {section[:-1]} of component '{comp.name or 'inline'}' "
                f"(its {section}: {', '.join(sorted(declared)) or 'none'})",
            )
    inputs = {
        name: _step_input(ws, state, step, name, port, node.inputs.get(name), ctx, comps)
        for name, port in comp.inputs.items()
    }
    outputs = {name: _step_output(step, name, port, node.outputs.get(name), ctx) for name, port in comp.outputs.items()}
    if ctx.require_inputs:
        for name in sorted(bindings.command_refs(comp.command).required_inputs):
            if inputs[name].kind == "unset":
                raise _fail(
                    ctx.source, f"jobs.{step}.inputs.{name}", "is unset, and the command uses it outside $[[ ]]"
                )
    if comp.code and not Path(comp.code).is_dir():
        raise _fail(ctx.source, f"jobs.{step}.component.code", f"'{comp.code}' is not a folder")
    env = resolve_step_environment(ws, state, comp.environment, f"jobs.{step}.component.environment", ctx.source)
    env_vars = {**comp.environment_variables, **node.environment_variables}
    sha = _definition_sha256(comp, env, env_vars)
    return BoundStep(
        name=step,
        component_name=comp.name or "azureml_anonymous",
        component_version=comp.version or sha[:12],
        command=comp.command,
        code=Path(comp.code).resolve() if comp.code else None,
        environment=env,
        environment_variables=env_vars,
        is_deterministic=comp.is_deterministic,
        inputs=inputs,
        outputs=outputs,
        ports={name: port_of(name, port) for name, port in comp.inputs.items()},
        depends_on=tuple(sorted({i.step for i in inputs.values() if i.step is not None})),
        definition_sha256=sha,
    )


def topological(steps: Mapping[str, BoundStep], source: str) -> tuple[BoundStep, ...]:
    """Steps in dependency order, ties broken by name; a cycle is one SpecError line naming it."""
    import heapq

    waiting = {name: set(step.depends_on) for name, step in steps.items()}
    ready = [name for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[BoundStep] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(steps[name])
        del waiting[name]
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    heapq.heappush(ready, other)
    if waiting:
        raise _fail(source, "jobs", f"the steps form a cycle: {_cycle(waiting)}")
    return tuple(order)


def _cycle(waiting: dict[str, set[str]]) -> str:
    path = [min(waiting)]
    while True:
        nxt = min(d for d in waiting[path[-1]] if d in waiting)
        if nxt in path:
            loop = path[path.index(nxt) :] + [nxt]
            return " -> ".join(loop)
        path.append(nxt)


@dataclass(frozen=True)
class _Parts:
    source: str
    name: str
    input_ports: dict[str, InputPort] | None  # None: an inline pipeline job's, inferred from what it gives
    output_ports: dict[str, OutputPort] | None
    jobs: dict[str, StepSpec]
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    settings: PipelineSettings


def _job_settings(job: PipelineJobSpec) -> PipelineSettings:
    s = job.settings
    return PipelineSettings(
        continue_on_step_failure=s.continue_on_step_failure,
        default_compute=s.default_compute or job.compute,
        default_datastore=s.default_datastore,
        force_rerun=s.force_rerun,
    )


def _parts(ws: Workspace, state: dict[str, Any], spec: PipelineComponentSpec | PipelineJobSpec) -> _Parts:
    if isinstance(spec, PipelineComponentSpec):
        name = spec.name or spec.display_name or "pipeline"
        return _Parts(spec.source, name, spec.inputs, spec.outputs, spec.jobs, {}, {}, PipelineSettings())
    settings = _job_settings(spec)
    comp = spec.component
    if comp is None:
        assert spec.jobs is not None  # the spec's validator: component or jobs
        name = spec.display_name or "pipeline"
        return _Parts(spec.source, name, None, None, spec.jobs, dict(spec.inputs), dict(spec.outputs), settings)
    if isinstance(comp, str):
        try:
            resolved = comp_res.resolve_component_ref(ws, comp, state)
        except BatchctlError as exc:
            raise _fail(spec.source, "component", exc.message, exc.hint) from None
        if not isinstance(resolved, PipelineComponentSpec):
            raise _fail(spec.source, "component", f"'{comp}' is a command component; a pipeline job takes a pipeline")
        comp = resolved
    name = spec.display_name or comp.name or "pipeline"
    return _Parts(
        spec.source, name, comp.inputs, comp.outputs, comp.jobs, dict(spec.inputs), dict(spec.outputs), settings
    )


def bind_pipeline(
    ws: Workspace,
    spec: PipelineComponentSpec | PipelineJobSpec,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any] | None = None,
    settings: PipelineSettings | None = None,
    require_inputs: bool = True,
) -> BoundPipeline:
    """Validate and resolve everything before any step runs (SpecError, exit 3, one line naming the file,
    the step and the field). `inputs`/`outputs` (an invocation's) are laid over a pipeline job's own;
    `require_inputs=False` checks the structure alone (a deployment or component create, before inputs)."""
    state = ws.store.read()
    parts = _parts(ws, state, spec)
    given_in = {**parts.inputs, **inputs}
    given_out = {**parts.outputs, **(outputs or {})}
    ports, parent_inputs = _parent_inputs(ws, state, parts.input_ports, given_in, parts.source, require_inputs)
    parent_outputs = _parent_outputs(parts.output_ports, given_out, parts.source)
    ctx = _Parent(parts.source, parent_inputs, ports, parent_outputs, parts.jobs, require_inputs)
    comps = {step: _step_component(ws, state, parts.source, step, node) for step, node in parts.jobs.items()}
    steps = {step: _bind_step(ws, state, step, ctx, comps) for step in sorted(parts.jobs)}
    _check_promotions(steps, parent_outputs, parts.source)
    return BoundPipeline(
        source=parts.source,
        name=parts.name,
        steps=topological(steps, parts.source),
        inputs=given_in,
        outputs=parent_outputs,
        settings=settings or parts.settings,
    )


def check_pipeline(ws: Workspace, spec: PipelineComponentSpec | PipelineJobSpec) -> BoundPipeline:
    """Everything bind_pipeline checks that does not need the caller's inputs (component create,
    deployment create)."""
    return bind_pipeline(ws, spec, {}, require_inputs=False)


def _check_promotions(steps: Mapping[str, BoundStep], outputs: Mapping[str, BoundOutput], source: str) -> None:
    """Each pipeline output is written by exactly one step."""
    writers: dict[str, list[str]] = {name: [] for name in outputs}
    for step in steps.values():
        for out_name, out in step.outputs.items():
            if out.promoted_to is not None:
                writers[out.promoted_to].append(f"{step.name}.outputs.{out_name}")
    for name, who in sorted(writers.items()):
        if len(who) > 1:
            raise _fail(source, f"outputs.{name}", f"written by more than one step ({', '.join(who)})")
        if not who:
            raise _fail(
                source,
                f"outputs.{name}",
                "no step writes it (bind a step's output: path: ${{parent.outputs." + name + "}})",
            )


def render_command(step: BoundStep, values: Mapping[str, str | None], outputs: Mapping[str, str]) -> str:
    """The step's command with `${{inputs.x}}` / `${{outputs.y}}` substituted and `$[[ ... ]]` blocks
    dropped when an input they name is unset (None). `values` holds every declared input (None when
    unset); a missing or unset one used outside a block is a SpecError naming the step."""
    full: dict[str, str | None] = {name: None for name in step.ports}
    full.update(values)
    try:
        return bindings.render(step.command, full, outputs)
    except bindings.BindingError as exc:
        raise SpecError(f"step {step.name}: {exc}") from None


def input_text(value: BoundInput) -> str | None:
    """How a literal input reaches the command line (None for any other kind: the runner gives paths)."""
    if value.kind == "literal":
        return bindings.literal_text(value.value)
    return None


def pipeline_from_deployment(ws: Workspace, deployment: dict[str, Any]) -> PipelineComponentSpec:
    """The pipeline component of a `type: pipeline` deployment: `component:` as a file path, an `azureml:`
    reference, or inline (a mapping, its paths relative to `deployment['base']` or already absolute).
    `job_definition:` (a pipeline job's name) is the job side's: 24b fills it."""
    from batchctl.specs.component import component_from_data, load_component

    source = str(deployment.get("source") or deployment.get("name") or "deployment")
    comp = deployment.get("component")
    if comp is None and deployment.get("job_definition") is not None:
        raise _fail(source, "job_definition", "a pipeline job's definition is read by the job side (not here)")
    spec: Any
    if isinstance(comp, dict):
        spec = component_from_data(
            {"type": "pipeline", **comp}, Path(deployment.get("base") or "."), f"{source}: component"
        )
    elif isinstance(comp, str) and comp.startswith("azureml:"):
        try:
            spec = comp_res.resolve_component_ref(ws, comp)
        except BatchctlError as exc:
            raise _fail(source, "component", exc.message, exc.hint) from None
    elif isinstance(comp, str):
        spec = load_component(comp)
    else:
        raise _fail(
            source, "component", "a pipeline deployment needs component: (a file, azureml: reference, or inline)"
        )
    if not isinstance(spec, PipelineComponentSpec):
        raise _fail(source, "component", "a pipeline deployment takes a pipeline component (type: pipeline)")
    return spec


def create_component(
    ws: Workspace,
    file: str | None,
    name: str | None = None,
    version: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Register a component from its YAML (`az ml component create -f X.yml [--name] [--version] [--set]`).
    Everything is validated before anything is written; the same content again is a no-op."""
    from batchctl.specs.component import load_component

    if file is None:
        raise SpecError("component create needs --file/-f (the component's YAML)")
    extra = [*overrides]
    if name is not None:
        extra.append(f"name={name}")
    if version is not None:
        extra.append(f"version={version}")
    spec = load_component(file, extra)
    if spec.name is None:
        raise SpecError(f"{spec.source}: name: field required (a registered component has a name)")
    comp_res.check_component_paths(spec)
    check_component(ws, spec)
    comp_res.pin_step_refs(ws, spec)
    return comp_res.register_component(ws, spec)


def check_component(ws: Workspace, spec: CommandComponentSpec | PipelineComponentSpec) -> None:
    """What `component create` checks before writing anything: a command component's environment can be
    had here; a pipeline binds (every step component, binding, type, environment and asset reference),
    its own inputs left to the invocation."""
    if isinstance(spec, CommandComponentSpec):
        resolve_step_environment(ws, ws.store.read(), spec.environment, "environment", spec.source)
    else:
        check_pipeline(ws, spec)
