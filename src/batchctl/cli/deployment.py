from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli import _complete as complete
from batchctl.cli._common import ForceOpt, SetOpt, command, confirm, workspace
from batchctl.cli._web import WebOpt, deployment_page, open_page

app = typer.Typer(no_args_is_help=True, help="Batch deployments: a model and how to run it, behind an endpoint.")

FileOpt = Annotated[str | None, typer.Option("--file", "-f", help="Deployment YAML.")]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", "-n", help="Deployment name (overrides the file's).", autocompletion=complete.deployments),
]
NameReq = Annotated[str, typer.Option("--name", "-n", help="Deployment name.", autocompletion=complete.deployments)]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-name", "-e", help="Endpoint name (overrides the file's).", autocompletion=complete.endpoints
    ),
]
EndpointReq = Annotated[
    str, typer.Option("--endpoint-name", "-e", help="Endpoint name.", autocompletion=complete.endpoints)
]
SkipOpt = Annotated[
    bool, typer.Option("--skip-script-validation", help="Do not parse the scoring script at create time.")
]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Accepted for az ml compatibility.")]
DEPLOYMENT_COLUMNS = (
    "name",
    "endpoint_name",
    "model",
    "compute",
    "settings.mini_batch_size",
    "provisioning_state",
)


@command(app, "create")
def create(
    file: Annotated[str, typer.Option("--file", "-f", help="Deployment YAML.")],
    name: NameOpt = None,
    endpoint_name: EndpointOpt = None,
    set_default: Annotated[bool, typer.Option("--set-default", help="Make it the endpoint's default.")] = False,
    set_: SetOpt = None,
    skip_script_validation: SkipOpt = False,
    no_wait: NoWaitOpt = False,
) -> object:
    """Create a deployment, or overwrite it if it exists. An endpoint's first deployment becomes its default."""
    from batchctl import api

    return api.create_deployment(
        workspace(),
        file,
        name=name,
        endpoint_name=endpoint_name,
        overrides=set_ or [],
        set_default=set_default,
        skip_script_validation=skip_script_validation,
    )


@command(app, "update")
def update(
    name: NameOpt = None,
    endpoint_name: EndpointOpt = None,
    file: FileOpt = None,
    set_: SetOpt = None,
    skip_script_validation: SkipOpt = False,
    no_wait: NoWaitOpt = False,
) -> object:
    """Update a deployment from a file and/or --set overrides."""
    from batchctl import api

    return api.update_deployment(
        workspace(), name, endpoint_name, set_ or [], file=file, skip_script_validation=skip_script_validation
    )


@command(app, "show")
def show(name: NameReq, endpoint_name: EndpointReq, web: WebOpt = False) -> object:
    """Show a deployment."""
    from batchctl import api

    record = api.get_deployment(workspace(), name, endpoint_name)
    if web:
        open_page(workspace(), deployment_page(record["endpoint_name"], record["name"]))
    return record


@command(app, "list", columns=DEPLOYMENT_COLUMNS)
def list_(endpoint_name: EndpointReq) -> object:
    """List the deployments of an endpoint."""
    from batchctl import api

    return api.list_deployments(workspace(), endpoint_name)


@command(app, "delete")
def delete(
    name: NameReq,
    endpoint_name: EndpointReq,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not prompt for confirmation.")] = False,
    force: ForceOpt = False,
    no_wait: NoWaitOpt = False,
) -> object:
    """Delete a deployment (not the default while others exist, nor while a job of it runs)."""
    from batchctl import api
    from batchctl.errors import NotFoundError

    ws = workspace()
    try:
        api.get_deployment(ws, name, endpoint_name)
    except NotFoundError:  # nothing to confirm: delete says it is missing (and does not hint to create it)
        pass
    else:
        confirm(f"Delete deployment '{name}' of endpoint '{endpoint_name.lower()}'?", yes)
    return api.delete_deployment(ws, name, endpoint_name, force=force)


@command(app, "set-default")
def set_default(endpoint_name: EndpointReq, name: NameReq) -> object:
    """Make a deployment the endpoint's default (same as endpoint update --set defaults.deployment_name=D)."""
    from batchctl import api

    return api.set_default_deployment(workspace(), endpoint_name, name)
