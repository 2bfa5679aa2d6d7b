"""The batchctl command line. Heavy libraries are imported inside commands, never here."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl import __version__
from batchctl.cli import assets, deployment, endpoint, job
from batchctl.cli._common import set_global

app = typer.Typer(
    name="batchctl",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    help="Azure ML batch endpoints on any machine: same YAML, same scoring scripts, same CLI verbs.",
)
app.add_typer(endpoint.app, name="endpoint")
app.add_typer(deployment.app, name="deployment")
app.add_typer(job.app, name="job")
app.add_typer(assets.model_app, name="model")
app.add_typer(assets.data_app, name="data")
app.add_typer(assets.datastore_app, name="datastore")
app.add_typer(assets.compute_app, name="compute")


job.register_invoke(endpoint.app, ("--name", "-n"))
job.register_list_jobs(endpoint.app, "endpoint")
job.register_list_jobs(deployment.app, "deployment")


def _version(value: bool) -> None:
    if value:
        print(f"batchctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Workspace folder (default: $BATCHCTL_HOME or ~/.batchctl).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    set_global(workspace, debug)


def main() -> None:
    app(prog_name="batchctl")
