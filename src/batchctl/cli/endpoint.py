from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli import _complete as complete
from batchctl.cli._common import ForceOpt, SetOpt, command, confirm, workspace
from batchctl.cli._web import WebOpt, endpoint_page, open_page

app = typer.Typer(no_args_is_help=True, help="Batch endpoints: a name that routes jobs to deployments.")

FileOpt = Annotated[str | None, typer.Option("--file", "-f", help="Endpoint YAML (batchEndpoint.schema.json).")]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", "-n", help="Endpoint name (overrides the file's).", autocompletion=complete.endpoints),
]
NameReq = Annotated[str, typer.Option("--name", "-n", help="Endpoint name.", autocompletion=complete.endpoints)]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Accepted for az ml compatibility (operations are local).")]
ENDPOINT_COLUMNS = ("name", "defaults.deployment_name", "provisioning_state", "description", "updated_at")


@command(app, "create")
def create(
    file: FileOpt = None,
    name: NameOpt = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a field: --set a.b=value.")
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    no_wait: NoWaitOpt = False,
) -> object:
    """Create an endpoint, or overwrite it if it exists (as `az ml batch-endpoint create`)."""
    from batchctl import api

    return api.create_endpoint(workspace(), file=file, name=name, overrides=set_ or [], description=description)


@command(app, "update")
def update(
    name: NameOpt = None,
    file: FileOpt = None,
    set_: SetOpt = None,
    defaults: Annotated[list[str] | None, typer.Option("--defaults", help="deployment_name=NAME, as in az ml.")] = None,
    no_wait: NoWaitOpt = False,
) -> object:
    """Update description, tags, properties or defaults (e.g. --set defaults.deployment_name=D)."""
    from batchctl import api

    overrides = list(set_ or []) + [f"defaults.{d}" for d in defaults or []]
    return api.update_endpoint(workspace(), name, overrides, file=file)


@command(app, "show")
def show(name: NameReq, web: WebOpt = False) -> object:
    """Show an endpoint."""
    from batchctl import api

    record = api.get_endpoint(workspace(), name)
    if web:
        open_page(workspace(), endpoint_page(record["name"]))
    return record


@command(app, "list", columns=ENDPOINT_COLUMNS)
def list_() -> object:
    """List endpoints."""
    from batchctl import api

    return api.list_endpoints(workspace())


@command(app, "delete")
def delete(
    name: NameReq,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation.")] = False,
    force: ForceOpt = False,
    no_wait: NoWaitOpt = False,
) -> object:
    """Delete an endpoint and all its deployments (its jobs stay listed); refused while a job of it runs."""
    from batchctl import api
    from batchctl.errors import NotFoundError

    ws = workspace()
    try:
        record = api.get_endpoint(ws, name)
    except NotFoundError:  # nothing to confirm: delete says it is missing (and does not hint to create it)
        record = None
    if record is not None:
        confirm(f"Delete endpoint '{record['name']}' and all its deployments?", yes)
    result = api.delete_endpoint(ws, name, force=force)
    result.pop("record", None)
    return result
