"""Names that could escape the workspace, or are simply invalid, are rejected before any file is touched,
by every command that takes a name (SPEC section 1; issue 7, "Bad input")."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from testkit import Cli

from .hardening_helpers import Workbench, tree, write_inputs, write_yaml

BAD = {
    "dotdot-slash": "../x",
    "dotdot": "..",
    "slash": "a/b",
    "backslash": "a\\b",
    "empty": "",
    "300-chars": "x" * 300,
    "non-ascii": "modèle",
    "leading-hyphen": "-x",
    "nul": "a\x00b",
    "percent-dotdot": "%2e%2e",
    "absolute": "/etc",
}
# endpoint names also refuse a trailing hyphen (and more than 32 characters); asset names follow Azure's
# service rule ^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$, where a trailing hyphen is valid (and harmless in a path)
BAD_ENDPOINT = {**BAD, "trailing-hyphen": "x-", "33-chars": "e" * 33}


def _commands(name: str, ctx: dict[str, str]) -> list[tuple[str, ...]]:
    """Every command that takes an endpoint name."""
    return [
        ("endpoint", "create", "-n", name),
        ("endpoint", "show", "-n", name),
        ("endpoint", "update", "-n", name, "--set", "description=x"),
        ("endpoint", "delete", "-n", name, "--yes"),
        ("endpoint", "list-jobs", "-n", name),
        ("endpoint", "invoke", "-n", name, "--input", ctx["data"]),
        ("job", "invoke", "-e", name, "--input", ctx["data"]),
        ("deployment", "create", "-f", ctx["deployment_spec"], "-e", name),
        ("deployment", "show", "-n", "blue", "-e", name),
        ("deployment", "list", "-e", name),
        ("deployment", "update", "-n", "blue", "-e", name, "--set", "description=x"),
        ("deployment", "delete", "-n", "blue", "-e", name, "--yes"),
        ("deployment", "list-jobs", "-n", "blue", "-e", name),
        ("deployment", "set-default", "-e", name, "-n", "blue"),
        ("job", "list", "--endpoint", name),
    ]


def _asset_commands(name: str, ctx: dict[str, str]) -> list[tuple[str, ...]]:
    """Every command that takes a deployment, model, data, datastore, compute or job name."""
    return [
        ("deployment", "create", "-f", ctx["deployment_spec"], "-n", name),
        ("deployment", "show", "-n", name, "-e", "hard"),
        ("deployment", "update", "-n", name, "-e", "hard", "--set", "description=x"),
        ("deployment", "delete", "-n", name, "-e", "hard", "--yes"),
        ("deployment", "list-jobs", "-n", name, "-e", "hard"),
        ("deployment", "set-default", "-e", "hard", "-n", name),
        ("endpoint", "invoke", "-n", "hard", "-d", name, "--input", ctx["data"]),
        ("model", "create", "--name", name, "--type", "custom_model", "--path", ctx["model"]),
        ("model", "show", "-n", name),
        ("model", "list", "-n", name),
        ("model", "delete", "-n", name, "--yes"),
        ("data", "create", "--name", name, "--type", "uri_folder", "--path", ctx["data"]),
        ("data", "show", "-n", name),
        ("data", "list", "-n", name),
        ("data", "delete", "-n", name, "--yes"),
        ("datastore", "create", "-f", ctx["datastore_spec"], "-n", name),
        ("datastore", "show", "-n", name),
        ("datastore", "delete", "-n", name, "--yes"),
        ("compute", "create", "-n", name, "--type", "local"),
        ("compute", "show", "-n", name),
        ("compute", "delete", "-n", name, "--yes"),
        ("endpoint", "invoke", "-n", "hard", "--input", ctx["data"], "--job-name", name),
        ("endpoint", "invoke", "-n", "hard", "--input", ctx["data"], "--experiment-name", name),
        ("endpoint", "invoke", "-n", "hard", "--input", f"azureml:{name}@latest"),
        ("endpoint", "invoke", "-n", "hard", "--input", f"azureml:{name}:1"),
        ("job", "show", "-n", name),
        ("job", "stream", "-n", name),
        ("job", "cancel", "-n", name),
        ("job", "download", "-n", name),
        ("job", "rerun", "-n", name, "--failed-only"),
        ("job", "rerun", "-n", "done", "--failed-only", "--job-name", name),
        ("job", "list", "--deployment", name),
    ]


# the same names inside spec files: (command, spec kind, the field that holds the name)
SPEC_COMMANDS = [
    (("endpoint", "create"), "endpoint", "name"),
    (("deployment", "create"), "deployment", "name"),
    (("deployment", "create"), "deployment", "endpoint_name"),
    (("model", "create"), "model", "name"),
    (("data", "create"), "data", "name"),
    (("datastore", "create"), "datastore", "name"),
    (("compute", "create"), "compute", "name"),
    (("job", "create"), "job", "name"),
    (("job", "create"), "job", "endpoint"),
    (("job", "create"), "job", "deployment"),
]


def _build_everything(root: Path) -> dict[str, str]:
    """An endpoint, a deployment, a finished job, a registered model, data asset, datastore, compute."""
    bench = Workbench(Cli(), root)
    spec = bench.deploy("hard", "blue")
    data = write_inputs(root / "in", {"a.txt": "ok"})
    bench.ok("endpoint", "invoke", "-n", "hard", "--input", str(data), "--job-name", "done")
    bench.ok("data", "create", "--name", "things", "--type", "uri_folder", "--path", str(data))
    store_dir = root / "store"
    store_dir.mkdir()
    datastore_spec = write_yaml(root / "datastore.yml", {"name": "mystore", "type": "local", "path": str(store_dir)})
    bench.ok("datastore", "create", "-f", str(datastore_spec))
    bench.ok("compute", "create", "-n", "cpu", "--type", "local")
    return {
        "data": str(data),
        "deployment_spec": str(spec),
        "model": str(root / "weights"),
        "datastore_spec": str(datastore_spec),
    }


@pytest.fixture(scope="module")
def everything_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The workspace with everything, built once per module (it runs a job): each test gets a copy."""
    from batchctl.cli import _common

    root = tmp_path_factory.mktemp("everything")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BATCHCTL_HOME", str(root / "ws"))
        mp.chdir(root)
        mp.setitem(_common._STATE, "workspace", None)
        return root, _build_everything(root)


@pytest.fixture
def workspace_with_everything(everything_template, tmp_path: Path) -> dict[str, str]:
    """A copy of the template in this test's folder (its workspace is BATCHCTL_HOME), every recorded path
    rewritten to the copy, so that the snapshot of tmp_path covers the workspace and every file it names."""
    root, ctx = everything_template
    shutil.copytree(root, tmp_path, symlinks=True, dirs_exist_ok=True)
    old, new = str(root).encode(), str(tmp_path).encode()
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and old in (data := path.read_bytes()):
            path.write_bytes(data.replace(old, new))
    assert Path(os.environ["BATCHCTL_HOME"]) == tmp_path / "ws"
    assert not any(old in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink())
    return {key: value.replace(str(root), str(tmp_path)) for key, value in ctx.items()}


def _check_rejected(cli, tmp_path: Path, args: tuple[str, ...], before: dict[str, str]) -> None:
    result = cli(*args)
    shown = tuple(a.encode("unicode_escape").decode() for a in args)
    assert result.exit_code == 3, (shown, result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("Error: ") and len(lines) <= 2, (shown, result.stderr)
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == before, shown  # nothing created, changed or removed, in or out of the workspace


@pytest.mark.slow
@pytest.mark.parametrize("label", list(BAD_ENDPOINT))
def test_bad_endpoint_names_are_rejected_before_any_file_is_touched(cli, tmp_path, workspace_with_everything, label):
    before = tree(tmp_path)
    for args in _commands(BAD_ENDPOINT[label], workspace_with_everything):
        _check_rejected(cli, tmp_path, args, before)


@pytest.mark.slow
@pytest.mark.parametrize("label", list(BAD))
def test_bad_asset_and_job_names_are_rejected_before_any_file_is_touched(
    cli, tmp_path, workspace_with_everything, label
):
    before = tree(tmp_path)
    for args in _asset_commands(BAD[label], workspace_with_everything):
        _check_rejected(cli, tmp_path, args, before)


@pytest.mark.slow
@pytest.mark.parametrize("label", list(BAD))
def test_bad_names_in_spec_files_are_rejected_before_any_file_is_touched(
    cli, tmp_path, workspace_with_everything, label
):
    ctx = workspace_with_everything
    import yaml

    bases = {
        "endpoint": {"name": "ep2"},
        "deployment": yaml.safe_load(Path(ctx["deployment_spec"]).read_text()),
        "model": {"name": "m", "type": "custom_model", "path": ctx["model"]},
        "data": {"name": "d", "type": "uri_folder", "path": ctx["data"]},
        "datastore": {"name": "s", "type": "local", "path": ctx["data"]},
        "compute": {"name": "c", "type": "local"},
        "job": {"endpoint": "hard", "inputs": {"x": {"type": "uri_folder", "path": ctx["data"]}}},
    }
    specs = tmp_path / "bad-specs"
    specs.mkdir()
    for i, (_command, kind, field) in enumerate(SPEC_COMMANDS):
        spec = specs / f"{i}.yml"
        spec.write_text(yaml.safe_dump({**bases[kind], field: BAD[label]}, allow_unicode=True))
    before = tree(tmp_path)
    for i, (command, _kind, _field) in enumerate(SPEC_COMMANDS):
        _check_rejected(cli, tmp_path, (*command, "-f", str(specs / f"{i}.yml")), before)


def test_no_name_reaches_a_path_outside_the_workspace(tmp_path):
    """The backstop behind the name rules: Workspace.inside refuses any path that leaves the workspace."""
    from batchctl.errors import SpecError
    from batchctl.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    for escape in (ws.jobs_dir / ".." / ".." / "x", ws.models_dir / "../../etc", Path("/etc/passwd")):
        with pytest.raises(SpecError):
            ws.inside(escape)
    assert not os.path.exists(tmp_path / "x")
