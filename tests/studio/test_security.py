"""Studio security: sessions from the one-time login URL only, CSRF on every form POST, user text escaped
(in process, the app `batchctl serve` builds), log views confined to the job's folder (a real server)."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from studio_helpers import ExampleWorkspace, InProcessStudio, StudioServer, csrf_of

from batchctl import api


def _endpoint(example: ExampleWorkspace, description: str = "d") -> None:
    api.create_endpoint(example.ws, name="heart", description=description)


def test_pages_need_a_session_from_the_one_time_login(studio: InProcessStudio, example: ExampleWorkspace) -> None:
    _endpoint(example)
    with studio.client() as anon:
        page = anon.get("/studio/endpoints/heart")
        assert page.status_code == 303 and page.headers["location"] == "/studio/login-needed"
        told = anon.get("/studio/login-needed")
        assert told.status_code == 401 and "one-time login URL" in told.text and "batchctl serve" in told.text
        assert anon.get("/studio/endpoints/heart/runs.json").status_code == 401
        posted = anon.post("/studio/endpoints/heart/delete", data={"csrf": "x"})
        assert posted.status_code == 401
        forged = anon.get("/studio/endpoints", cookies={"batchctl_studio": "forged"})
        assert forged.status_code == 303
        # the REST API keeps its bearer tokens: a session is not one
        assert anon.get("/health").status_code == 401
    assert api.get_endpoint(example.ws, "heart")["name"] == "heart"

    path = studio.login_url.replace(studio.url, "")
    with studio.client() as first:
        granted = first.get(path)
        assert granted.status_code == 303 and granted.headers["location"] == "/studio/"
        cookie = granted.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/studio" in cookie
        assert first.get("/studio/endpoints").status_code == 200
    with studio.client() as second:
        again = second.get(path)  # single use
        assert again.status_code == 303 and again.headers["location"].startswith("/studio/login-needed")
        assert second.get("/studio/endpoints").status_code == 303
        assert second.get("/studio/login?token=made-up").headers["location"].startswith("/studio/login-needed")


def test_a_form_post_without_the_csrf_token_is_refused(studio: InProcessStudio, example: ExampleWorkspace) -> None:
    _endpoint(example)
    with studio.session_client() as client:
        csrf = csrf_of(client.get("/studio/endpoints/heart/delete").text)
        for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
            refused = client.post("/studio/endpoints/heart/delete", data=data)
            assert refused.status_code == 403 and "CSRF" in refused.text
        assert api.get_endpoint(example.ws, "heart")["name"] == "heart"  # nothing deleted
        done = client.post("/studio/endpoints/heart/delete", data={"csrf": csrf})
        assert done.status_code == 303
    assert api.list_endpoints(example.ws) == []


@pytest.mark.slow  # a real server: http.client sends the path as written, which an in-process client would not
def test_log_views_cannot_leave_the_jobs_log_folder(
    server: StudioServer, example: ExampleWorkspace, tmp_path: Path
) -> None:
    _endpoint(example)
    deployment = tmp_path / "d.yml"
    deployment.write_text("name: blue\nendpoint_name: heart\nmodel: azureml:heart-classifier:1\n")
    api.create_deployment(example.ws, str(deployment))
    job = api.submit_job(example.ws, api.JobRequest(endpoint="heart", input="azureml:heart-unlabeled:1"))
    log_dir = example.root / "jobs" / job["name"] / "logs"
    (log_dir / "sys").mkdir(parents=True, exist_ok=True)
    (log_dir / "sys" / "master_role.txt").write_text("the driver log\n")
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    with server.session_client() as client:
        cookie = client.cookies.get("batchctl_studio")
        ok = client.get(f"/studio/jobs/{job['name']}/logs/sys/master_role.txt")
        assert ok.status_code == 200 and "the driver log" in ok.text
    base = f"/studio/jobs/{job['name']}/logs/"
    attempts = [
        "../job.json",
        "sys/../../job.json",
        "%2e%2e/job.json",
        "%2e%2e%2fjob.json",
        "..%2f..%2f..%2fsecret.txt",
        "%252e%252e%252fjob.json",
        "%252e%252e%252f%252e%252e%252f%252e%252e%252fsecret.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "..%5c..%5cjob.json",
    ]
    parts = urlsplit(server.url)
    for attempt in attempts:
        # http.client sends the path as written (httpx and browsers would normalise the dots away)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.request("GET", base + attempt, headers={"Cookie": f"batchctl_studio={cookie}"})
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        assert response.status in (404, 400), (attempt, response.status)
        assert "TOP SECRET" not in body and '"endpoint_name"' not in body and "root:" not in body, attempt


def test_user_text_is_escaped(studio: InProcessStudio, example: ExampleWorkspace) -> None:
    _endpoint(example, description='<script>alert("x")</script><img src=x onerror=alert(1)>')
    with studio.session_client() as client:
        for path in ("/studio/endpoints", "/studio/endpoints/heart", "/studio/endpoints/heart/delete"):
            html = client.get(path).text
            assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in client.get("/studio/endpoints/heart").text
        headers = client.get("/studio/endpoints").headers
        assert "default-src 'self'" in headers["content-security-policy"]
