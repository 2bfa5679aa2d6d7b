"""REST invocation of a pipeline deployment with Azure's body (named inputs, a Literal among them, a named
output), on the server's app in this process, polled to Completed; the job resource shows the literal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchctl.workspace import Workspace

HELLO = """\
import argparse, pathlib
p = argparse.ArgumentParser()
p.add_argument("--data"); p.add_argument("--greeting"); p.add_argument("--times", type=int); p.add_argument("--out")
a = p.parse_args()
names = sorted(f.name for f in pathlib.Path(a.data).iterdir())
(pathlib.Path(a.out) / "hello.txt").write_text(f"{a.greeting} x{a.times}: {names}\\n")
"""


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def app(cli: Any, tmp_path: Path, isolation: Path) -> Iterator[tuple[Any, str, Path]]:
    import warnings

    root = tmp_path / "hello"
    write(root / "src" / "hello.py", HELLO)
    write(
        root / "deployment.yml",
        {
            "name": "hello-dpl",
            "endpoint_name": "hello-rest",
            "type": "pipeline",
            "component": {
                "name": "hello_rest",
                "inputs": {
                    "data": {"type": "uri_folder"},
                    "greeting": {"type": "string"},
                    "times": {"type": "integer", "default": 1},
                },
                "outputs": {"greetings": {"type": "uri_folder"}},
                "jobs": {
                    "say": {
                        "type": "command",
                        "component": {
                            "code": "src",
                            "inputs": {
                                "data": {"type": "uri_folder"},
                                "greeting": {"type": "string"},
                                "times": {"type": "integer"},
                            },
                            "outputs": {"out": {"type": "uri_folder"}},
                            "command": "python hello.py --data ${{inputs.data}} --greeting ${{inputs.greeting}} "
                            "--times ${{inputs.times}} --out ${{outputs.out}}",
                        },
                        "inputs": {
                            "data": "${{parent.inputs.data}}",
                            "greeting": "${{parent.inputs.greeting}}",
                            "times": "${{parent.inputs.times}}",
                        },
                        "outputs": {"out": "${{parent.outputs.greetings}}"},
                    }
                },
            },
        },
    )
    assert cli("endpoint", "create", "-n", "hello-rest").exit_code == 0
    made = cli("deployment", "create", "--endpoint-name", "hello-rest", "-f", str(root / "deployment.yml"))
    assert made.exit_code == 0, made.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from batchctl.server.app import create_app
    from batchctl.server.auth import load_key, mint
    from batchctl.server.state import ServerSettings, build_state

    ws = Workspace(isolation)
    allowed = tmp_path / "allowed"
    state = build_state(ws, ServerSettings(idle_timeout=0, shutdown_timeout=5, allow_paths=[str(allowed)]), "http://t")
    token = mint(load_key(ws))["accessToken"]
    application = create_app(state)
    with TestClient(application, base_url="http://t") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.app_state = application.state  # type: ignore[attr-defined]  # the Studio's one-time logins
        yield client, "hello-rest", allowed


def test_rest_invocation_of_a_pipeline_deployment_with_literal_inputs(app: tuple[Any, str, Path]) -> None:
    client, endpoint, allowed = app
    data = allowed / "data"
    data.mkdir(parents=True)
    (data / "a.csv").write_text("x\n")
    body = {
        "properties": {
            "InputData": {
                "data": {"JobInputType": "UriFolder", "Uri": str(data)},
                "greeting": {"JobInputType": "Literal", "Value": "bonjour"},
                "times": {"JobInputType": "Literal", "Value": 3},
            },
            "OutputData": {"greetings": {"JobOutputType": "UriFolder", "Uri": str(allowed / "out")}},
        }
    }
    response = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["properties"]["jobType"] == "Pipeline"
    assert job["properties"]["InputData"]["greeting"] == {"JobInputType": "Literal", "Value": "bonjour"}
    deadline = time.monotonic() + 60
    while True:
        polled = client.get(f"/jobs/{job['name']}").json()
        if polled["properties"]["status"] not in ("Queued", "Running") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert polled["properties"]["status"] == "Completed", polled["properties"]["error"]
    assert (allowed / "out" / "hello.txt").read_text() == "bonjour x3: ['a.csv']\n"
    studio_pages(client, job["name"])


def studio_pages(client: Any, name: str) -> None:
    """The Studio's job page lists the steps with their status and a link to each step's log; a step's
    page links back to its pipeline."""
    import re

    assert client.get(f"/studio/login?token={client.app_state.studio.issue_login()}").status_code == 200
    page = client.get(f"/studio/jobs/{name}").text
    row = re.search(r'<tr data-step="say">(.*?)</tr>', page, re.S)
    assert row, page
    assert 'class="status s-completed">Completed<' in row.group(1)
    assert f'href="/studio/jobs/{name}-say/logs/user/std_log.txt"' in row.group(1)
    assert "<dt>Input greeting (literal)</dt><dd>bonjour</dd>" in page
    step_page = client.get(f"/studio/jobs/{name}-say").text
    assert f'of pipeline job <a href="/studio/jobs/{name}">{name}</a>' in step_page
    assert "--greeting bonjour --times 3" in step_page
    log = client.get(f"/studio/jobs/{name}-say/logs/user/std_log.txt?raw=1")
    assert log.status_code == 200


def test_rest_refuses_a_path_outside_the_allowed_roots(app: tuple[Any, str, Path], tmp_path: Path) -> None:
    client, endpoint, _allowed = app
    body = {
        "properties": {
            "InputData": {
                "data": {"JobInputType": "UriFolder", "Uri": str(tmp_path)},
                "greeting": {"JobInputType": "Literal", "Value": "hi"},
            }
        }
    }
    response = client.post(f"/endpoints/{endpoint}/jobs", json=body)
    assert response.status_code == 403, response.text
    assert "InputData.data" in response.json()["error"]["message"]
