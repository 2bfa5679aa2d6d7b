"""Jobs: `endpoint invoke` / `job invoke`, and job create|list|show|stream|cancel|download|rerun."""

import signal
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core

from batchctl.cli import _complete as complete
from batchctl.cli._common import AlreadySummarized, SetOpt, command, for_a_person, workspace
from batchctl.cli._web import WebOpt, job_page, open_page

if TYPE_CHECKING:
    from batchctl.errors import BatchctlError
    from batchctl.jobs.request import JobRequest

app = typer.Typer(no_args_is_help=True, help="Batch scoring jobs.")

# `job list -o table`: one flat row per job (JSON and YAML print the records whole)
JOB_TABLE_COLUMNS = (
    "name",
    "status",
    "endpoint",
    "deployment",
    "created",
    "duration",
    "items_ok",
    "items_failed",
)


def job_table_rows(records: Any) -> Any:
    from batchctl.cli._jobtable import job_rows

    return job_rows(records)


def job_summary(record: Any) -> bool:
    """A job's end for a person at a terminal (cli/_jobview.py); False for what is not a job record."""
    from batchctl.cli import _console
    from batchctl.cli._jobview import summary_lines
    from batchctl.cli._pipeline import is_pipeline_record, show_lines

    lines = show_lines(record) if is_pipeline_record(record) else summary_lines(record)
    if lines is None:
        return False
    _console.print_lines(lines)
    return True


def job_view(record: Any) -> bool:
    """`job show` for a person at a terminal: the record in sections, settings against the deployment's."""
    from batchctl import api
    from batchctl.cli import _console
    from batchctl.cli._jobview import show_lines
    from batchctl.errors import NotFoundError

    if not isinstance(record, dict) or "status" not in record:
        return False
    from batchctl.cli import _pipeline

    if _pipeline.is_pipeline_record(record):
        _console.print_lines(_pipeline.show_lines(record))
        return True
    try:
        deployment = api.get_deployment(workspace(), record["deployment_name"], record["endpoint_name"])
    except NotFoundError:
        deployment = None
    _console.print_lines(show_lines(record, deployment))
    return True


NameReq = Annotated[str, typer.Option("--name", "-n", help="Job name.", autocompletion=complete.jobs)]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def invoke_job(request: "JobRequest", *, no_wait: bool = False, dry_run: bool = False, no_server: bool = False) -> Any:
    """Submit a job, then run it here, hand it to a runner, or to the workspace's running server
    (cli/_server_client.py) unless no_server."""
    from batchctl import api
    from batchctl.cli import _server_client

    ws = workspace()
    record = api.submit_job(ws, request, dry_run=dry_run)
    if dry_run:
        return record
    if not (no_server or _server_client.disabled_by_env()):
        # from the moment the job exists, SIGTERM cancels it (as Ctrl-C does), even while it is handed over
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            try:
                taken = _server_client.hand_over(ws, record)
                # until follow() has its own handler (it imports and draws first), an interrupt lands here
                followed = _server_client.follow(ws, record) if taken and not no_wait else None
            except KeyboardInterrupt:
                return final_outcome(api.cancel_job(ws, record["name"]))
            if taken:
                return api.get_job(ws, record["name"]) if followed is None else final_outcome(followed)
        finally:
            signal.signal(signal.SIGTERM, previous)
    if no_wait:
        return api.start_job_detached(ws, record["name"])
    return run_foreground(ws, record)


# The job settings (specs/job.RunOverrides fields) that `endpoint invoke` has a flag of their own for, each
# the name of the command's parameter; every setting can also be given as `--set FIELD=VALUE`.
SETTING_FLAGS = ("mini_batch_size", "instance_count", "split", "keep_columns", "reuse")


def job_request(params: Mapping[str, Any], sets: list[str] | None, tags: list[str] | None) -> "JobRequest":
    """The words of `endpoint invoke` or `job create` (their parsed parameters, by name: click's
    `ctx.params`) as one typed request; the one place the command line becomes a JobRequest."""
    from batchctl import api

    return api.JobRequest.from_words(
        endpoint=params.get("endpoint"),
        deployment=params.get("deployment_name"),
        input=params.get("input"),
        input_type=params.get("input_type"),
        output_path=params.get("output_path"),
        job_name=params.get("job_name"),
        experiment_name=params.get("experiment_name"),
        settings={name: params[name] for name in SETTING_FLAGS if name in params},
        sets=sets or [],
        file=params.get("file"),
        tags=tags or [],
        tracking_uri=params.get("tracking_uri"),
        log_predictions=bool(params.get("log_predictions")),
        env_manager=params.get("env_manager"),
        env_strict=bool(params.get("env_strict")),
        env_constraints=params.get("env_constraint") or [],
    )


def run_foreground(ws: Any, record: dict[str, Any]) -> Any:
    from batchctl import api
    from batchctl.cli._progress import ProgressRenderer

    renderer = ProgressRenderer(
        record["counts"]["mini_batches"],
        record["counts"]["files"],
        record["name"],
        bool(record["counts"].get("listing")),
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        final = api.run_job(ws, record["name"], on_progress=renderer)
    finally:
        renderer.close()
        signal.signal(signal.SIGTERM, previous)
    return final_outcome(final)


def final_outcome(final: dict[str, Any]) -> Any:
    """A finished job's record when it Completed; else the error (exit 1, or 130 when canceled)."""

    if final["status"] == "Completed":
        return final
    raise outcome_error(final, show=True)


def outcome_error(record: dict[str, Any], *, show: bool = False) -> "BatchctlError":
    """The error a command ends with for a job that did not complete: 130 when it was canceled, the code
    of its cause when it has one (5: its output appeared meanwhile, 9: storage...), else 1. `show`: the
    command prints the job's record before the error line."""
    from batchctl.errors import BatchctlError, JobCanceledError

    name = record["name"]
    resume = f"batchctl job resume -n {name}"
    if record["status"] == "Canceled":
        return JobCanceledError(
            f"job {name} was canceled; nothing was published",
            f"continue it with `{resume}`",
            record=record if show else None,
        )
    error_info = record.get("error") or {}
    message = error_info.get("message") or record["status"]
    first = error_info.get("first_item_error")
    # `job errors` lists failed items: a job that failed before any (init(), a missing variable) has none
    failed_items = (record.get("counts") or {}).get("items_failed")
    see = f"see `batchctl job errors -n {name}`; " if failed_items else ""
    then = f"fix the cause, then `{resume}`"
    if "--keep-columns:" in f"{message} {first or ''}":  # resume keeps the job's columns: a new job is needed
        then = f"score with other columns in a new job: `batchctl job rerun -n {name} --set keep_columns=<columns>`"
    hint = error_info.get("hint")
    if not hint:
        hint = f"{see}{then}"
    elif "batchctl job resume" not in hint:
        hint = f"{hint}; then `{resume}`"
    return BatchctlError(
        f"job {name} failed: {message}" + (f"; first error: {first}" if first and first not in message else ""),
        hint,
        exit_code=int(error_info.get("exit_code") or 1),
        record=record if show else None,
    )


InputOpt = Annotated[
    str | None,
    typer.Option("--input", "-i", help="File, folder, URL, azureml://datastores/... or azureml:<data>@latest."),
]
InputTypeOpt = Annotated[str | None, typer.Option("--input-type", help="uri_file or uri_folder.")]
OutputPathOpt = Annotated[
    str | None,
    typer.Option("--output-path", help="Output folder (local, URL or azureml://datastores/<ds>/paths/<p>)."),
]
JobNameOpt = Annotated[str | None, typer.Option("--job-name", help="Job name (default: a UUID).")]
ExperimentOpt = Annotated[
    str | None, typer.Option("--experiment-name", help="Experiment (default: the endpoint name).")
]
MiniBatchOpt = Annotated[int | None, typer.Option("--mini-batch-size", "-m", help="Files per mini-batch for this job.")]
InstanceOpt = Annotated[int | None, typer.Option("--instance-count", "-c", help="Instances for this job.")]
SplitOpt = Annotated[
    str | None,
    typer.Option("--split", help="Cut big CSV/Parquet files into row ranges: auto (default), always or never."),
]
ReuseOpt = Annotated[
    str | None,
    typer.Option(
        "--reuse",
        help="Reuse the results of earlier jobs of the deployment for unchanged files: stamp (size and "
        "mtime, or ETag), sha256 (the bytes) or never (the default; also the `batchctl.reuse` property).",
    ),
]
KeepColumnsOpt = Annotated[
    str | None, typer.Option("--keep-columns", help="Input columns copied before the predictions, e.g. id,region.")
]
EnvManagerOpt = Annotated[
    str | None,
    typer.Option(
        "--env-manager",
        help="Where workers run: auto (this interpreter when it satisfies the deployment's environment, "
        "else an isolated one; default), local (this interpreter) or uv (always the isolated environment).",
    ),
]
EnvStrictOpt = Annotated[
    bool,
    typer.Option("--env-strict", help="Refuse instead of substituting a Python, relaxing a pin or skipping a package."),
]
EnvConstraintOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--env-constraint", help="A constraint for the environment's resolution, e.g. 'numpy<2' (repeatable)."
    ),
]
InvokeFileOpt = Annotated[str | None, typer.Option("--file", "-f", help="Invocation YAML with inputs:/outputs:.")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Hand the job to a detached runner and return at once.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan; score nothing.")]
NoServerOpt = Annotated[
    bool,
    typer.Option("--no-server", help="Run here even when `batchctl serve` runs (also BATCHCTL_NO_SERVER=1)."),
]
DeploymentOpt = Annotated[
    str | None,
    typer.Option(
        "--deployment-name",
        "-d",
        help="Deployment (default: the endpoint's default).",
        autocompletion=complete.deployments,
    ),
]


def _az_set_values(ctx: typer.Context, set_: list[str] | None) -> list[str] | None:
    """az ml takes several pairs after one flag (`--set a=1 b=2`): the extra key=value tokens join --set."""
    from batchctl.errors import SpecError

    extra = list(ctx.args)
    if not extra:
        return set_
    if not set_ or any("=" not in token or token.startswith("-") for token in extra):
        raise SpecError(f"unexpected argument(s): {' '.join(extra)}")
    return [*set_, *extra]


# az-style `--set k=v k2=v2`: click would refuse the extra tokens; accept them and hand them to --set
AZ_SET: dict[str, Any] = {"context_settings": {"allow_extra_args": True}}

TagsOpt = Annotated[
    list[str] | None,
    typer.Option("--tags", metavar="KEY=VALUE", help="Job tags, az style: --tags k=v k2=v2 (over the file's tags)."),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else settings.json)."),
]
LogPredictionsOpt = Annotated[
    bool, typer.Option("--log-predictions", help="Also log the results file as an MLflow artifact.")
]
# `--set a=1 b=2 --tags k=v`: main() gives each extra pair its flag (cli/_argv.py); in-process callers
# (CliRunner) get the extra pairs here, which go to the one multi-value flag given
AZ_MULTI = AZ_SET


def _az_multi_values(
    ctx: typer.Context, set_: list[str] | None, tags: list[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    from batchctl.errors import SpecError

    if not ctx.args or tags is None:
        return _az_set_values(ctx, set_), tags
    if set_ is None:
        return None, _az_set_values(ctx, tags)
    raise SpecError(
        f"unexpected argument(s): {' '.join(ctx.args)}; with both --set and --tags, repeat the flag for each pair"
    )


ForceRerunOpt = Annotated[
    bool, typer.Option("--force-rerun", help="Pipeline jobs: run every step, reusing no earlier step's outputs.")
]


def _pipeline_deployment(endpoint: str | None, deployment: str | None) -> bool:
    from batchctl import api

    return api.is_pipeline_deployment(workspace(), endpoint, deployment)


def register_invoke(group: typer.Typer, endpoint_flag: tuple[str, ...], name: str = "invoke") -> None:
    EndpointOpt = Annotated[
        str | None, typer.Option(*endpoint_flag, help="Endpoint name.", autocompletion=complete.endpoints)
    ]

    @command(group, name, terminal=job_summary, **AZ_MULTI)
    def invoke(
        ctx: typer.Context,
        endpoint: EndpointOpt = None,
        deployment_name: DeploymentOpt = None,
        input: InputOpt = None,
        input_type: InputTypeOpt = None,
        output_path: OutputPathOpt = None,
        job_name: JobNameOpt = None,
        experiment_name: ExperimentOpt = None,
        mini_batch_size: MiniBatchOpt = None,
        instance_count: InstanceOpt = None,
        set_: SetOpt = None,
        file: InvokeFileOpt = None,
        no_wait: NoWaitOpt = False,
        dry_run: DryRunOpt = False,
        tags: TagsOpt = None,
        tracking_uri: TrackingUriOpt = None,
        log_predictions: LogPredictionsOpt = False,
        split: SplitOpt = None,
        keep_columns: KeepColumnsOpt = None,
        reuse: ReuseOpt = None,
        no_server: NoServerOpt = False,
        env_manager: EnvManagerOpt = None,
        env_strict: EnvStrictOpt = False,
        env_constraint: EnvConstraintOpt = None,
        force_rerun: ForceRerunOpt = False,
    ) -> object:
        """Start a batch scoring job on the endpoint (its default deployment unless -d); on a pipeline
        deployment, a pipeline job with the inputs of -f inputs.yml and --set inputs.<x>.value|path=..."""
        # the parameters reach the request by name (job_request): a setting's flag is its Opt, its parameter
        # here and its name in SETTING_FLAGS
        sets, tags = _az_multi_values(ctx, set_, tags)
        if _pipeline_deployment(endpoint, deployment_name):
            from batchctl.cli import _pipeline

            _pipeline.refuse_model_options(
                {
                    "--input": input,
                    "--input-type": input_type,
                    "--output-path": output_path,
                    "--mini-batch-size": mini_batch_size,
                    "--instance-count": instance_count,
                    "--split": split,
                    "--keep-columns": keep_columns,
                    "--reuse": reuse,
                }
            )
            return _pipeline.invoke(
                endpoint=endpoint or "",
                deployment=deployment_name,
                file=file,
                sets=sets or [],
                job_name=job_name,
                experiment_name=experiment_name,
                tags=tags or [],
                no_wait=no_wait,
                dry_run=dry_run,
                force_rerun=force_rerun,
                env={"env_manager": env_manager, "env_strict": env_strict, "env_constraints": env_constraint or []},
                tracking_uri=tracking_uri,
                final_outcome=final_outcome,
            )
        return invoke_job(job_request(ctx.params, sets, tags), no_wait=no_wait, dry_run=dry_run, no_server=no_server)


register_invoke(app, ("--endpoint", "--endpoint-name", "-e"))


@command(app, "create", terminal=job_summary, **AZ_MULTI)
def create(
    ctx: typer.Context,
    file: Annotated[str, typer.Option("--file", "-f", help="Job YAML: inputs:, outputs:, endpoint:, deployment:.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Job name (overrides the file's).")] = None,
    set_: SetOpt = None,
    stream: Annotated[bool, typer.Option("--stream", help="Wait for the job (default).")] = True,
    no_wait: NoWaitOpt = False,
    dry_run: DryRunOpt = False,
    tags: TagsOpt = None,
    tracking_uri: TrackingUriOpt = None,
    log_predictions: LogPredictionsOpt = False,
    no_server: NoServerOpt = False,
    env_manager: EnvManagerOpt = None,
    env_strict: EnvStrictOpt = False,
    env_constraint: EnvConstraintOpt = None,
    force_rerun: ForceRerunOpt = False,
) -> object:
    """Create a batch scoring job from an invocation file (same fields as `endpoint invoke -f`), or a
    pipeline job from a `type: pipeline` job file (as `az ml job create -f pipeline-job.yml`)."""
    sets, tags = _az_multi_values(ctx, set_, tags)
    from batchctl import api

    if api.is_pipeline_job_file(file):
        from batchctl.cli import _pipeline

        return _pipeline.create(
            file=file,
            name=name,
            sets=sets or [],
            tags=tags or [],
            no_wait=no_wait,
            dry_run=dry_run,
            force_rerun=force_rerun,
            env={"env_manager": env_manager, "env_strict": env_strict, "env_constraints": env_constraint or []},
            tracking_uri=tracking_uri,
            final_outcome=final_outcome,
        )
    request = job_request({**ctx.params, "job_name": name}, sets, tags)
    return invoke_job(request, no_wait=no_wait, dry_run=dry_run, no_server=no_server)


ParentJobOpt = Annotated[
    str | None,
    typer.Option("--parent-job-name", "-p", help="Only the child jobs (one per step) of this pipeline job."),
]


@command(app, "list", columns=JOB_TABLE_COLUMNS, table_rows=job_table_rows)
def list_(
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint", "--endpoint-name", "-e", help="Only this endpoint's jobs.", autocompletion=complete.endpoints
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "--deployment-name",
            "-d",
            help="Only this deployment's jobs.",
            autocompletion=complete.deployments,
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            "-s",
            help="Queued, Running, Completed, Failed, Canceled or Skipped (a pipeline step).",
            autocompletion=complete.job_states,
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="KEY=VALUE", help="Only jobs with this tag: k=v (repeatable: all)."),
    ] = None,
    parent_job_name: ParentJobOpt = None,
    max_results: Annotated[
        int | None, typer.Option("--max-results", "-r", help="At most this many jobs (the newest).")
    ] = None,
) -> object:
    """List jobs, newest first."""
    from batchctl import api
    from batchctl.jobs.request import parse_tags

    if parent_job_name is not None:
        return api.list_child_jobs(workspace(), parent_job_name)
    tags = parse_tags(tag or [], "--tag") or None
    return api.list_jobs(workspace(), endpoint, deployment, status, tags, max_results=max_results)


@command(app, "show", terminal=job_view)
def show(name: NameReq, web: WebOpt = False) -> object:
    """Show a job: state, settings, counts, timings and the first error."""
    from batchctl import api

    record = api.get_job(workspace(), name)
    if web:
        open_page(workspace(), job_page(record["name"]))
    return record


@command(app, "cancel")
def cancel(name: NameReq) -> object:
    """Cancel a job: workers are stopped and nothing is published."""
    from batchctl import api

    return api.cancel_job(workspace(), name)


@command(app, "download")
def download(
    name: NameReq,
    output_name: Annotated[
        str, typer.Option("--output-name", help="The output to download (score; a pipeline job's named output).")
    ] = "score",
    download_path: Annotated[str | None, typer.Option("--download-path", "-p", help="Folder (default: .).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Accepted for az ml compatibility.")] = False,
) -> object:
    """Download a Completed job's results to DIR/named-outputs/score/ (a pipeline job's output
    to DIR/named-outputs/<output-name>/)."""
    from batchctl import api

    return api.download_job(workspace(), name, output_name, download_path)


@command(app, "rerun", terminal=job_summary, **AZ_SET)
def rerun(
    ctx: typer.Context,
    name: NameReq,
    failed_only: Annotated[bool, typer.Option("--failed-only", help="Score only the items that failed.")] = False,
    output_path: OutputPathOpt = None,
    job_name: JobNameOpt = None,
    set_: SetOpt = None,
    no_wait: NoWaitOpt = False,
    dry_run: DryRunOpt = False,
) -> object:
    """Start a new job over job NAME's input with its model version and code snapshot (with --failed-only:
    only the items it failed), into a new output."""
    from batchctl import api

    ws = workspace()
    sets = _az_set_values(ctx, set_) or []
    if not failed_only:  # the whole input again, with the first run's model version and code snapshot
        record = api.rerun_whole_job(
            ws, name, output_path=output_path, job_name=job_name, dry_run=dry_run, overrides=sets
        )
    else:
        record = api.rerun_job(ws, name, output_path=output_path, job_name=job_name, dry_run=dry_run, overrides=sets)
    if dry_run:
        return record
    if no_wait:
        return api.start_job_detached(ws, record["name"])
    return run_foreground(ws, record)


@command(app, "resume", terminal=job_summary, **AZ_SET)
def resume(
    ctx: typer.Context,
    name: NameReq,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="KEY=VALUE", help="error_threshold, retry_settings.max_retries/timeout or instance_count."
        ),
    ] = None,
    use_current_deployment: Annotated[
        bool,
        typer.Option("--use-current-deployment", help="Score the rest with the deployment's current model and code."),
    ] = False,
    output_path: Annotated[
        str | None,
        typer.Option("--output-path", help="Publish to this folder instead (its results file appeared meanwhile)."),
    ] = None,
    no_wait: NoWaitOpt = False,
    env_manager: EnvManagerOpt = None,
    env_strict: EnvStrictOpt = False,
    env_constraint: EnvConstraintOpt = None,
) -> object:
    """Continue a Failed or Canceled job (or one whose driver died): only the mini-batches without a
    committed result are scored, and the results go to the job's own output (or to --output-path)."""
    from batchctl import api

    ws = workspace()
    sets = _az_set_values(ctx, set_) or []
    record = api.resume_job(
        ws,
        name,
        overrides=sets,
        use_current_deployment=use_current_deployment,
        output_path=output_path,
        env_manager=env_manager,
        env_strict=env_strict,
        env_constraints=env_constraint or [],
    )
    if record.get("type") == "pipeline":
        from batchctl.cli._pipeline import run_here

        return run_here(ws, record, no_wait, final_outcome)
    if no_wait:
        return api.start_job_detached(ws, record["name"])
    return run_foreground(ws, record)


# `message` is the group's normalised form (numbers, paths and names blanked), for grouping: the table
# shows `example`, one real message of the group
ERROR_COLUMNS = ("count", "type", "example", "samples", "frame")
EXAMPLE_CHARS = 300


def error_table_rows(groups: Any) -> Any:
    def one_line(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        text = " ".join(text.split())
        if len(text) <= EXAMPLE_CHARS:
            return text
        half = (EXAMPLE_CHARS - 3) // 2  # head and tail: a cause is often at the end (MLflow's schema errors)
        return f"{text[:half]} … {text[-half:]}"

    if not isinstance(groups, list):
        return groups
    return [{**g, "example": one_line(g.get("example"))} if isinstance(g, dict) else g for g in groups]


@command(app, "errors", columns=ERROR_COLUMNS, table_rows=error_table_rows)
def errors(name: NameReq) -> object:
    """The job's failed items grouped by exception type and message, with counts, sample items and one
    real message of each group."""
    from batchctl import api
    from batchctl.notices import notify

    ws = workspace()
    groups = api.job_errors(ws, name)
    if not groups:
        record = api.get_job(ws, name)
        error = record.get("error") or {}
        if record["status"] == "Canceled":
            notify(f"job {name} has no failed items: it was canceled")
        elif record["status"] == "Failed":
            summary = error.get("summary") or error.get("message") or "no reason recorded"
            notify(f"job {name} has no failed items: the job failed as a whole: {summary}")
    return groups


@command(app, "verify")
def verify(name: NameReq) -> object:
    """Re-hash a Completed job's results and model against its lineage manifest (exit 10 results differ,
    11 model differs, 12 both)."""
    from batchctl import api

    return api.verify_job(workspace(), name)


@command(app, "stream", render=False)
def stream(name: NameReq) -> object:
    """Follow a job's logs until it ends; exit 0 only if it Completed."""
    from batchctl import api

    ws = workspace()
    position = 0
    while True:
        record = api.get_job(ws, name)
        chunk, position = api.read_job_log(ws, name, position)
        if chunk:
            sys.stdout.write(chunk)
            sys.stdout.flush()
        if record["status"] in ("Completed", "Failed", "Canceled") and not chunk:
            break
        time.sleep(0.2)
    summarized = for_a_person() and job_summary(record)
    if not summarized and record.get("type") == "pipeline":
        steps = (record.get("pipeline") or {}).get("steps") or []
        shown = ", ".join(f"{s['name']} {s['status']}" for s in steps)
        sys.stdout.write(f"job {name}: {record['status']} - {len(steps)} steps: {shown}\n")
    elif not summarized:
        c = record.get("counts") or {}
        sys.stdout.write(
            f"job {name}: {record['status']} - {c.get('items_succeeded', 0)} items succeeded, "
            f"{c.get('items_failed', 0)} failed\n"
        )
    if record["status"] == "Completed":
        return None
    error = outcome_error(record)
    if summarized:
        raise AlreadySummarized(error)
    raise error


def register_list_jobs(group: typer.Typer, kind: str) -> None:
    if kind == "endpoint":

        @command(group, "list-jobs", columns=JOB_TABLE_COLUMNS, table_rows=job_table_rows)
        def endpoint_list_jobs(
            name: Annotated[str, typer.Option("--name", "-n", help="Endpoint name.")],
            deployment_name: DeploymentOpt = None,
        ) -> object:
            """List the endpoint's jobs."""
            from batchctl import api

            ws = workspace()
            api.get_endpoint(ws, name)
            return api.list_jobs(ws, name, deployment_name)

    else:

        @command(group, "list-jobs", columns=JOB_TABLE_COLUMNS, table_rows=job_table_rows)
        def deployment_list_jobs(
            name: Annotated[str, typer.Option("--name", "-n", help="Deployment name.")],
            endpoint_name: Annotated[str, typer.Option("--endpoint-name", "-e", help="Endpoint name.")],
        ) -> object:
            """List the deployment's jobs."""
            from batchctl import api

            ws = workspace()
            api.get_endpoint(ws, endpoint_name)
            return api.list_jobs(ws, endpoint_name, name)
