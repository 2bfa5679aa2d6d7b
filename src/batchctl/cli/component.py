"""`batchctl component`: Azure's components serve pipeline deployments, which batchctl does not support yet.
The command exists so that `az ml component create` gets that answer, not "No such command"."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from batchctl.cli._common import command

app = typer.Typer(
    no_args_is_help=True,
    help="Components serve pipeline deployments, which are not supported yet (model deployments are).",
)

# `az ml component create` takes -f, --name, --version, --set ...: every option is accepted, then refused
ANY_OPTIONS: dict[str, Any] = {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}


@command(app, "create", **ANY_OPTIONS)
def create(
    ctx: typer.Context,
    file: Annotated[str | None, typer.Option("--file", "-f", help="Component YAML (Azure's).")] = None,
) -> object:
    """Refused: components serve pipeline deployments, which batchctl does not support yet."""
    from batchctl.errors import SpecError

    raise SpecError(
        "components are not supported: they serve pipeline deployments (`type: pipeline`), which batchctl "
        "does not support yet",
        "deploy a model instead: a `type: model` deployment (an MLflow model, or a model with a scoring script)",
    )
