"""The bound pipeline a job runs, frozen at submit into `jobs/<name>/pipeline.json`: the runner (and
`job resume`) run exactly what was validated, whatever the registry or the files hold later."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from batchctl.fsutil import atomic_write_json
from batchctl.resources.pipelines import (
    BoundInput,
    BoundOutput,
    BoundPipeline,
    BoundStep,
    PipelineSettings,
    Port,
)

FILE = "pipeline.json"


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dump(bound: BoundPipeline) -> dict[str, Any]:
    return {"format": 1, **_plain(dataclasses.asdict(bound))}


def _step(data: dict[str, Any]) -> BoundStep:
    return BoundStep(
        name=data["name"],
        component_name=data["component_name"],
        component_version=str(data["component_version"]),
        command=data["command"],
        code=Path(data["code"]) if data.get("code") else None,
        environment=data.get("environment"),
        environment_variables=dict(data.get("environment_variables") or {}),
        is_deterministic=bool(data.get("is_deterministic", True)),
        inputs={k: BoundInput(**v) for k, v in data["inputs"].items()},
        outputs={k: BoundOutput(**v) for k, v in data["outputs"].items()},
        ports={k: Port(**v) for k, v in data.get("ports", {}).items()},
        depends_on=tuple(data.get("depends_on") or ()),
        definition_sha256=data["definition_sha256"],
    )


def load(data: dict[str, Any]) -> BoundPipeline:
    return BoundPipeline(
        source=data["source"],
        name=data["name"],
        steps=tuple(_step(s) for s in data["steps"]),
        inputs=dict(data.get("inputs") or {}),
        outputs={k: BoundOutput(**v) for k, v in data.get("outputs", {}).items()},
        settings=PipelineSettings(**data.get("settings", {})),
    )


def write(folder: Path, bound: BoundPipeline) -> None:
    atomic_write_json(folder / FILE, dump(bound))


def read(folder: Path) -> BoundPipeline:
    return load(json.loads((folder / FILE).read_text(encoding="utf-8")))
