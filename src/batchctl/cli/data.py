"""`batchctl data`: registered data assets (uri_file / uri_folder references; nothing is copied)."""

from __future__ import annotations

import typer

from batchctl.cli._assets import versioned_commands

app = typer.Typer(no_args_is_help=True, help="Registered data assets (uri_file / uri_folder references).")

versioned_commands(
    app,
    "data",
    "data asset",
    "Register a data asset (uri_file or uri_folder).",
    ". The data itself is not touched.",
)
