"""What the asset commands (model, data, datastore, compute) share: options, and the versioned-asset
verbs that models and data assets both have."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchctl.cli._common import ForceOpt, SetOpt, command, confirm, workspace

FileOpt = Annotated[str | None, typer.Option("--file", "-f", help="Spec YAML.")]
NameOpt = Annotated[str | None, typer.Option("--name", "-n", help="Name (overrides the file's).")]
NameReq = Annotated[str, typer.Option("--name", "-n", help="Name.")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Version (default: latest).")]
LabelOpt = Annotated[str | None, typer.Option("--label", "-l", help="Only `latest` is supported.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation.")]
TypeOpt = Annotated[str | None, typer.Option("--type", "-t", help="Asset type.")]
PathOpt = Annotated[str | None, typer.Option("--path", "-p", help="Local path (or URL for data).")]
DescOpt = Annotated[str | None, typer.Option("--description", "-d", help="Description.")]
VERSIONED_COLUMNS = ("name", "version", "type", "path", "created_at")


def _label(label: str | None, version: str | None) -> str | None:
    from batchctl.errors import SpecError

    if label not in (None, "latest"):
        raise SpecError(f"--label: only 'latest' is supported, not '{label}'")
    return version


def versioned_commands(group: typer.Typer, kind: str, label: str, create_help: str, delete_note: str) -> None:
    """create, show, list and delete for a versioned asset (models and data assets share them)."""

    def api_call(verb: str) -> Any:
        from batchctl import api

        plural = {"model": "models", "data": "data"}[kind]
        return getattr(
            api,
            {
                "create": f"create_{kind}",
                "get": f"get_{kind}",
                "list": f"list_{plural}",
                "delete": f"delete_{kind}",
            }[verb],
        )

    @command(group, "create", help=create_help)
    def create(
        file: FileOpt = None,
        name: NameOpt = None,
        version: VersionOpt = None,
        type_: TypeOpt = None,
        path: PathOpt = None,
        description: DescOpt = None,
        set_: SetOpt = None,
    ) -> object:
        return api_call("create")(workspace(), file, name, version, type_, path, description, set_ or [])

    @command(group, "show", help=f"Show a {label} version (latest by default).")
    def show(name: NameReq, version: VersionOpt = None, label_: LabelOpt = None) -> object:
        return api_call("get")(workspace(), name, _label(label_, version))

    @command(
        group,
        "list",
        columns=VERSIONED_COLUMNS,
        help=f"List {label}s (latest versions), or every version of --name.",
    )
    def list_(name: NameOpt = None) -> object:
        return api_call("list")(workspace(), name)

    def delete_versions(name: str, version: str | None, yes: bool, **force: bool) -> object:
        ws = workspace()
        api_call("get")(ws, name, version)
        what = f"version {version} of {label} '{name}'" if version else f"every version of {label} '{name}'"
        confirm(f"Delete {what}?", yes)
        return api_call("delete")(ws, name, version, **force)

    delete_help = f"Delete a {label} version (or all versions){delete_note}"
    if kind == "model":

        @command(group, "delete", help=delete_help)
        def delete_model(
            name: NameReq, version: VersionOpt = None, yes: YesOpt = False, force: ForceOpt = False
        ) -> object:
            return delete_versions(name, version, yes, force=force)

    else:

        @command(group, "delete", help=delete_help)
        def delete(name: NameReq, version: VersionOpt = None, yes: YesOpt = False) -> object:
            return delete_versions(name, version, yes)
