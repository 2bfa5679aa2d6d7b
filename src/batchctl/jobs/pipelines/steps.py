"""One step of a pipeline job: its inputs made local, the reuse key, the working folder (a snapshot of the
component's code), the environment variables Azure gives a command job, and the process."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from batchctl import storage
from batchctl.errors import SpecError
from batchctl.resources.pipelines import BoundStep, render_command
from batchctl.specs.component import ASSET_TYPES
from batchctl.workspace import Workspace, content_hash

REUSE_DIR = "pipeline-reuse"
STD_LOG = "user/std_log.txt"


def child_name(parent: str, step: str) -> str:
    return f"{parent}-{step}"


def literal_text(value: Any) -> str:
    """A literal as Azure writes it into a command: booleans True/False, numbers as written."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def materialize(ws: Workspace, uri: str, kind: str, dest: Path) -> str:
    """A path input as a local path: a local path as it is; any other location (datastore path, URL, blob)
    downloaded under `dest` (Azure's `download` mode; a mount reads the same files)."""
    from batchctl.resources.locations import resolve_location

    if uri.startswith("azureml:") and not uri.startswith("azureml://"):
        raise SpecError(f"input {uri}: an asset reference must be resolved before the step runs")
    loc = resolve_location(ws, uri)
    if loc.is_local:
        if not os.path.exists(loc.url):
            raise SpecError(f"input {uri} does not exist")
        return str(Path(loc.url).absolute())
    names = storage.list_files(loc)
    if kind == "uri_file" or (len(names) == 1 and names[0] == os.path.basename(loc.url.rstrip("/"))):
        target = dest / os.path.basename(loc.url.rstrip("/"))
        storage.download(loc, str(target))
        return str(target)
    for rel in names:
        storage.download(loc.join(*rel.split("/")), str(dest / rel))
    dest.mkdir(parents=True, exist_ok=True)
    return str(dest)


def reuse_key(step: BoundStep, values: dict[str, str | None], literals: dict[str, Any]) -> str:
    """The step's definition (component, code, environment) and the content of every input it reads."""
    parts: dict[str, Any] = {"definition": step.definition_sha256, "outputs": sorted(step.outputs)}
    inputs: dict[str, Any] = {}
    for name, value in sorted(values.items()):
        if name in literals:
            inputs[name] = ["literal", literals[name]]
        elif value is None:
            inputs[name] = ["unset"]
        else:
            inputs[name] = ["content", content_hash(Path(value))]
    parts["inputs"] = inputs
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def reuse_file(ws: Workspace, key: str) -> Path:
    return ws.root / REUSE_DIR / f"{key}.json"


def find_reusable(ws: Workspace, key: str) -> dict[str, Any] | None:
    """An earlier run of the same step with the same inputs whose outputs are all still there."""
    try:
        entry = json.loads(reuse_file(ws, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    outputs = entry.get("outputs")
    if not isinstance(outputs, dict) or not all(os.path.isdir(p) for p in outputs.values()):
        return None
    return entry


def remember(ws: Workspace, key: str, job: str, outputs: dict[str, str]) -> None:
    from batchctl.fsutil import atomic_write_json

    (ws.root / REUSE_DIR).mkdir(parents=True, exist_ok=True)
    atomic_write_json(reuse_file(ws, key), {"job": job, "outputs": outputs})


def copy_outputs(entry: dict[str, Any], outputs: dict[str, str]) -> None:
    """The earlier outputs into this step's own output folders (hard links where the filesystem allows)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for name, dest in outputs.items():
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(entry["outputs"][name], dest, copy_function=link)


def working_folder(step: BoundStep, folder: Path) -> Path:
    """A snapshot of the component's code folder: the step may write beside its scripts, as on Azure."""
    wd = folder / "wd"
    shutil.rmtree(wd, ignore_errors=True)
    if step.code is not None:
        shutil.copytree(step.code, wd, symlinks=True)
    else:
        wd.mkdir(parents=True)
    return wd


@dataclass
class Launch:
    command: str
    cwd: Path
    env: dict[str, str]
    log: Path
    python: str = field(default=sys.executable)


def step_environment(
    step: BoundStep,
    values: dict[str, str | None],
    outputs: dict[str, str],
    job: str,
    parent: str,
    experiment: str | None,
    python: str,
) -> dict[str, str]:
    """os.environ, the component's variables, and what Azure sets in a command job that scripts read:
    AZUREML_RUN_ID (the step's job), AZURE_ML_INPUT_<name> / AZURE_ML_OUTPUT_<name> (the local path of each
    data or model input and of each output, the name as declared: what scripts run on Azure read; nothing
    shows Azure exporting literal inputs, so they are not), `python` on PATH being the step environment's
    interpreter."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in step.environment_variables.items()})
    env["AZUREML_RUN_ID"] = job
    env["AZUREML_ROOT_RUN_ID"] = parent
    env["AZUREML_PARENT_RUN_ID"] = parent
    if experiment:
        env["AZUREML_EXPERIMENT_NAME"] = experiment
    for name, value in values.items():
        bound = step.inputs.get(name)
        if value is not None and bound is not None and bound.type in ASSET_TYPES:
            env[f"AZURE_ML_INPUT_{name}"] = value
    for name, path in outputs.items():
        env[f"AZURE_ML_OUTPUT_{name}"] = path
    env["PATH"] = os.path.dirname(python) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _die_with_parent() -> None:
    # the step's shell dies with the runner (SIGKILL included): a resumed step never races its old process
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def start(launch: Launch) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    log = open(launch.log, "ab")  # noqa: SIM115 - the process writes it; closed when the step ends
    proc = subprocess.Popen(
        ["/bin/bash", "-c", launch.command],
        cwd=launch.cwd,
        env=launch.env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - the runner starts steps from one thread
    )
    return proc, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    """The step's whole process group (its shell and what the shell started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(5)


def kill_leftover(info: dict[str, Any] | None) -> None:
    """A step process group left by a runner that died (its shell outlived it): stopped before a resume."""
    from batchctl.processes import process_start_ticks

    if not info or not info.get("pid"):
        return
    pid = int(info["pid"])
    if info.get("start_ticks") is not None and process_start_ticks(pid) != info["start_ticks"]:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def render(step: BoundStep, values: dict[str, str | None], outputs: dict[str, str]) -> str:
    return render_command(step, values, outputs)
