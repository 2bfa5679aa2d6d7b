"""Pipeline jobs in the CLI: `endpoint invoke` on a `type: pipeline` deployment, `job create -f
pipeline-job.yml`, running them here (one line per step change on stderr) or detached, and what a person
sees of them (`job show`: the steps with their status, as a list in dependency order)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from batchctl.cli._common import workspace


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_here(ws: Any, record: dict[str, Any], no_wait: bool, final_outcome: Callable[[dict[str, Any]], Any]) -> Any:
    """Run a Queued pipeline job to its end here (Ctrl-C / SIGTERM cancel it), or hand it to a runner;
    `final_outcome` turns the final record into the command's result (cli/job.py's)."""
    from batchctl import api
    from batchctl.cli import _console

    if no_wait:
        return api.start_job_detached(ws, record["name"])
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        final = api.run_pipeline_job(ws, record["name"], on_line=_console.notice)
    except KeyboardInterrupt:
        final = api.cancel_job(ws, record["name"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    return final_outcome(final)


def refuse_model_options(given: dict[str, Any]) -> None:
    """A model deployment's options on a pipeline deployment: one line naming the first, and what to use."""
    from batchctl.errors import SpecError

    for flag, value in given.items():
        if value is not None:
            raise SpecError(
                f"{flag} is for model deployments; this is a pipeline deployment",
                "give its inputs with -f inputs.yml or --set inputs.<name>.path=<path> (outputs: "
                "--set outputs.<name>.path=<folder>)",
            )


def invoke(
    *,
    endpoint: str,
    deployment: str | None,
    file: str | None,
    sets: list[str],
    job_name: str | None,
    experiment_name: str | None,
    tags: list[str],
    no_wait: bool,
    dry_run: bool,
    force_rerun: bool,
    env: dict[str, Any],
    tracking_uri: str | None,
    final_outcome: Callable[[dict[str, Any]], Any],
) -> Any:
    from batchctl import api
    from batchctl.jobs.request import parse_tags

    ws = workspace()
    record = api.invoke_pipeline(
        ws,
        endpoint=endpoint,
        deployment=deployment,
        file=file,
        overrides=sets,
        job_name=job_name,
        experiment_name=experiment_name,
        tags=parse_tags(tags),
        force_rerun=force_rerun,
        dry_run=dry_run,
        tracking_uri=tracking_uri,
        **env,
    )
    return record if dry_run else run_here(ws, record, no_wait, final_outcome)


def create(
    *,
    file: str,
    name: str | None,
    sets: list[str],
    tags: list[str],
    no_wait: bool,
    dry_run: bool,
    force_rerun: bool,
    env: dict[str, Any],
    tracking_uri: str | None,
    final_outcome: Callable[[dict[str, Any]], Any],
) -> Any:
    from batchctl import api
    from batchctl.jobs.request import parse_tags

    ws = workspace()
    record = api.create_pipeline_job(
        ws,
        file=file,
        name=name,
        overrides=sets,
        tags=parse_tags(tags),
        force_rerun=force_rerun,
        dry_run=dry_run,
        tracking_uri=tracking_uri,
        **env,
    )
    return record if dry_run else run_here(ws, record, no_wait, final_outcome)


def is_pipeline_record(record: Any) -> bool:
    return isinstance(record, dict) and record.get("type") in ("pipeline", "command") and "pipeline" in record


def show_lines(record: dict[str, Any]) -> list[list[tuple[str, str | None]]]:
    """A pipeline job: its head, then one line per step (status, name, child job, upstream, reason); a
    step's child job: its pipeline and its command."""
    from batchctl.cli._jobview import STATUS_STYLE

    status = str(record["status"])
    kind = "pipeline job" if record["type"] == "pipeline" else "step job"
    lines: list[list[tuple[str, str | None]]] = [
        [(status, STATUS_STYLE.get(status)), (f"  {kind} {record['name']}", "bold")]
    ]
    info = record.get("pipeline") or {}
    if record["type"] != "pipeline":
        lines.append([(f"  pipeline   {record.get('parent_job_name')}", None)])
        lines.append([(f"  step       {info.get('step')} ({info.get('component')})", None)])
        if info.get("command"):
            lines.append([(f"  command    {info['command']}", None)])
        if info.get("reused_from"):
            lines.append([(f"  reused     the outputs of job {info['reused_from']}", None)])
        if record.get("log_dir"):
            lines.append([(f"  log        {record['log_dir']}/user/std_log.txt", None)])
        return lines
    lines.append([(f"  source     {info.get('source')}", None)])
    for row in info.get("steps", []):
        after = f"  after {', '.join(row['depends_on'])}" if row.get("depends_on") else ""
        extra = f"  (reused {row['reused_from']})" if row.get("reused_from") else ""
        reason = f"  {row['reason']}" if row.get("reason") else ""
        lines.append(
            [
                ("  ", None),
                (f"{row['status']:<10}", STATUS_STYLE.get(row["status"])),
                (f" {row['name']}  job {row['job']}{after}{extra}{reason}", None),
            ]
        )
    for name, output in (info.get("outputs") or {}).items():
        lines.append([(f"  output     {name}: {output.get('url')}", None)])
    error = (record.get("error") or {}).get("message")
    if error and status != "Completed":
        lines.append([(f"  error      {error}", "red")])
    return lines
