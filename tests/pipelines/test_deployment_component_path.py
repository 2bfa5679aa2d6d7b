"""A pipeline deployment's `component:` file is stored as issue 25 stores model and code paths: relative to the
workspace root when it is inside the workspace (a workspace moved or copied whole keeps working), as given
otherwise; a registry written before (an absolute path) is still read."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

HELLO = {
    "name": "hello_cmd",
    "type": "command",
    "inputs": {"greeting": {"type": "string"}},
    "outputs": {"out": {"type": "uri_folder"}},
    "command": "echo ${{inputs.greeting}} > ${{outputs.out}}/greeting.txt",
}
PIPELINE = {
    "name": "hello_pipe",
    "type": "pipeline",
    "inputs": {"greeting": {"type": "string", "default": "hello"}},
    "outputs": {"out": {"type": "uri_folder"}},
    "jobs": {
        "hello": {
            "type": "command",
            "component": "./hello.yml",
            "inputs": {"greeting": "${{parent.inputs.greeting}}"},
            "outputs": {"out": "${{parent.outputs.out}}"},
        }
    },
}


def _project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "hello.yml").write_text(yaml.safe_dump(HELLO))
    (folder / "pipeline.yml").write_text(yaml.safe_dump(PIPELINE))
    deployment = {"name": "hello-dep", "endpoint_name": "hello", "type": "pipeline", "component": "pipeline.yml"}
    (folder / "deployment.yml").write_text(yaml.safe_dump(deployment))
    return folder


def _stored(ws: Path) -> dict[str, Any]:
    from batchctl.resources._common import deployment_key

    return dict(json.loads((ws / "registry.json").read_text())["deployments"][deployment_key("hello", "hello-dep")])


def _invoke_greets(cli: Any, greeting: str) -> None:
    result = cli("endpoint", "invoke", "-n", "hello", "--set", f"inputs.greeting.value={greeting}", "--query",
                 "name", "-o", "tsv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    shown = json.loads(cli("job", "show", "-n", f"{result.stdout.strip()}-hello").stdout)
    assert shown["status"] == "Completed", shown
    assert (Path(shown["outputs"]["out"]["path"]) / "greeting.txt").read_text().strip() == greeting


def _deploy(cli: Any, project: Path) -> None:
    deployment = ("deployment", "create", "-f", str(project / "deployment.yml"), "--set-default")
    for args in (("endpoint", "create", "--name", "hello"), deployment):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)


def test_a_component_inside_the_workspace_is_stored_relative_and_survives_a_move(
    cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    ws = Path(os.environ["BATCHCTL_HOME"])
    project = _project(ws / "projects" / "hello")
    _deploy(cli, project)
    assert _stored(ws)["component"] == "projects/hello/pipeline.yml"
    shown = json.loads(cli("deployment", "show", "-n", "hello-dep", "-e", "hello").stdout)
    assert shown["component"] == str(project / "pipeline.yml")  # shown resolved, as model paths are
    moved = tmp_path / "moved-ws"
    shutil.copytree(ws, moved, symlinks=True)
    shutil.rmtree(ws)
    monkeypatch.setenv("BATCHCTL_HOME", str(moved))
    _invoke_greets(cli, "moved")


def test_a_component_outside_the_workspace_and_an_old_absolute_record(cli: Any, tmp_path: Path) -> None:
    ws = Path(os.environ["BATCHCTL_HOME"])
    project = _project(tmp_path / "elsewhere")
    _deploy(cli, project)
    assert _stored(ws)["component"] == str(project / "pipeline.yml")  # outside: as given
    _invoke_greets(cli, "outside")
    # a registry written before relative paths: an absolute path inside the workspace is read as it is
    inside = _project(ws / "old")
    from batchctl.resources._common import deployment_key

    registry = json.loads((ws / "registry.json").read_text())
    registry["deployments"][deployment_key("hello", "hello-dep")]["component"] = str(inside / "pipeline.yml")
    (ws / "registry.json").write_text(json.dumps(registry))
    (project / "pipeline.yml").unlink()
    _invoke_greets(cli, "old")
