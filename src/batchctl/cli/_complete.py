"""Shell completion: names of endpoints, deployments and jobs, read straight from the workspace.

A completion runs on every TAB, so it stays cheap: registry.json is read with `json` (no spec model, no
registry lock, no heavy library) and jobs are the folder names under jobs/. Any problem (no workspace, a
corrupt registry) completes nothing rather than printing into the user's shell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

COMPLETE_VAR = "_BATCHCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def normalize_instruction(environ: Any = os.environ) -> str | None:
    """Accept click's order (`bash_source`, `zsh_complete`) as well as typer's (`source_bash`): typer reads
    only the latter, and says "Shell source not supported" for the former. Returns the instruction."""
    value = environ.get(COMPLETE_VAR)
    if not value:
        return None
    shell, sep, action = value.partition("_")
    if sep and shell in SHELLS and action in ("source", "complete"):
        value = f"{action}_{shell}"
        environ[COMPLETE_VAR] = value
    return value


def completion_words(environ: Any = os.environ) -> list[str]:
    """The words typed so far (after the program name), as the shell scripts hand them over."""
    raw = environ.get("COMP_WORDS") or environ.get("_TYPER_COMPLETE_ARGS") or ""
    return raw.split()[1:]


def _workspace(ctx: typer.Context) -> Path:
    from batchctl.settings import workspace_path

    node: Any = ctx
    while node is not None:
        value = (node.params or {}).get("workspace")
        if value:
            return workspace_path(value)
        node = node.parent
    return workspace_path(None)


def _registry(ctx: typer.Context) -> dict[str, Any]:
    try:
        data = json.loads((_workspace(ctx) / "registry.json").read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _section(state: dict[str, Any], name: str) -> dict[str, Any]:
    value = state.get(name)
    return value if isinstance(value, dict) else {}


def _param(ctx: typer.Context, *names: str) -> str | None:
    for name in names:
        value = (ctx.params or {}).get(name)
        if isinstance(value, str) and value:
            return value.lower()
    return None


def endpoints(ctx: typer.Context, incomplete: str) -> list[str]:
    return sorted(n for n in _section(_registry(ctx), "endpoints") if n.startswith(incomplete.lower()))


def deployments(ctx: typer.Context, incomplete: str) -> list[str]:
    """Deployments of the endpoint already on the command line (-e / --endpoint-name, or -n of `endpoint
    invoke`), else of every endpoint."""
    endpoint = _param(ctx, "endpoint_name", "endpoint")
    names = set()
    for key in _section(_registry(ctx), "deployments"):
        owner, _, name = key.partition("/")
        if (endpoint is None or owner == endpoint) and name.startswith(incomplete):
            names.add(name)
    return sorted(names)


def jobs(ctx: typer.Context, incomplete: str) -> list[str]:
    try:
        entries = list(os.scandir(_workspace(ctx) / "jobs"))
    except OSError:
        return []
    return sorted(
        e.name for e in entries if e.is_dir() and not e.name.startswith(".") and e.name.startswith(incomplete)
    )


# the job states (jobs/model.JobState), spelled here so a completion never imports the job model
JOB_STATES = ("Queued", "Running", "Completed", "Failed", "Canceled", "Skipped")


def job_states(ctx: typer.Context, incomplete: str) -> list[str]:
    return [s for s in JOB_STATES if s.lower().startswith(incomplete.lower())]
