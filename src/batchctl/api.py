"""batchctl's Python API: the one facade that the CLI (and the server) call.

Every verb takes a Workspace and returns plain JSON-ready dicts (the records `show` prints). The work
is done below: `batchctl.resources` (one module per noun: CRUD over the registry and resolution) and
`batchctl.jobs` (submit, run, the job commands). This module holds no logic of its own.

Resources (create is create-or-overwrite; the same spec again is a no-op):

- endpoints: create_endpoint, get_endpoint, list_endpoints, update_endpoint, delete_endpoint
- deployments: create_deployment, get_deployment, list_deployments, update_deployment,
  set_default_deployment, delete_deployment
- models: create_model, get_model, list_models, delete_model
- data assets: create_data, get_data, list_data, delete_data
- datastores: create_datastore, get_datastore, list_datastores, delete_datastore
- computes: create_compute, get_compute, list_computes, delete_compute

Jobs: submit_job, run_job, start_job_detached, get_job, list_jobs, cancel_job, download_job,
rerun_job, read_job_log.

Job functions import the job machinery on first use, so that `batchctl endpoint list` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from batchctl.workspace import Workspace

# The resource verbs are imported on first use (PEP 562): `batchctl endpoint list` then loads the endpoints
# module, not the seven of them. Type checkers see the imports below.
_RESOURCE_VERBS = {
    "batchctl.resources.computes": ("create_compute", "delete_compute", "get_compute", "list_computes"),
    "batchctl.resources.data": ("create_data", "delete_data", "get_data", "list_data"),
    "batchctl.resources.datastores": ("create_datastore", "delete_datastore", "get_datastore", "list_datastores"),
    "batchctl.resources.deployments": (
        "create_deployment",
        "delete_deployment",
        "get_deployment",
        "list_deployments",
        "set_default_deployment",
        "update_deployment",
    ),
    "batchctl.resources.endpoints": (
        "create_endpoint",
        "delete_endpoint",
        "get_endpoint",
        "list_endpoints",
        "update_endpoint",
    ),
    "batchctl.resources.models": ("create_model", "delete_model", "get_model", "list_models"),
}
_MODULE_OF = {verb: module for module, verbs in _RESOURCE_VERBS.items() for verb in verbs}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from batchctl.jobs.model import JobProgress
    from batchctl.resources.computes import create_compute, delete_compute, get_compute, list_computes
    from batchctl.resources.data import create_data, delete_data, get_data, list_data
    from batchctl.resources.datastores import create_datastore, delete_datastore, get_datastore, list_datastores
    from batchctl.resources.deployments import (
        create_deployment,
        delete_deployment,
        get_deployment,
        list_deployments,
        set_default_deployment,
        update_deployment,
    )
    from batchctl.resources.endpoints import (
        create_endpoint,
        delete_endpoint,
        get_endpoint,
        list_endpoints,
        update_endpoint,
    )
    from batchctl.resources.models import create_model, delete_model, get_model, list_models

__all__ = [
    "Workspace",
    "cancel_job",
    "create_compute",
    "create_data",
    "create_datastore",
    "create_deployment",
    "create_endpoint",
    "create_model",
    "delete_compute",
    "delete_data",
    "delete_datastore",
    "delete_deployment",
    "delete_endpoint",
    "delete_model",
    "download_job",
    "get_compute",
    "get_data",
    "get_datastore",
    "get_deployment",
    "get_endpoint",
    "get_job",
    "get_model",
    "list_computes",
    "list_data",
    "list_datastores",
    "list_deployments",
    "list_endpoints",
    "list_jobs",
    "list_models",
    "read_job_log",
    "rerun_job",
    "run_job",
    "set_default_deployment",
    "start_job_detached",
    "submit_job",
    "update_deployment",
    "update_endpoint",
]


def submit_job(ws: Workspace, *, dry_run: bool = False, **options: Any) -> dict[str, Any]:
    """Check an invocation and write a Queued job; with dry_run, return the plan instead. Input and
    output are checked before anything is written.

    options (all optional, as `endpoint invoke` takes them): endpoint, deployment, input, input_type,
    output_path, job_name, experiment_name, mini_batch_size, instance_count, overrides (`key=value`
    strings, as `--set`), file (an invocation YAML). Precedence: flags > overrides > file > deployment."""
    from batchctl.jobs import submit

    return submit.queue(ws, submit.build_request(**options), dry_run)


def run_job(ws: Workspace, name: str, on_progress: Callable[[JobProgress], None] | None = None) -> dict[str, Any]:
    """Run a Queued job in this process until it ends; returns the final record. `on_progress` is called
    with a JobProgress for every event and once at the end."""
    from batchctl.jobs.runner import run_job as _run

    return _run(ws, name, on_progress).public()


def start_job_detached(ws: Workspace, name: str) -> dict[str, Any]:
    """Hand a Queued job to a detached runner process and return its record at once."""
    from batchctl.jobs import commands

    return commands.start_detached(ws, name)


def get_job(ws: Workspace, name: str) -> dict[str, Any]:
    """A job's record; a job whose runner died reads Failed."""
    from batchctl.jobs import commands

    return commands.get_job(ws, name)


def list_jobs(
    ws: Workspace,
    endpoint: str | None = None,
    deployment: str | None = None,
    status: str | None = None,
    *,
    max_results: int | None = None,
) -> list[dict[str, Any]]:
    """Jobs, newest first, filtered by endpoint, deployment and status (any case); at most `max_results`."""
    from batchctl.jobs import commands

    return commands.list_jobs(ws, endpoint, deployment, status, max_results=max_results)


def cancel_job(ws: Workspace, name: str) -> dict[str, Any]:
    """Ask a job to stop and wait until it has (its workers stopped, nothing published)."""
    from batchctl.jobs import commands

    return commands.cancel_job(ws, name)


def download_job(
    ws: Workspace, name: str, output_name: str = "score", download_path: str | None = None
) -> dict[str, Any]:
    """Copy a Completed job's results to DOWNLOAD_PATH/named-outputs/score/."""
    from batchctl.jobs import commands

    return commands.download_job(ws, name, output_name, download_path)


def rerun_job(
    ws: Workspace, name: str, output_path: str | None = None, job_name: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Queue a new job that scores only the items job `name` failed, with its settings."""
    from batchctl.jobs import commands

    return commands.rerun_failed(ws, name, output_path=output_path, job_name=job_name, dry_run=dry_run)


def read_job_log(ws: Workspace, name: str, position: int = 0) -> tuple[str, int]:
    """The job's driver log (logs/sys/master_role.txt) from `position` on, and the position after it."""
    from batchctl.jobs import commands

    return commands.read_log(ws, name, position)
