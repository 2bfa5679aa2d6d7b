"""The typed job: its states and their transitions, its settings (the one merge of deployment <-
invocation file <- `--set`/flags, and the only place defaults are applied), its plan and its record.

`job.json` is a JobRecord dumped as JSON; records written by earlier versions load unchanged
(tests/jobs/fixtures/job-v0.1.0.json)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

from batchctl.errors import InvalidStateError, SpecError
from batchctl.execution.events import BatchEvent
from batchctl.specs.deployment import DEFAULT_OUTPUT_FILE_NAME
from batchctl.specs.job import RunOverrides
from batchctl.storage import Location

if TYPE_CHECKING:
    from batchctl.resources.records import ComputeRecord, DeploymentRecord


class JobState(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"  # a pipeline step whose upstream step did not complete (never ran)

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED, JobState.SKIPPED)

    def transition(self, target: JobState) -> JobState:
        """The state after a change to `target`; a change out of a terminal state raises."""
        if target == self:
            return target
        if target not in _ALLOWED[self]:
            raise InvalidStateError(f"job is {self.value}; it cannot become {target.value}")
        return target

    def reopen(self) -> JobState:
        """Queued again, for `job resume`: only a Failed or Canceled job can be continued."""
        if self not in (JobState.FAILED, JobState.CANCELED, JobState.SKIPPED):
            raise InvalidStateError(
                f"job is {self.value}; only a Failed or Canceled job can be resumed"
                + (" (a Completed job has nothing left to score)" if self is JobState.COMPLETED else "")
            )
        return JobState.QUEUED

    @classmethod
    def parse(cls, text: str) -> JobState:
        """A state as a user types it (any case); an unknown one is a SpecError naming the states."""
        for state in cls:
            if state.value.lower() == text.lower():
                return state
        raise SpecError(f"--status: '{text}' is not one of {', '.join(s.value for s in cls)}")


_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELED, JobState.SKIPPED}),
    JobState.RUNNING: frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELED: frozenset(),
    JobState.SKIPPED: frozenset(),
}


class _Model(BaseModel):
    # unknown keys are kept: a record written by a newer version is shown, never truncated
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class JobRetry(_Model):
    max_retries: int
    timeout: int


class JobSettings(_Model):
    """The settings a job runs with, after the one merge (`merge`)."""

    mini_batch_size: int
    instance_count: int
    max_concurrency_per_instance: int
    workers: int
    output_action: Literal["append_row", "summary_only"]
    output_file_name: str | None
    retry_settings: JobRetry
    error_threshold: int
    logging_level: str
    split: Literal["auto", "always", "never"] = "auto"  # big files as row ranges (no-code MLflow only)
    keep_columns: list[str] = Field(default_factory=list)  # input columns copied before the predictions
    # reuse the per-file results of earlier jobs when nothing that decides them changed (jobs/reuse.py):
    # never (Azure's "score everything", the default), stamp (size + mtime / ETag) or sha256 (the bytes)
    reuse: Literal["never", "stamp", "sha256"] = "never"

    @model_serializer(mode="wrap")
    def _without_defaults_of_new_keys(self, handler: Any) -> Any:
        # records written before these settings existed load and save unchanged (test_old_records)
        data = handler(self)
        if data.get("split") == "auto":
            del data["split"]
        if not data.get("keep_columns", True):
            del data["keep_columns"]
        if data.get("reuse") == "never":
            del data["reuse"]
        return data

    @property
    def output_format(self) -> str:
        from batchctl.scoring.formats import output_format

        return output_format(self.output_file_name)

    @classmethod
    def merge(cls, deployment: DeploymentRecord, compute: ComputeRecord, overrides: RunOverrides) -> JobSettings:
        """The deployment's settings with the job's overrides laid over them (overrides are already the
        invocation file <- `--set` <- flags merge, see RunOverrides.over)."""
        base = deployment.settings
        retry = {
            **base.retry_settings.model_dump(),
            **(overrides.retry_settings.model_dump(exclude_none=True) if overrides.retry_settings else {}),
        }
        output_action = base.output_action
        if output_action == "summary_only":
            if overrides.output_file_name is not None:
                raise SpecError(
                    "When output_action is set to summary_only, the output_file_name need not to be specified."
                )
            output_file_name = None
        else:
            output_file_name = overrides.output_file_name or base.output_file_name or DEFAULT_OUTPUT_FILE_NAME
        instances = overrides.instance_count or deployment.resources.instance_count
        per_instance = base.max_concurrency_per_instance
        workers = instances * per_instance
        if compute.max_workers:
            workers = min(workers, int(compute.max_workers))
        props = deployment.properties
        split = overrides.split or props.get("batchctl.split") or "auto"
        if split not in ("auto", "always", "never"):
            raise SpecError(f"deployment property batchctl.split: '{split}' is not auto, always or never")
        keep = overrides.keep_columns
        if keep is None and props.get("batchctl.keep_columns"):
            keep = RunOverrides(keep_columns=props["batchctl.keep_columns"]).keep_columns
        _check_outputs(deployment, output_action, output_file_name, keep or [])
        reuse = overrides.reuse or str(props.get("batchctl.reuse") or "never").lower()
        if reuse in ("true", "on", "yes"):
            reuse = "stamp"
        if reuse in ("false", "off", "no"):
            reuse = "never"
        if reuse not in ("never", "stamp", "sha256"):
            raise SpecError(f"deployment property batchctl.reuse: '{reuse}' is not never, stamp or sha256")
        return cls(
            reuse=reuse,
            split=split,
            keep_columns=keep or [],
            mini_batch_size=overrides.mini_batch_size or base.mini_batch_size,
            instance_count=instances,
            max_concurrency_per_instance=per_instance,
            workers=workers,
            output_action=output_action,
            output_file_name=output_file_name,
            retry_settings=JobRetry(**retry),
            error_threshold=base.error_threshold if overrides.error_threshold is None else overrides.error_threshold,
            logging_level=base.logging_level,
        )

    def as_overrides(self) -> RunOverrides:
        """These settings as overrides of a new job (rerun keeps the original job's settings)."""
        return RunOverrides(
            mini_batch_size=self.mini_batch_size,
            instance_count=self.instance_count,
            error_threshold=self.error_threshold,
            retry_settings=self.retry_settings.model_dump(),
            output_file_name=self.output_file_name if self.output_action == "append_row" else None,
            split=self.split,
            keep_columns=self.keep_columns or None,
            reuse=self.reuse if self.reuse != "never" else None,
        )


def _check_outputs(deployment: DeploymentRecord, output_action: str, file_name: str | None, keep: list[str]) -> None:
    """Output formats and --keep-columns are the no-code MLflow scorer's: a scoring script writes its own rows."""
    from batchctl.scoring.formats import output_format

    fmt = output_format(file_name)
    if deployment.code_dir:
        if fmt != "csv":
            raise SpecError(
                f"output_file_name '{file_name}': {fmt} results are written by the built-in MLflow scorer only; "
                "a scoring script's rows are Azure's CSV lines (use a .csv name)"
            )
        if keep:
            raise SpecError("--keep-columns works with the built-in MLflow scorer only, not with a scoring script")
    if keep and output_action == "summary_only":
        raise SpecError("--keep-columns needs output_action append_row: summary_only writes no rows")


class JobCounts(_Model):
    files: int = 0
    mini_batches: int = 0
    mini_batches_completed: int = 0
    mini_batches_failed: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    retries: int = 0
    worker_restarts: int = 0
    rows: int = 0  # rows written by the succeeded mini-batches
    row_ranges: int = 0  # how many of the mini-batches are row ranges of big files (the rest are whole files)
    listing: bool = False  # the input is still being listed: `files` and `mini_batches` are "at least"
    items_reused: int = 0  # of items_succeeded: files whose rows came from an earlier job (jobs/reuse.py)


class LocationRecord(_Model):
    url: str
    protocol: str

    @classmethod
    def of(cls, loc: Location) -> LocationRecord:
        return cls(url=loc.url, protocol=loc.protocol)

    def location(self) -> Location:
        return Location(self.url, self.protocol)


class DeploymentSnapshot(_Model):
    """What the job scores with, frozen at submit: the model and code folders inside the workspace."""

    model_dir: str
    model_path: str
    model_type: str
    code_dir: str | None = None
    scoring_script: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    spec_hash: str | None = None  # the deployment's, at submit (part of a warm pool's key)
    model_hash: str | None = None  # the model's content hash, at submit (part of a warm pool's key)


class JobPlan(_Model):
    """plan.json as versions before 0.3 wrote it (one document); jobs/plan.py reads it and plan.jsonl."""

    root_url: str
    root_protocol: str
    input_type: str
    files: list[str]

    @property
    def root(self) -> Location:
        return Location(self.root_url, self.root_protocol)


# keys added after 0.1.0 that a record leaves out while they are unset (and counts.rows while 0)
_UNSET_OMITTED = (
    "tracking",
    "lineage",
    "published",
    "compute_connect_timeout",
    "publishing",
    "environment",
    "parent_job_name",
    "pipeline",
)

ERROR_KEYS = ("type", "message", "frame", "summary")


def job_error(
    message: str, type: str | None = None, frame: str | None = None, summary: str | None = None, **extras: Any
) -> dict[str, Any]:
    """A job's `error`, one shape in every state: `type` (the exception's class), `message`, `frame`
    (`file:line` in the scoring script), null when unknown, and `summary`, the one line
    `ExceptionType: message (file:line)` made of the parts known; then extras (`exit_code`,
    `first_item_error`, `details`). A summary given is recomputed (records written before it existed)."""
    head = " ".join(str(message).split())
    if type and f"{type}:" not in head:
        head = f"{type}: {head}"
    if frame and not head.endswith(f"({frame})"):
        head = f"{head} ({frame})"
    return {"type": type, "message": message, "frame": frame, "summary": head, **extras}


# keys of a record that are internal (paths inside the workspace, how to reach the compute)
_INTERNAL = (
    "deployment_snapshot",
    "output_location",
    "output_file_location",
    "compute_address",
    "compute_max_workers",
    "compute_connect_timeout",
    "publishing",
)


class JobRecord(_Model):
    """job.json."""

    name: str
    display_name: str | None = None
    type: str = "batch_scoring"
    experiment_name: str | None = None
    status: JobState
    endpoint_name: str
    deployment_name: str
    model: str
    compute: str
    compute_type: str = "local"
    compute_address: str | None = None
    compute_max_workers: int | None = None
    compute_connect_timeout: float | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    output_location: LocationRecord
    output_file: str | None = None
    output_file_location: LocationRecord | None = None
    settings: JobSettings
    counts: JobCounts = Field(default_factory=JobCounts)
    created_at: str
    start_time: str | None = None
    end_time: str | None = None
    duration_seconds: float | None = None
    error: dict[str, Any] | None = None
    runner: dict[str, Any] | None = None
    rerun_of: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    deployment_snapshot: DeploymentSnapshot
    log_dir: str | None = None
    published: bool | None = None  # True once the results are at their final name (before Completed is written)
    # {sha256, bytes, url} of the results file, written just before it is published: a runner killed right
    # after the publish leaves a job that the liveness check can recognise as Completed (records.reconcile)
    publishing: dict[str, Any] | None = None
    attempts: int = 1  # `job resume` continues the same job: one more attempt
    history: list[dict[str, Any]] = Field(default_factory=list)  # how each earlier attempt ended
    tracking: dict[str, Any] | None = None  # {uri, log_predictions, run_id, experiment_id, url} (batchctl.tracking)
    lineage: dict[str, Any] | None = None  # the lineage manifest (batchctl.tracking.lineage)
    # the deployment's environment (batchctl.jobs.environment): asked at submit, what was used once running
    environment: dict[str, Any] | None = None
    # pipelines (batchctl.jobs.pipelines): a step's child job names its parent; the parent's `pipeline` holds
    # the steps (name, job, status, depends_on, reused_from), a child's its step, component and reuse
    parent_job_name: str | None = None
    pipeline: dict[str, Any] | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _one_error_shape(cls, value: Any) -> Any:
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return job_error(**value)
        return value

    def dump(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for key in _UNSET_OMITTED:  # added after 0.1.0: a record without them is saved as it was
            if data.get(key) is None:
                data.pop(key, None)
        # added after 0.1.0: saved only when there are some
        for key in ("rows", "row_ranges", "listing", "items_reused"):
            if not data["counts"].get(key):
                data["counts"].pop(key, None)
        return data

    def public(self) -> dict[str, Any]:
        """What users see (`job show`, REST): the record without workspace-internal keys."""
        return {k: v for k, v in self.dump().items() if k not in _INTERNAL}


class JobProgress(BaseModel):
    """What the runner tells a front end (progress bar, plain lines, a page) as the job goes."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    event: BatchEvent | None  # None once the job has ended
    counts: JobCounts
    status: JobState | None = None  # set once the job has ended
