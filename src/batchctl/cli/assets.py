"""model, data, datastore and compute: the same verbs for the registered assets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchctl.cli._common import SetOpt, command, confirm, workspace

model_app = typer.Typer(no_args_is_help=True, help="Registered models (copied into the workspace, versioned).")
data_app = typer.Typer(no_args_is_help=True, help="Registered data assets (uri_file / uri_folder references).")
datastore_app = typer.Typer(no_args_is_help=True, help="Datastores: local folders or Azure Blob containers.")
compute_app = typer.Typer(no_args_is_help=True, help="Computes: local (built in), ray, or Azure's amlcompute.")

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


def _versioned_commands(group: typer.Typer, kind: str, label: str, create_help: str, delete_note: str) -> None:
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

    @command(group, "delete", help=f"Delete a {label} version (or all versions){delete_note}")
    def delete(name: NameReq, version: VersionOpt = None, yes: YesOpt = False) -> object:
        ws = workspace()
        api_call("get")(ws, name, version)
        what = f"version {version} of {label} '{name}'" if version else f"every version of {label} '{name}'"
        confirm(f"Delete {what}?", yes)
        return api_call("delete")(ws, name, version)


_versioned_commands(
    model_app,
    "model",
    "model",
    "Register a model (mlflow_model or custom_model); files are copied into the workspace.",
    "; refused while a deployment uses it.",
)
_versioned_commands(
    data_app,
    "data",
    "data asset",
    "Register a data asset (uri_file or uri_folder).",
    ". The data itself is not touched.",
)


# ---- datastore


@command(datastore_app, "create")
def datastore_create(
    file: Annotated[str, typer.Option("--file", "-f", help="Datastore YAML.")],
    name: NameOpt = None,
    set_: SetOpt = None,
) -> object:
    """Register a datastore (type local or azure_blob). Credentials are read from the environment."""
    from batchctl import api
    from batchctl.cli._console import notice

    record = api.create_datastore(workspace(), file, name, set_ or [])
    if "notice" in record:
        notice(f"Notice: {record.pop('notice')}")
    return record


@command(datastore_app, "show")
def datastore_show(name: NameReq) -> object:
    """Show a datastore."""
    from batchctl import api

    return api.get_datastore(workspace(), name)


@command(datastore_app, "list", columns=("name", "type", "path", "account_name", "container_name"))
def datastore_list() -> object:
    """List datastores (workspaceblobstore is always there)."""
    from batchctl import api

    return api.list_datastores(workspace())


@command(datastore_app, "delete")
def datastore_delete(name: NameReq, yes: YesOpt = False) -> object:
    """Delete a datastore registration (the data is not touched)."""
    from batchctl import api

    ws = workspace()
    api.get_datastore(ws, name)
    confirm(f"Delete datastore '{name}'?", yes)
    return api.delete_datastore(ws, name)


# ---- compute


@command(compute_app, "create")
def compute_create(
    file: FileOpt = None,
    name: NameOpt = None,
    type_: TypeOpt = None,
    address: Annotated[str | None, typer.Option("--address", help="Ray: ray://host:10001, auto, or local.")] = None,
    max_workers: Annotated[int | None, typer.Option("--max-workers", help="Cap on worker processes.")] = None,
    min_instances: Annotated[int | None, typer.Option("--min-instances", help="amlcompute (ignored).")] = None,
    max_instances: Annotated[int | None, typer.Option("--max-instances", help="amlcompute (ignored).")] = None,
    size: Annotated[str | None, typer.Option("--size", help="amlcompute VM size (ignored).")] = None,
    set_: SetOpt = None,
) -> object:
    """Create a compute: --type local [--max-workers K], --type ray --address ADDR, or --type amlcompute."""
    from batchctl import api
    from batchctl.cli._console import notice

    record = api.create_compute(
        workspace(), file, name, type_, address, max_workers, min_instances, max_instances, size, set_ or []
    )
    if "notice" in record:
        notice(f"Notice: {record.pop('notice')}")
    return record


@command(compute_app, "show")
def compute_show(name: NameReq) -> object:
    """Show a compute."""
    from batchctl import api

    return api.get_compute(workspace(), name)


@command(compute_app, "list", columns=("name", "type", "address", "max_workers"))
def compute_list() -> object:
    """List computes (`local` is always there)."""
    from batchctl import api

    return api.list_computes(workspace())


@command(compute_app, "delete")
def compute_delete(name: NameReq, yes: YesOpt = False) -> object:
    """Delete a compute; refused while a deployment uses it."""
    from batchctl import api

    ws = workspace()
    api.get_compute(ws, name)
    confirm(f"Delete compute '{name}'?", yes)
    return api.delete_compute(ws, name)
