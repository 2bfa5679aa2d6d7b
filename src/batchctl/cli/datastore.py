"""`batchctl datastore`: local folders or Azure Blob containers, by name."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli._assets import NameOpt, NameReq, YesOpt
from batchctl.cli._common import SetOpt, command, confirm, workspace

app = typer.Typer(no_args_is_help=True, help="Datastores: local folders or Azure Blob containers.")


@command(app, "create")
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


@command(app, "show")
def datastore_show(name: NameReq) -> object:
    """Show a datastore."""
    from batchctl import api

    return api.get_datastore(workspace(), name)


@command(app, "list", columns=("name", "type", "path", "account_name", "container_name"))
def datastore_list() -> object:
    """List datastores (workspaceblobstore is always there)."""
    from batchctl import api

    return api.list_datastores(workspace())


@command(app, "delete")
def datastore_delete(name: NameReq, yes: YesOpt = False) -> object:
    """Delete a datastore registration (the data is not touched)."""
    from batchctl import api

    ws = workspace()
    api.get_datastore(ws, name)
    confirm(f"Delete datastore '{name}'?", yes)
    return api.delete_datastore(ws, name)
