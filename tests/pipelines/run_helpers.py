"""Bound pipelines built directly (the contract's dataclasses), with step scripts written by the test."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from batchctl.resources.pipelines import BoundInput, BoundOutput, BoundPipeline, BoundStep, PipelineSettings, Port

# A step script: appends its step name to MARKERS (the proof it ran), copies its input folder's files into
# its output with a line added, and fails when FAIL names it; WAIT makes it wait for a file to appear.
STEP_SCRIPT = """\
import os, sys, time, pathlib
name, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
with open(os.environ["MARKERS"], "a") as handle:
    handle.write(name + "\\n")
print(f"step {name} runs as job {os.environ['AZUREML_RUN_ID']}", flush=True)
if os.environ.get("STARTED"):  # a file per started step, for the tests of parallelism
    pathlib.Path(os.environ["STARTED"], name).touch()
wait = os.environ.get("WAIT_" + name)
while wait and not os.path.exists(wait):
    time.sleep(0.05)
if os.environ.get("FAIL") == name:
    print(f"{name} fails on purpose", flush=True)
    sys.exit(3)
for f in sorted(pathlib.Path(src).rglob("*")):
    if f.is_file():
        (pathlib.Path(out) / f.name).write_text(f.read_text() + name + "\\n")
"""


def write_code(root: Path) -> Path:
    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "step.py").write_text(STEP_SCRIPT)
    return code


def step(
    name: str,
    code: Path,
    data: BoundInput,
    *,
    promoted: str | None = None,
    deterministic: bool = True,
    env: dict[str, str] | None = None,
) -> BoundStep:
    definition = hashlib.sha256(f"{name}:{STEP_SCRIPT}".encode()).hexdigest()
    return BoundStep(
        name=name,
        component_name=f"comp_{name}",
        component_version="1",
        command=f"python step.py {name} ${{{{inputs.data}}}} ${{{{outputs.out}}}}",
        code=code,
        environment=None,
        environment_variables=env or {},
        is_deterministic=deterministic,
        inputs={"data": data},
        outputs={"out": BoundOutput(type="uri_folder", promoted_to=promoted)},
        ports={"data": Port(name="data", type="uri_folder")},
        depends_on=(),
        definition_sha256=definition,
    )


def folder_input(path: Path) -> BoundInput:
    return BoundInput(kind="path", type="uri_folder", uri=str(path))


def from_step(producer: str) -> BoundInput:
    return BoundInput(kind="step_output", type="uri_folder", step=producer, output="out")


def pipeline(
    steps: list[BoundStep], *, continue_on_failure: bool = False, outputs: dict[str, Any] | None = None
) -> BoundPipeline:
    return BoundPipeline(
        source="test",
        name="test_pipeline",
        steps=tuple(steps),
        inputs={},
        outputs=outputs or {},
        settings=PipelineSettings(continue_on_step_failure=continue_on_failure),
    )


def markers(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []
