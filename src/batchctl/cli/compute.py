"""`batchctl compute`: local (built in), ray, or Azure's amlcompute (run locally)."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl.cli._assets import FileOpt, NameOpt, NameReq, TypeOpt, YesOpt
from batchctl.cli._common import SetOpt, command, confirm, workspace

app = typer.Typer(no_args_is_help=True, help="Computes: local (built in), ray, or Azure's amlcompute.")


@command(app, "create")
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


@command(app, "show")
def compute_show(name: NameReq) -> object:
    """Show a compute."""
    from batchctl import api

    return api.get_compute(workspace(), name)


@command(app, "list", columns=("name", "type", "address", "max_workers"))
def compute_list() -> object:
    """List computes (`local` is always there)."""
    from batchctl import api

    return api.list_computes(workspace())


@command(app, "delete")
def compute_delete(name: NameReq, yes: YesOpt = False) -> object:
    """Delete a compute; refused while a deployment uses it."""
    from batchctl import api

    ws = workspace()
    api.get_compute(ws, name)
    confirm(f"Delete compute '{name}'?", yes)
    return api.delete_compute(ws, name)
