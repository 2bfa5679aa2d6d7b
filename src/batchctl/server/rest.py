"""Azure's invocation API for batch endpoints, over the workspace's jobs.

`POST {scoring_uri}` (= `/endpoints/{endpoint}/jobs`) with Azure's body starts a job; the header
`azureml-model-deployment` picks a deployment. The body is checked here (400), local paths are confined
to the allowed roots (403), and the job goes through `api.submit_job`, exactly as `endpoint invoke`
checks it, then into the server's queue. Job routes answer in Azure's shape: `id`, `name`, `type` and
`properties.status`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from batchctl import api
from batchctl.errors import BatchctlError
from batchctl.jobs.request import typed_overrides
from batchctl.specs._base import Int
from batchctl.workspace import Workspace

if TYPE_CHECKING:
    from batchctl.jobs.request import JobRequest
    from batchctl.specs.job import RunOverrides

JOB_TYPE = "Microsoft.MachineLearningServices/workspaces/jobs"

# Azure resource ids that the REST docs use for inputs and outputs, and what batchctl calls them
_ARM_WORKSPACE = r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/workspaces/[^/]+"
_ARM_DATASTORE = re.compile(_ARM_WORKSPACE + r"/datastores/(.+)$")
_ARM_DATA = re.compile(_ARM_WORKSPACE + r"/data/([^/]+)/versions/([^/]+)$")
# Azure's REST schema types these settings as int32; a boolean is never a number (as in the YAML specs)
INT32_MAX = 2**31 - 1
# an error message on a page or in a REST body quotes at most this much (a schema error can quote input
# rows); the job's logs and failed_items.jsonl keep the whole text
MAX_ERROR_CHARS = 500


class BadRequestError(BatchctlError):
    """The request body is not what the API takes (HTTP 400)."""

    exit_code = 3
    http_status = 400
    http_code = "BadRequest"


class ForbiddenPathError(BatchctlError):
    """A local path outside the server's allowed roots (HTTP 403)."""

    exit_code = 3
    http_status = 403
    http_code = "Forbidden"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JobInput(_Body):
    JobInputType: Literal["UriFolder", "UriFile", "uri_folder", "uri_file", "Literal", "literal"] = Field(
        description="UriFolder (a folder whose files are scored), UriFile (one file), or Literal (a value: "
        "pipeline deployments only)."
    )
    Uri: str | None = Field(
        None,
        min_length=1,
        description="azureml://datastores/<ds>/paths/<p>, azureml:<data>:<version>, https://, az://, "
        "an Azure datastore or data asset id, or an absolute local path under an allowed root.",
    )
    Value: str | int | float | bool | None = Field(None, description="A Literal input's value.")
    Mode: str | None = Field(None, description="Accepted for Azure compatibility; ignored.")

    @property
    def literal(self) -> bool:
        return self.JobInputType in ("Literal", "literal")

    @model_validator(mode="after")
    def _uri_or_value(self) -> JobInput:
        if self.literal and self.Value is None:
            raise ValueError("a Literal input needs Value")
        if not self.literal and self.Uri is None:
            raise ValueError("Uri: Field required")
        return self


class JobOutput(_Body):
    JobOutputType: Literal["UriFolder", "UriFile", "uri_folder", "uri_file"] = "UriFolder"
    Uri: str = Field(min_length=1, description="The output folder: the results file is written inside it.")
    Mode: str | None = None


class RetrySettings(_Body):
    maxRetries: Int | None = Field(None, ge=0, le=INT32_MAX)
    timeout: Int | None = Field(None, gt=0, le=259200, description="Seconds per mini-batch attempt.")


class ComputeSettings(_Body):
    instanceCount: Int | None = Field(None, ge=1, le=1024)


class JobProperties(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    InputData: dict[str, JobInput] = Field(
        description="Exactly one input for a model deployment; a pipeline deployment's named inputs (Literal ones too)."
    )
    OutputData: dict[str, JobOutput] = Field(
        default_factory=dict, description="Optional: `score` (a model deployment) or a pipeline's named outputs."
    )
    properties: dict[str, str] = Field(
        default_factory=dict, description="Azure's job properties; `experimentName` is honoured."
    )
    # batchctl's per-job overrides (Azure's overridable settings, with the names of its batch job schema)
    name: str | None = Field(None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$", description="The job name (a UUID).")
    miniBatchSize: Int | None = Field(None, gt=0, le=INT32_MAX)
    errorThreshold: Int | None = Field(None, ge=-1, le=INT32_MAX)
    outputFileName: str | None = None
    retrySettings: RetrySettings | None = None
    compute: ComputeSettings | None = None
    # batchctl's: where the workers run (`--env-manager`, `--env-strict`; docs/environments.md)
    envManager: Literal["auto", "local", "uv"] | None = None
    envStrict: bool | None = None


class InvokeBody(_Body):
    """Azure's invocation body: `{"properties": {"InputData": {...}, "OutputData": {"score": {...}}}}`."""

    properties: JobProperties


def _kind(value: str) -> str:
    return "uri_file" if value in ("UriFile", "uri_file") else "uri_folder"


def azure_uri(uri: str) -> str:
    """Azure's resource ids as batchctl's references; everything else unchanged."""
    match = _ARM_DATASTORE.match(uri)
    if match:
        rest = match.group(1)
        return f"azureml://datastores/{rest}" if "/paths/" in rest else f"azureml://datastores/{rest}/paths/"
    match = _ARM_DATA.match(uri)
    if match:
        return f"azureml:{match.group(1)}:{match.group(2)}"
    return uri


def allowed_roots(ws: Workspace, extra: Iterable[str]) -> list[str]:
    """--allow-path roots plus every local datastore's folder (the default datastore included)."""
    roots = [os.path.realpath(p) for p in extra]
    for store in api.list_datastores(ws):
        if store.get("type") == "local" and store.get("path"):
            roots.append(os.path.realpath(store["path"]))
    return roots


def check_path(value: str, roots: list[str], what: str) -> None:
    """A local path must resolve (symbolic links and `..` included) inside an allowed root; other URIs are
    the workspace's datastores, data assets or remote stores, checked by the job's own resolution."""
    from batchctl.urls import AZURE_PROTOCOLS, protocol_of

    if value.startswith("azureml:"):
        return
    protocol = protocol_of(value)
    if protocol in ("http", "https", *AZURE_PROTOCOLS):
        return
    if protocol != "file" or "::" in value:
        # fsspec would open `local://`, `zip://...::file://` and chained URLs on this machine too
        raise BadRequestError(
            f"{what}: '{value}' is not accepted over REST; use azureml://datastores/..., azureml:<data>:<version>, "
            "https://, az://, abfs:// or an absolute local path"
        )
    local = value[len("file://") :] if value.startswith("file://") else value
    if not os.path.isabs(local):
        raise BadRequestError(f"{what}: local paths must be absolute over REST, not '{value}'")
    real = os.path.realpath(local)
    for root in roots:
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return
    raise ForbiddenPathError(
        f"{what}: '{value}' is not under a path this server may use; start the server with "
        "--allow-path DIR for it, or use a datastore path (azureml://datastores/<ds>/paths/...)"
    )


def confine(request: JobRequest, roots: list[str], labels: tuple[str, str] = ("input", "output")) -> None:
    """The one confinement of a job that a caller outside the workspace starts (REST, the Studio's Create
    job form): the input and the output of the request that `api.submit_job` will get, whatever the
    request said they were (a data asset, a datastore path, a URL or a local path), go through
    `check_path` before anything is resolved or queued."""
    check_path(str(request.input or ""), roots, labels[0])
    if request.output_path is not None:
        check_path(str(request.output_path), roots, labels[1])


def excerpt(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """A message cut to `limit` characters for a page or a REST body: a schema error can quote the input's
    rows, and the whole text stays in the job's logs. Its head and its tail are kept: MLflow's schema error
    dumps the data first and gives the cause last ("Error: Model is missing inputs ['thal']."), and a
    summary ends in its `(file:line)`."""
    if len(message) <= limit:
        return message
    head = limit * 2 // 5
    tail = limit - head
    return (
        f"{message[:head].rstrip()} ... [{len(message) - limit} more characters in the job's logs] ... "
        f"{message[len(message) - tail :].lstrip()}"
    )


def bounded_error(error: Any) -> Any:
    """A record's `error` (a dict of message, first_item_error, details..., or a string) with every text
    in it cut by `excerpt`."""
    if isinstance(error, dict):
        return {k: excerpt(v) if isinstance(v, str) else v for k, v in error.items()}
    if isinstance(error, str):
        return excerpt(error)
    return error


def submit_request(
    ws: Workspace, endpoint: str, deployment: str | None, body: InvokeBody, roots: list[str]
) -> JobRequest:
    """Azure's body as the typed request `api.submit_job` takes, its input and output confined."""
    props = body.properties
    if len(props.InputData) != 1:
        raise BadRequestError(
            f"properties.InputData: model deployments take exactly one input; this body names {len(props.InputData)}"
        )
    unknown = set(props.OutputData) - {"score"}
    if unknown:
        raise BadRequestError(f"properties.OutputData: the one output is named 'score', not {sorted(unknown)}")
    (data,) = props.InputData.values()
    if data.literal or data.Uri is None:
        raise BadRequestError(
            "properties.InputData: JobInputType Literal is for pipeline deployments; a model deployment takes "
            "UriFolder or UriFile"
        )
    request = api.JobRequest(
        endpoint=endpoint,
        deployment=deployment,
        input=azure_uri(data.Uri),
        input_type=_kind(data.JobInputType),
        output_path=azure_uri(props.OutputData["score"].Uri) if "score" in props.OutputData else None,
        job_name=props.name,
        experiment_name=props.properties.get("experimentName"),
        env_manager=props.envManager,
        env_strict=bool(props.envStrict),
    )
    confine(request, roots, ("InputData", "OutputData.score"))
    request.overrides = run_overrides(props)
    return request


# The job settings (specs/job.RunOverrides fields) that Azure's body has no field for; every other one is
# read in run_overrides. tests/unit/jobs/test_job_settings.py holds the front ends to this.
NOT_IN_BODY = ("split", "keep_columns", "reuse")


def run_overrides(props: JobProperties) -> RunOverrides:
    """The body's per-job settings, typed (checked as `endpoint invoke` checks its flags and `--set`)."""
    given = props.retrySettings
    retry = {"max_retries": given.maxRetries, "timeout": given.timeout} if given else {}
    return typed_overrides(
        {
            "mini_batch_size": props.miniBatchSize,
            "instance_count": props.compute.instanceCount if props.compute else None,
        },
        {
            "error_threshold": props.errorThreshold,
            "output_file_name": props.outputFileName,
            "retry_settings": {k: v for k, v in retry.items() if v is not None} or None,
        },
    )


def pipeline_options(
    ws: Workspace, endpoint: str, deployment: str | None, body: InvokeBody, roots: list[str]
) -> dict[str, Any]:
    """Azure's body for a pipeline deployment (several named inputs, Literal ones among them; several named
    outputs) as `api.invoke_pipeline` options; every path confined as a model job's are."""
    props = body.properties
    inputs: dict[str, Any] = {}
    for name, data in props.InputData.items():
        if data.literal:
            inputs[name] = data.Value
            continue
        assert data.Uri is not None
        uri = azure_uri(data.Uri)
        check_path(uri, roots, f"InputData.{name}")
        inputs[name] = {"type": _kind(data.JobInputType), "path": uri}
    outputs: dict[str, Any] = {}
    for name, out in props.OutputData.items():
        uri = azure_uri(out.Uri)
        check_path(uri, roots, f"OutputData.{name}")
        outputs[name] = {"type": _kind(out.JobOutputType), "path": uri}
    unsupported = [
        key
        for key in ("miniBatchSize", "errorThreshold", "outputFileName", "retrySettings", "compute")
        if getattr(props, key) is not None
    ]
    if unsupported:
        raise BadRequestError(f"properties.{unsupported[0]}: a pipeline deployment has no such setting")
    return {
        "endpoint": endpoint,
        "deployment": deployment,
        "inputs": inputs,
        "outputs": outputs,
        "job_name": props.name,
        "experiment_name": props.properties.get("experimentName"),
        "env_manager": props.envManager,
        "env_strict": bool(props.envStrict),
    }


def _input_resource(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):  # a pipeline job's literal input
        return {"JobInputType": "Literal", "Value": spec}
    return {"JobInputType": "UriFile" if spec.get("type") == "uri_file" else "UriFolder", "Uri": spec.get("path")}


def job_resource(record: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A job record in Azure's resource shape (`.id`, `.name`, `.properties.status`)."""
    settings = record.get("settings") or {}
    retry = settings.get("retry_settings") or {}
    inputs = {name: _input_resource(spec) for name, spec in (record.get("inputs") or {}).items()}
    outputs = {
        name: {"JobOutputType": "UriFolder", "Uri": spec.get("path")}
        for name, spec in (record.get("outputs") or {}).items()
    }
    return {
        "id": f"{base_url}/jobs/{record['name']}",
        "name": record["name"],
        "type": JOB_TYPE,
        "properties": {
            "status": record["status"],
            "jobType": "Pipeline" if record.get("type") == "pipeline" else "BatchScoring",
            "displayName": record.get("display_name"),
            "experimentName": record.get("experiment_name"),
            "endpointName": record.get("endpoint_name"),
            "deploymentName": record.get("deployment_name"),
            "model": record.get("model"),
            "InputData": inputs,
            "OutputData": outputs,
            "outputFile": record.get("output_file"),
            "miniBatchSize": settings.get("mini_batch_size"),
            "errorThreshold": settings.get("error_threshold"),
            "outputFileName": settings.get("output_file_name"),
            "retrySettings": {"maxRetries": retry.get("max_retries"), "timeout": retry.get("timeout")},
            "compute": {"instanceCount": settings.get("instance_count"), "target": record.get("compute")},
            "counts": record.get("counts"),
            "error": bounded_error(record.get("error")),
            "startTime": record.get("start_time"),
            "endTime": record.get("end_time"),
            "tags": record.get("tags") or {},
            "description": record.get("description"),
            "services": {"Studio": {"endpoint": f"{base_url}/studio/jobs/{record['name']}"}},
        },
        "systemData": {"createdAt": record.get("created_at")},
    }
