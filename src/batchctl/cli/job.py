"""Jobs: `endpoint invoke` / `job invoke`, and job create|list|show|stream|cancel|download|rerun."""

import signal
import sys
import time
from typing import Annotated, Any

import typer

from batchctl.cli import _complete as complete
from batchctl.cli._common import SetOpt, command, workspace

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


NameReq = Annotated[str, typer.Option("--name", "-n", help="Job name.", autocompletion=complete.jobs)]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def invoke_job(*, no_wait: bool = False, dry_run: bool = False, set_: list[str] | None = None, **options: Any) -> Any:
    """Submit a job (options as api.submit_job takes them), then run it here or hand it to a runner."""
    from batchctl import api

    ws = workspace()
    record = api.submit_job(ws, dry_run=dry_run, overrides=set_ or [], **options)
    if dry_run:
        return record
    if no_wait:
        return api.start_job_detached(ws, record["name"])
    return run_foreground(ws, record)


def run_foreground(ws: Any, record: dict[str, Any]) -> Any:
    from batchctl import api
    from batchctl.cli._progress import ProgressRenderer
    from batchctl.errors import JobCanceledError, JobFailedError

    renderer = ProgressRenderer(record["counts"]["mini_batches"], record["counts"]["files"], record["name"])
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        final = api.run_job(ws, record["name"], on_progress=renderer)
    finally:
        renderer.close()
        signal.signal(signal.SIGTERM, previous)
    if final["status"] == "Completed":
        return final
    message = (final.get("error") or {}).get("message") or final["status"]
    if final["status"] == "Canceled":
        error: Any = JobCanceledError(f"job {final['name']} was canceled; nothing was published")
    else:
        error = JobFailedError(
            f"job {final['name']} failed: {message}",
            f"see `batchctl job show -n {final['name']}` and its logs in {final.get('log_dir')}",
        )
    error.record = final
    raise error


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
InvokeFileOpt = Annotated[str | None, typer.Option("--file", "-f", help="Invocation YAML with inputs:/outputs:.")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Hand the job to a detached runner and return at once.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan; score nothing.")]
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
AZ_SET = {"context_settings": {"allow_extra_args": True}}


def register_invoke(group: typer.Typer, endpoint_flag: tuple[str, ...], name: str = "invoke") -> None:
    EndpointOpt = Annotated[
        str | None, typer.Option(*endpoint_flag, help="Endpoint name.", autocompletion=complete.endpoints)
    ]

    @command(group, name, **AZ_SET)
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
    ) -> object:
        """Start a batch scoring job on the endpoint (its default deployment unless -d)."""
        sets = _az_set_values(ctx, set_)
        return invoke_job(
            endpoint=endpoint,
            deployment=deployment_name,
            input=input,
            input_type=input_type,
            output_path=output_path,
            job_name=job_name,
            experiment_name=experiment_name,
            mini_batch_size=mini_batch_size,
            instance_count=instance_count,
            set_=sets,
            file=file,
            no_wait=no_wait,
            dry_run=dry_run,
        )


register_invoke(app, ("--endpoint", "--endpoint-name", "-e"))


@command(app, "create", **AZ_SET)
def create(
    ctx: typer.Context,
    file: Annotated[str, typer.Option("--file", "-f", help="Job YAML: inputs:, outputs:, endpoint:, deployment:.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Job name (overrides the file's).")] = None,
    set_: SetOpt = None,
    stream: Annotated[bool, typer.Option("--stream", help="Wait for the job (default).")] = True,
    no_wait: NoWaitOpt = False,
    dry_run: DryRunOpt = False,
) -> object:
    """Create a batch scoring job from an invocation file (same fields as `endpoint invoke -f`)."""
    return invoke_job(job_name=name, set_=_az_set_values(ctx, set_), file=file, no_wait=no_wait, dry_run=dry_run)


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
        str | None, typer.Option("--status", "-s", help="Queued, Running, Completed, Failed or Canceled.")
    ] = None,
    max_results: Annotated[
        int | None, typer.Option("--max-results", "-r", help="At most this many jobs (the newest).")
    ] = None,
) -> object:
    """List jobs, newest first."""
    from batchctl import api

    return api.list_jobs(workspace(), endpoint, deployment, status, max_results=max_results)


@command(app, "show")
def show(name: NameReq) -> object:
    """Show a job: state, settings, counts, timings and the first error."""
    from batchctl import api

    return api.get_job(workspace(), name)


@command(app, "cancel")
def cancel(name: NameReq) -> object:
    """Cancel a job: workers are stopped and nothing is published."""
    from batchctl import api

    return api.cancel_job(workspace(), name)


@command(app, "download")
def download(
    name: NameReq,
    output_name: Annotated[str, typer.Option("--output-name", help="The output to download (score).")] = "score",
    download_path: Annotated[str | None, typer.Option("--download-path", "-p", help="Folder (default: .).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Accepted for az ml compatibility.")] = False,
) -> object:
    """Download a Completed job's results to DIR/named-outputs/score/."""
    from batchctl import api

    return api.download_job(workspace(), name, output_name, download_path)


@command(app, "rerun")
def rerun(
    name: NameReq,
    failed_only: Annotated[bool, typer.Option("--failed-only", help="Score only the items that failed.")] = False,
    output_path: OutputPathOpt = None,
    job_name: JobNameOpt = None,
    no_wait: NoWaitOpt = False,
    dry_run: DryRunOpt = False,
) -> object:
    """Start a new job that scores only the items job NAME failed (into a new output)."""
    from batchctl import api
    from batchctl.errors import SpecError

    if not failed_only:
        raise SpecError("job rerun needs --failed-only (re-invoke the endpoint to score everything again)")
    ws = workspace()
    record = api.rerun_job(ws, name, output_path=output_path, job_name=job_name, dry_run=dry_run)
    if dry_run:
        return record
    if no_wait:
        return api.start_job_detached(ws, record["name"])
    return run_foreground(ws, record)


@command(app, "stream", render=False)
def stream(name: NameReq) -> object:
    """Follow a job's logs until it ends; exit 0 only if it Completed."""
    from batchctl import api
    from batchctl.errors import JobFailedError

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
    c = record.get("counts") or {}
    sys.stdout.write(
        f"job {name}: {record['status']} - {c.get('items_succeeded', 0)} items succeeded, "
        f"{c.get('items_failed', 0)} failed\n"
    )
    if record["status"] == "Completed":
        return None
    message = (record.get("error") or {}).get("message") or record["status"]
    if record["status"] == "Canceled":
        raise JobFailedError(f"job {name} was canceled")
    raise JobFailedError(f"job {name} failed: {message}")


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
