"""The batchctl command line. Heavy libraries are imported inside commands, never here."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl import __version__
from batchctl.cli import compute, data, datastore, deployment, endpoint, job, model
from batchctl.cli._common import set_global

_HELP = "Azure ML batch endpoints on any machine: same YAML, same scoring scripts, same CLI verbs."
GROUPS = {
    "endpoint": endpoint.app,
    "deployment": deployment.app,
    "job": job.app,
    "model": model.app,
    "data": data.app,
    "datastore": datastore.app,
    "compute": compute.app,
}


def build_app(groups: dict[str, typer.Typer]) -> typer.Typer:
    root = typer.Typer(
        name="batchctl",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        add_completion=True,
        help=_HELP,
    )
    root.callback()(_root)
    for name, group in groups.items():
        root.add_typer(group, name=name)
    return root


job.register_invoke(endpoint.app, ("--name", "-n"))
job.register_list_jobs(endpoint.app, "endpoint")
job.register_list_jobs(deployment.app, "deployment")


def _version(value: bool) -> None:
    if value:
        print(f"batchctl {__version__}")
        raise typer.Exit()


def _root(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", help="Workspace folder (default: $BATCHCTL_HOME or ~/.batchctl)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    set_global(workspace, debug)


app = build_app(GROUPS)


def _requested_group(argv: list[str]) -> str | None:
    """The group named on the command line, when it is the first word after the root options."""
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg == "--workspace":
            skip_next = True
        elif arg.startswith("-"):
            continue
        else:
            return arg if arg in GROUPS else None
    return None


def main() -> None:
    import os

    # pydantic (used by typer to coerce options) would scan every installed package's entry points
    # for plugins on first use; batchctl uses none, and the scan is a tenth of the start-up time
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
    import sys

    from batchctl.cli._complete import completion_words, normalize_instruction

    # converting every group to click costs a fifth of the start-up: build only the one asked for
    # (a shell completion request names it in the words typed so far)
    completing = normalize_instruction()
    group = _requested_group(completion_words() if completing else sys.argv[1:])
    target = build_app({group: GROUPS[group]}) if group else app
    target(prog_name="batchctl")
