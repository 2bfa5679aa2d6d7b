"""`batchctl component`: registered components (Azure's command and pipeline components), versioned like
models, their code folders snapshotted into the workspace."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli._assets import FileOpt, LabelOpt, NameOpt, NameReq, VersionOpt, YesOpt
from batchctl.cli._common import SetOpt, command, confirm, workspace

app = typer.Typer(
    no_args_is_help=True,
    help="Registered components (command and pipeline components, versioned; code copied into the workspace).",
)
COLUMNS = ("name", "version", "type", "display_name", "created_at")
CreateVersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Version (overrides the file's).")]


def _label(label: str | None, version: str | None) -> str | None:
    from batchctl.errors import SpecError

    if label not in (None, "latest"):
        raise SpecError(f"--label: only 'latest' is supported, not '{label}'")
    return version


@command(app, "create")
def create(file: FileOpt = None, name: NameOpt = None, version: CreateVersionOpt = None, set_: SetOpt = None) -> object:
    """Register a component from its YAML (a command or pipeline component); the same content again is a
    no-op, a version is immutable."""
    from batchctl import api

    return api.create_component(workspace(), file, name, version, set_ or [])


@command(app, "show")
def show(name: NameReq, version: VersionOpt = None, label_: LabelOpt = None) -> object:
    """Show a component version (latest by default), with its spec."""
    from batchctl import api

    return api.get_component(workspace(), name, _label(label_, version))


@command(app, "list", columns=COLUMNS)
def list_(name: NameOpt = None) -> object:
    """List components (latest versions), or every version of --name."""
    from batchctl import api

    return api.list_components(workspace(), name)


@command(app, "delete")
def delete(name: NameReq, version: VersionOpt = None, yes: YesOpt = False) -> object:
    """Delete a component version (or all versions); refused while a pipeline component or a deployment
    names it."""
    from batchctl import api

    ws = workspace()
    api.get_component(ws, name, version)
    what = f"version {version} of component '{name}'" if version else f"every version of component '{name}'"
    confirm(f"Delete {what}?", yes)
    return api.delete_component(ws, name, version)
