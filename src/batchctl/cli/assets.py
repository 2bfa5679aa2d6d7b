"""model, data, datastore and compute: the same verbs for the registered assets."""

from __future__ import annotations

from typing import Annotated

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


# ---- model


@command(model_app, "create")
def model_create(
    file: FileOpt = None,
    name: NameOpt = None,
    version: VersionOpt = None,
    type_: TypeOpt = None,
    path: PathOpt = None,
    description: DescOpt = None,
    set_: SetOpt = None,
) -> object:
    """Register a model (mlflow_model or custom_model); files are copied into the workspace."""
    from batchctl import api

    return api.create_model(workspace(), file, name, version, type_, path, description, set_ or [])


@command(model_app, "show")
def model_show(name: NameReq, version: VersionOpt = None, label: LabelOpt = None) -> object:
    """Show a model version (latest by default)."""
    from batchctl import api

    return api.get_model(workspace(), name, _label(label, version))


@command(model_app, "list", columns=VERSIONED_COLUMNS)
def model_list(name: NameOpt = None) -> object:
    """List models (latest versions), or every version of --name."""
    from batchctl import api

    return api.list_models(workspace(), name)


@command(model_app, "delete")
def model_delete(name: NameReq, version: VersionOpt = None, yes: YesOpt = False) -> object:
    """Delete a model version (or all versions); refused while a deployment uses it."""
    from batchctl import api

    ws = workspace()
    api.get_model(ws, name, version)
    what = f"version {version} of model '{name}'" if version else f"every version of model '{name}'"
    confirm(f"Delete {what}?", yes)
    return api.delete_model(ws, name, version)


# ---- data


@command(data_app, "create")
def data_create(
    file: FileOpt = None,
    name: NameOpt = None,
    version: VersionOpt = None,
    type_: TypeOpt = None,
    path: PathOpt = None,
    description: DescOpt = None,
    set_: SetOpt = None,
) -> object:
    """Register a data asset (uri_file or uri_folder)."""
    from batchctl import api

    return api.create_data(workspace(), file, name, version, type_, path, description, set_ or [])


@command(data_app, "show")
def data_show(name: NameReq, version: VersionOpt = None, label: LabelOpt = None) -> object:
    """Show a data asset version (latest by default)."""
    from batchctl import api

    return api.get_data(workspace(), name, _label(label, version))


@command(data_app, "list", columns=VERSIONED_COLUMNS)
def data_list(name: NameOpt = None) -> object:
    """List data assets (latest versions), or every version of --name."""
    from batchctl import api

    return api.list_data(workspace(), name)


@command(data_app, "delete")
def data_delete(name: NameReq, version: VersionOpt = None, yes: YesOpt = False) -> object:
    """Delete a data asset version (or all versions). The data itself is not touched."""
    from batchctl import api

    ws = workspace()
    api.get_data(ws, name, version)
    confirm(f"Delete data asset '{name}'{' version ' + version if version else ''}?", yes)
    return api.delete_data(ws, name, version)


# ---- datastore


@command(datastore_app, "create")
def datastore_create(file: Annotated[str, typer.Option("--file", "-f", help="Datastore YAML.")],
                     name: NameOpt = None, set_: SetOpt = None) -> object:
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
