"""`batchctl model`: registered models (copied into the workspace, versioned)."""

from __future__ import annotations

import typer

from batchctl.cli._assets import versioned_commands

app = typer.Typer(no_args_is_help=True, help="Registered models (copied into the workspace, versioned).")

versioned_commands(
    app,
    "model",
    "model",
    "Register a model (mlflow_model or custom_model); files are copied into the workspace.",
    "; refused while a deployment uses it.",
)
