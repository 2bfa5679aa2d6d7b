"""Azure's invocation API (`POST {scoring_uri}` with the deployment header, then polling the job) and
batchctl's own start route, through which the CLI hands over a job it submitted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel

from batchctl import api
from batchctl.errors import NotFoundError
from batchctl.server import rest
from batchctl.server.state import ServerState, require_token, server_state

router = APIRouter(dependencies=[Depends(require_token)])


class StartBody(BaseModel):
    runner_pid: int | None = None
    # the caller's values of the `${env:NAME}` variables the job's deployment refers to (the CLI's
    # hand-over): the job reads them instead of the server's environment; kept in memory only
    environment: dict[str, str] | None = None


@router.post("/endpoints/{endpoint}/jobs", tags=["jobs"])
def invoke(
    endpoint: str,
    body: rest.InvokeBody,
    azureml_model_deployment: str | None = Header(None, alias="azureml-model-deployment"),
    state: ServerState = Depends(server_state),
) -> dict[str, Any]:
    """Start a batch scoring job (Azure's invocation API; the header picks a deployment); on a pipeline
    deployment, a pipeline job with the body's named inputs (Literal ones too) and outputs."""
    state.queue.check_accepting()
    ws = state.ws
    record = api.get_endpoint(ws, endpoint)  # 404 before anything else
    roots = rest.allowed_roots(ws, state.settings.allow_paths)
    if api.is_pipeline_deployment(ws, record["name"], azureml_model_deployment or None):
        options = rest.pipeline_options(ws, record["name"], azureml_model_deployment or None, body, roots)
        job = api.invoke_pipeline(ws, **options)
    else:
        request = rest.submit_request(ws, record["name"], azureml_model_deployment or None, body, roots)
        job = api.submit_job(ws, request)
    state.queue.submit(job["name"])
    return rest.job_resource(api.get_job(ws, job["name"]), state.url)


@router.get("/endpoints/{endpoint}/jobs", tags=["jobs"])
def list_endpoint_jobs(endpoint: str, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """The endpoint's jobs, oldest first."""
    record = api.get_endpoint(state.ws, endpoint)
    return {"value": [rest.job_resource(j, state.url) for j in api.list_jobs(state.ws, record["name"])]}


@router.get("/endpoints/{endpoint}/jobs/{name}", tags=["jobs"])
def get_endpoint_job(endpoint: str, name: str, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """One of the endpoint's jobs (`{scoring_uri}/{job}`, as Azure polls it)."""
    record = api.get_endpoint(state.ws, endpoint)
    job = api.get_job(state.ws, name)
    if job["endpoint_name"] != record["name"]:
        raise NotFoundError(f"job '{name}' not found in endpoint '{record['name']}'")
    return rest.job_resource(job, state.url)


@router.get("/jobs/{name}", tags=["jobs"])
def get_job(name: str, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """A job: `properties.status` is Queued, Running, Completed, Failed or Canceled (Skipped: a pipeline step)."""
    return rest.job_resource(api.get_job(state.ws, name), state.url)


@router.post("/jobs/{name}/cancel", tags=["jobs"])
def cancel_job(name: str, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """Cancel a job: a queued one never starts; a running one stops its workers and publishes nothing."""
    api.get_job(state.ws, name)
    state.queue.withdraw(name)
    return rest.job_resource(api.cancel_job(state.ws, name), state.url)


@router.post("/jobs/{name}/start", tags=["batchctl"])
def start_job(name: str, body: StartBody, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    """batchctl's own: run a Queued job that the CLI submitted (`endpoint invoke` with a server running)."""
    state.queue.check_accepting()
    api.adopt_job(state.ws, name, body.runner_pid)
    state.queue.submit(name, body.environment)
    return rest.job_resource(api.get_job(state.ws, name), state.url)
