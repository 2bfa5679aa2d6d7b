"""Azure's invocation API on a real `batchctl serve` (uvicorn on 127.0.0.1), called with httpx: invoke with
Azure's body, poll to Completed, correct predictions; every auth failure (401), forbidden paths (403), bad
bodies (400), unknown endpoint/deployment/job (404), an existing output (409), cancel. One server for the
module: its warm pool keeps the later jobs fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import Server, Workspace, body, heart_folder, wait_for, wait_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(served: tuple[Workspace, Server]) -> Iterator[httpx.Client]:
    with served[1].client() as c:
        yield c


def error_of(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    assert set(data) == {"error"}, data
    assert {"code", "message"} <= set(data["error"]), data
    return data["error"]


def test_invoke_with_azure_body_polls_to_completed_with_correct_predictions(served, client, reference):
    ws, server = served
    data = heart_folder(ws.allowed / "data-ok", files=3, rows=7)
    out = ws.allowed / "out-ok"
    response = client.post("/endpoints/heart/jobs", json=body(str(data), output=str(out)))
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["type"] == "Microsoft.MachineLearningServices/workspaces/jobs"
    assert job["id"] == f"{server.url}/jobs/{job['name']}"
    assert job["properties"]["status"] in ("Queued", "Running")
    assert job["properties"]["deploymentName"] == "blue"
    final = wait_job(client, job["name"])
    assert final["properties"]["status"] == "Completed", final["properties"]["error"]
    assert final["properties"]["counts"]["items_succeeded"] == 3
    expected = [row for p in sorted(data.iterdir()) for row in reference(p)]
    assert (out / "predictions.csv").read_text().splitlines() == expected
    # the same job.json the CLI reads
    shown = subprocess.run(
        [sys.executable, "-m", "batchctl", "--workspace", str(ws.root), "job", "show", "-n", job["name"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["status"], record["runner"]["pid"]) == ("Completed", server.pid)
    # Azure's other ways to read it: {scoring_uri}/{job} and the endpoint's job list
    assert client.get(f"/endpoints/heart/jobs/{job['name']}").json()["properties"]["status"] == "Completed"
    listed = [j["name"] for j in client.get("/endpoints/heart/jobs").json()["value"]]
    assert job["name"] in listed


def test_deployment_header_file_input_and_overrides(served, client, reference):
    ws, _ = served
    data = heart_folder(ws.allowed / "data-one", files=1, rows=5, seed=40)
    target = data / "part-000.csv"
    response = client.post(
        "/endpoints/heart/jobs",
        json=body(
            str(target),
            kind="UriFile",
            name="named-job-1",
            outputFileName="scores.csv",
            miniBatchSize=3,
            envManager="local",
        ),  # fmt: skip
        headers={"azureml-model-deployment": "blue"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "named-job-1"
    final = wait_job(client, "named-job-1")
    props = final["properties"]
    assert (props["status"], props["outputFileName"], props["miniBatchSize"]) == ("Completed", "scores.csv", 3)
    assert props["InputData"]["input_data"]["JobInputType"] == "UriFile"
    job = json.loads((ws.root / "jobs" / "named-job-1" / "job.json").read_text())
    assert (job["environment"]["manager"], job["environment"]["used"]) == ("local", "local")
    default_out = ws.root / "datastores" / "workspaceblobstore" / "heart" / "named-job-1" / "scores.csv"
    assert default_out.read_text().splitlines() == reference(target)


def test_datastore_and_azure_resource_ids_are_accepted(served, client, reference):
    ws, _ = served
    store = ws.root / "datastores" / "workspaceblobstore" / "inputs"
    heart_folder(store, files=2, rows=3, seed=60)
    arm = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/w"
    store_id = f"{arm}/datastores/workspaceblobstore"
    response = client.post(
        "/endpoints/heart/jobs",
        json=body(f"{store_id}/paths/inputs", output=f"{store_id}/paths/o1"),
    )
    assert response.status_code == 200, response.text
    final = wait_job(client, response.json()["name"])
    assert final["properties"]["status"] == "Completed", final["properties"]["error"]
    out = ws.root / "datastores" / "workspaceblobstore" / "o1" / "predictions.csv"
    assert out.read_text().splitlines() == [r for p in sorted(store.iterdir()) for r in reference(p)]


def test_health_openapi_and_endpoint_show(served, client):
    ws, server = served
    health = client.get("/health").json()
    assert (health["status"], health["pid"], health["url"]) == ("ok", server.pid, server.url)
    from batchctl import api

    shown = api.get_endpoint(ws.ws, "heart")
    assert shown["scoring_uri"] == f"{server.url}/endpoints/heart/jobs"
    assert shown["server"] == {"running": True, "url": server.url, "pid": server.pid}
    spec = client.get(shown["openapi_uri"].removeprefix(server.url))
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/endpoints/{endpoint}/jobs" in paths and "/jobs/{name}/cancel" in paths
    assert httpx.get(shown["openapi_uri"]).status_code == 401  # the document is behind the token too


def test_every_auth_failure_is_401(served, tmp_path):
    ws, server = served
    import jwt

    from batchctl.server.auth import load_key, mint
    from batchctl.workspace import Workspace as Ws

    key = load_key(ws.ws, create=False)
    expired = mint(key, 1)["accessToken"]
    other = mint(load_key(Ws(tmp_path / "other-ws")), 600)["accessToken"]
    claims = jwt.decode(server.token(), options={"verify_signature": False})
    forged = jwt.encode(claims, b"not-the-key-" * 4, algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    wrong_audience = jwt.encode({**claims, "aud": "batchctl:someone-else"}, key.secret, algorithm="HS256")
    time.sleep(1.5)
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {server.token()}"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "alg none": {"Authorization": f"Bearer {unsigned}"},
        "other workspace": {"Authorization": f"Bearer {other}"},
        "wrong audience": {"Authorization": f"Bearer {wrong_audience}"},
    }
    for case, headers in cases.items():
        for method, path in (("GET", "/health"), ("POST", "/endpoints/heart/jobs"), ("GET", "/jobs/x")):
            response = httpx.request(method, server.url + path, headers=headers, json=body("/x"), timeout=30)
            assert response.status_code == 401, (case, path, response.text)
            assert error_of(response)["code"] == "Unauthorized"
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert "expired" in error_of(httpx.get(server.url + "/health", headers=cases["expired"]))["message"]


def _jobs(ws: Workspace) -> list[str]:
    folder = ws.root / "jobs"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_local_paths_outside_allowed_roots_are_403(served, client, tmp_path):
    ws, _ = served
    outside = heart_folder(tmp_path / "outside", files=1)
    beside = heart_folder(ws.allowed.parent / "beside-403", files=1)  # exists, next to the allowed root
    (ws.allowed / "escape").unlink(missing_ok=True)
    os.symlink(outside, ws.allowed / "escape")
    cases = [
        body("/etc"),
        body(str(outside)),
        body(f"{ws.allowed}/../{beside.name}"),  # `..` out of the root, to a folder that exists
        body(str(ws.allowed / "escape")),  # a link inside the root that points out
        body(f"file://{outside}"),
        body(str(heart_folder(ws.allowed / "data-403", files=1)), output=str(tmp_path / "out")),
        body(str(ws.allowed / "data-403"), output=str(Path.home() / ".ssh" / "batchctl-test")),
    ]
    before = _jobs(ws)
    for case in cases:
        response = client.post("/endpoints/heart/jobs", json=case)
        assert response.status_code == 403, (case, response.text)
        assert error_of(response)["code"] == "Forbidden"
        assert "is not under a path this server may use" in error_of(response)["message"], response.text
    assert _jobs(ws) == before  # nothing queued
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "properties: Field required"),
        ({"properties": {}}, "properties.InputData: Field required"),
        ({"properties": {"InputData": {}}}, "exactly one input"),
        (body("/a") | {"x": 1}, "x: Extra inputs are not permitted"),
        ({"properties": {"InputData": {"a": {"JobInputType": "Literal", "Value": "1"}}}}, "JobInputType"),
        (
            {"properties": {"InputData": {k: {"JobInputType": "UriFolder", "Uri": "/a"} for k in "ab"}}},
            "exactly one input; this body names 2",
        ),
        (body("relative/path"), "must be absolute"),
        (body("local:///etc"), "not accepted over REST"),
        (body("simplecache::file:///etc/passwd"), "not accepted over REST"),
        (body("/a", OutputData={"other": {"Uri": "/b"}}), "'score'"),
        (body("/a", miniBatchSize=0), "miniBatchSize"),
        (body("/a", name="bad name!"), "name"),
    ],
)
def test_bad_bodies_are_400_with_azures_error_shape(served, client, payload, fragment):
    response = client.post("/endpoints/heart/jobs", json=payload)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "BadRequest"
    assert fragment in error["message"]


def test_not_json_is_400(served, client):
    response = client.post("/endpoints/heart/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "BadRequest"


def test_unknown_endpoint_deployment_and_job_are_404(served, client):
    ws, _ = served
    data = str(heart_folder(ws.allowed / "data-404", files=1))
    cases = [
        (client.post("/endpoints/nope/jobs", json=body(data)), "endpoint 'nope' not found"),
        (
            client.post("/endpoints/heart/jobs", json=body(data), headers={"azureml-model-deployment": "green"}),
            "deployment 'green' not found",
        ),
        (client.get("/jobs/no-such-job"), "job 'no-such-job' not found"),
        (client.post("/jobs/no-such-job/cancel"), "job 'no-such-job' not found"),
        (client.get("/endpoints/nope/jobs"), "endpoint 'nope' not found"),
        (client.get("/no/such/route"), "Not Found"),
    ]
    for response, fragment in cases:
        assert response.status_code == 404, response.text
        error = error_of(response)
        assert error["code"] == "NotFound"
        assert fragment in error["message"]


def test_existing_output_and_taken_job_name_are_409(served, client):
    ws, _ = served
    data = str(heart_folder(ws.allowed / "data-409", files=1))
    out = ws.allowed / "out-409"
    out.mkdir()
    (out / "predictions.csv").write_text("keep me\n")
    response = client.post("/endpoints/heart/jobs", json=body(data, output=str(out)))
    assert response.status_code == 409, response.text
    assert error_of(response)["code"] == "Conflict"
    assert (out / "predictions.csv").read_text() == "keep me\n"
    first = client.post("/endpoints/heart/jobs", json=body(data, name="same-name"))
    assert first.status_code == 200
    again = client.post("/endpoints/heart/jobs", json=body(data, name="same-name"))
    assert again.status_code == 409
    assert "already exists" in error_of(again)["message"]
    wait_job(client, "same-name")


def test_cancel_running_and_queued_jobs(served, client):
    ws, _ = served
    slow = ws.commands("slow-cancel", {"a.txt": "sleep 30", "b.txt": "ok"})
    headers = {"azureml-model-deployment": "script"}
    running = client.post("/endpoints/heart/jobs", json=body(str(slow), name="cancel-running"), headers=headers)
    queued = client.post("/endpoints/heart/jobs", json=body(str(slow), name="cancel-queued"), headers=headers)
    assert (running.status_code, queued.status_code) == (200, 200)
    wait_job(client, "cancel-running", states=("Running",), timeout=120)
    wait_for(lambda: (ws.root / "jobs" / "cancel-running" / "logs" / "user" / "stdout").is_dir(), 60, "a worker")
    started = time.monotonic()
    canceled_queued = client.post("/jobs/cancel-queued/cancel")
    assert canceled_queued.status_code == 200
    assert canceled_queued.json()["properties"]["status"] == "Canceled"
    canceled = client.post("/jobs/cancel-running/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["properties"]["status"] == "Canceled"
    assert time.monotonic() - started < 20  # not the 30 s the script sleeps
    default_out = ws.root / "datastores" / "workspaceblobstore" / "heart"
    assert not (default_out / "cancel-running").exists()  # nothing published
    assert not (default_out / "cancel-queued").exists()
    # canceling a finished job returns it as it is
    assert client.post("/jobs/cancel-running/cancel").json()["properties"]["status"] == "Canceled"
