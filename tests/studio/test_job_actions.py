"""The job page's actions against a real `batchctl serve`: failed items grouped by error, Resume and Cancel
(each a form with the session's CSRF token; without it the POST is refused and changes nothing). Jobs are
started through the Create job form, so they run in the server's queue, with a custom scoring script whose
behaviour each input file chooses."""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from studio_helpers import StudioServer, csrf_of

from batchctl import api
from batchctl.jobs.runner import CANCEL_MARKER
from batchctl.workspace import Workspace
from support.waiting import wait_for

pytestmark = pytest.mark.slow

ENDPOINT = "actions"
JOB_SECONDS = 300  # a job on a shared, slow machine: generous, but every wait is bounded
GATE_SECONDS = 300  # the script's own bound on a gate the test never opens

# Each input file holds one command: `ok` scores it, `value` and `key` fail it (ValueError("bad row 7"),
# KeyError('age')), `gate` marks $STATE_DIR/reached/<pid> and blocks until $STATE_DIR/gate exists.
SCRIPT = textwrap.dedent(
    """
    import os
    import time

    STATE = os.environ["STATE_DIR"]


    def init():
        pass


    def run(mini_batch):
        rows = []
        for path in mini_batch:
            with open(path) as handle:
                command = handle.read().strip()
            if command == "value":
                raise ValueError("bad row 7")
            if command == "key":
                {}["age"]
            if command == "gate":
                os.makedirs(os.path.join(STATE, "reached"), exist_ok=True)
                open(os.path.join(STATE, "reached", str(os.getpid())), "w").close()
                deadline = time.monotonic() + GATE_SECONDS
                while not os.path.exists(os.path.join(STATE, "gate")):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the gate was never opened")
                    time.sleep(0.05)
            rows.append(os.path.basename(path) + "," + command)
        return rows
    """
).replace("GATE_SECONDS", str(GATE_SECONDS))


class ScriptWorkspace:
    """A workspace with endpoint `actions`, a custom-script deployment `custom` (mini_batch_size 1, no
    retries) and the data asset `items` (a local folder whose files hold the script's commands)."""

    def __init__(self, tmp_path: Path, error_threshold: int, commands: dict[str, str]) -> None:
        self.root = tmp_path / "ws"  # the BATCHCTL_HOME of tests/conftest.py's isolation
        self.ws = Workspace(self.root)
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.data = tmp_path / "items"
        self.data.mkdir()
        for name, command in commands.items():
            self.write(name, command)
        code = tmp_path / "code"
        code.mkdir()
        (code / "score.py").write_text(SCRIPT)
        model = tmp_path / "weights"
        model.mkdir()
        (model / "weights.txt").write_text("w=1\n")
        spec = {
            "name": "custom",
            "endpoint_name": ENDPOINT,
            "type": "model",
            "model": {"path": str(model), "type": "custom_model", "name": "weights"},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
            "settings": {
                "mini_batch_size": 1,
                "max_concurrency_per_instance": 1,
                "error_threshold": error_threshold,
                "retry_settings": {"max_retries": 0, "timeout": 120},
                "environment_variables": {"STATE_DIR": str(self.state)},
            },
        }
        (tmp_path / "deployment.yml").write_text(json.dumps(spec))  # JSON is YAML
        api.create_endpoint(self.ws, name=ENDPOINT)
        api.create_deployment(self.ws, str(tmp_path / "deployment.yml"))
        api.create_data(self.ws, name="items", type="uri_folder", path=str(self.data))

    def write(self, name: str, command: str) -> None:
        (self.data / name).write_text(command + "\n")

    def output_file(self, job: str) -> Path:
        """Where the job publishes its results file (job.json's internal output_file_location)."""
        record = json.loads((self.root / "jobs" / job / "job.json").read_text())
        location = record["output_file_location"]
        assert location["protocol"] == "file", location
        return Path(location["url"])


def serve(tmp_path: Path, error_threshold: int, commands: dict[str, str]) -> tuple[ScriptWorkspace, StudioServer]:
    workspace = ScriptWorkspace(tmp_path, error_threshold, commands)
    return workspace, StudioServer(workspace)  # type: ignore[arg-type]  # it needs .root only


@pytest.fixture
def servers() -> Iterator[list[StudioServer]]:
    started: list[StudioServer] = []
    yield started
    for server in started:
        server.kill()


def submit(client: httpx.Client) -> str:
    """Create job on the endpoint's page (dataset `items`, latest version); returns the job's name."""
    form = client.get(f"/studio/endpoints/{ENDPOINT}/jobs/new")
    assert form.status_code == 200
    posted = client.post(
        f"/studio/endpoints/{ENDPOINT}/jobs/new",
        data={
            "csrf": csrf_of(form.text),
            "deployment": "custom",
            "input_kind": "data",
            "data_asset": "items",
            "data_version": "",
            "input_type": "uri_folder",
        },
    )
    assert posted.status_code == 303, posted.text
    location = posted.headers["location"]
    assert location.startswith("/studio/jobs/")
    return location.removeprefix("/studio/jobs/")


def ended(ws: Workspace, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: (job := api.get_job(ws, name))["status"] in ("Completed", "Failed", "Canceled") and job,
        JOB_SECONDS,
        f"job {name} to end",
    )


def action_form(html: str, action: str) -> str | None:
    """The <form> posting to `action`, or None."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S)
    return match.group(1) if match else None


class _Cells(HTMLParser):
    """The text of each table row's cells inside the "Failed items by error" section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.section = False
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self.section = ("id", "failed-h") in attrs
        elif self.section and tag == "tr":
            self.rows.append([])
        elif self.section and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.section and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "section":
            self.section = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def failed_table(html: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(html)
    return parser.rows


def section(html: str, heading_id: str) -> str:
    match = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    assert match, f"the page has no section {heading_id}"
    return match.group(1)


# ------------------------------------------------------------------------------------ failed items by error


def test_failed_items_are_grouped_by_error_on_the_job_page(tmp_path: Path, servers: list[StudioServer]) -> None:
    tricky = "v-<img src=x onerror=alert(1)>.txt"  # a file name is user text too
    commands = {
        "ok-0.txt": "ok",
        "ok-1.txt": "ok",
        "v-a.txt": "value",
        "v-b.txt": "value",
        tricky: "value",
        "k-a.txt": "key",
        "k-b.txt": "key",
    }
    workspace, server = serve(tmp_path, -1, commands)
    servers.append(server)
    with server.session_client() as client:
        name = submit(client)
        job = ended(workspace.ws, name)
        assert job["status"] == "Completed", job.get("error")
        assert job["counts"]["items_succeeded"] == 2 and job["counts"]["items_failed"] == 5
        response = client.get(f"/studio/jobs/{name}")
    assert response.status_code == 200
    html = response.text
    assert "Failed items by error" in html
    header, *rows = failed_table(html)
    assert header == ["Error", "Items", "Examples", "Where"]
    assert len(rows) == 2, rows
    by_type = {row[0].split(":", 1)[0]: row for row in rows}
    assert set(by_type) == {"ValueError", "KeyError"}
    value, key = by_type["ValueError"], by_type["KeyError"]
    assert rows[0] is value  # the largest group first
    assert value[0] == "ValueError: bad row 7" and value[1] == "3"  # one real message, not "bad row N"
    assert set(value[2].split(", ")) == {"v-a.txt", "v-b.txt", tricky}
    assert re.fullmatch(r"score\.py:\d+", value[3]), value[3]
    assert key[0] == "KeyError: 'age'" and key[1] == "2"
    assert set(key[2].split(", ")) == {"k-a.txt", "k-b.txt"}
    assert re.fullmatch(r"score\.py:\d+", key[3]) and key[3] != value[3], key[3]
    # the page shows what api.job_errors says (as `batchctl job errors`)
    groups = api.job_errors(workspace.ws, name)
    assert [(g["type"], g["count"], set(g["samples"])) for g in groups] == [
        ("ValueError", 3, {"v-a.txt", "v-b.txt", tricky}),
        ("KeyError", 2, {"k-a.txt", "k-b.txt"}),
    ]
    assert {g["example"] for g in groups} == {"bad row 7", "'age'"}
    # user text is escaped: the file name and the quoted key never reach the page as markup
    table = section(html, "failed-h")
    assert "<img src=x" not in html
    assert "v-&lt;img src=x onerror=alert(1)&gt;.txt" in table
    assert "<code>KeyError</code>: &#39;age&#39;" in table
    # a Completed job: Download, neither Cancel nor Resume
    assert 'id="download"' in html
    assert action_form(html, f"/studio/jobs/{name}/cancel") is None
    assert action_form(html, f"/studio/jobs/{name}/resume") is None


# ------------------------------------------------------------------------------------ resume


def test_resume_continues_a_failed_job_under_its_name(tmp_path: Path, servers: list[StudioServer]) -> None:
    commands = {"ok-0.txt": "ok", "ok-1.txt": "ok", "ok-2.txt": "ok", "broken.txt": "value"}
    workspace, server = serve(tmp_path, 0, commands)
    servers.append(server)
    with server.session_client() as client:
        name = submit(client)
        job = ended(workspace.ws, name)
        assert job["status"] == "Failed" and job["attempts"] == 1, job
        assert "error_threshold" in json.dumps(job["error"])
        page = client.get(f"/studio/jobs/{name}").text
        form = action_form(page, f"/studio/jobs/{name}/resume")
        assert form is not None, "a Failed job shows Resume"
        assert '<input type="hidden" name="csrf" value="' in form and ">Resume</button>" in form
        assert action_form(page, f"/studio/jobs/{name}/cancel") is None
        csrf = csrf_of(form)
        output = workspace.output_file(name)
        assert not output.exists()

        workspace.write("broken.txt", "ok")  # fix the input

        # without the token (or with another) the POST is refused and changes nothing
        for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
            refused = client.post(f"/studio/jobs/{name}/resume", data=data)
            assert refused.status_code == 403 and "CSRF" in refused.text
        time.sleep(2)  # a resume would have queued the job at once
        after = api.get_job(workspace.ws, name)
        assert after["status"] == "Failed" and after["attempts"] == 1 and after["history"] == []
        assert after["end_time"] == job["end_time"]
        assert not output.exists()

        resumed = client.post(f"/studio/jobs/{name}/resume", data={"csrf": csrf})
        assert resumed.status_code == 303 and resumed.headers["location"] == f"/studio/jobs/{name}"
        assert [j["name"] for j in api.list_jobs(workspace.ws)] == [name]  # the same job, no new one

        def completed() -> dict[str, Any] | None:
            status = client.get(f"/studio/jobs/{name}/status.json")
            assert status.status_code == 200
            row = status.json()
            assert row["status"] in ("Queued", "Running", "Completed"), row
            return row if row["status"] == "Completed" else None

        row = wait_for(completed, JOB_SECONDS, f"resumed job {name} to complete")
        assert row["name"] == name and row["failed"] == 0
        job = api.get_job(workspace.ws, name)
        assert job["status"] == "Completed" and job["attempts"] == 2, job
        assert [h["status"] for h in job["history"]] == ["Failed"]
        lines = output.read_text().splitlines()
        assert sorted(line.split(",")[0] for line in lines) == sorted(commands), lines
        assert all(line.endswith(",ok") for line in lines), lines
        downloaded = api.download_job(workspace.ws, name, "score", str(tmp_path / "dl"))
        assert Path(downloaded["files"][0]).read_text() == output.read_text()
        page = client.get(f"/studio/jobs/{name}").text
    assert 'id="download"' in page and action_form(page, f"/studio/jobs/{name}/resume") is None
    # broken.txt was fixed and scored: it is no longer a failed item of this job
    assert job["counts"]["items_failed"] == 0, job["counts"]
    assert api.job_errors(workspace.ws, name) == []
    assert "No failed item." in section(page, "failed-h")


# ------------------------------------------------------------------------------------ cancel


def test_cancel_stops_a_running_job_and_publishes_nothing(tmp_path: Path, servers: list[StudioServer]) -> None:
    workspace, server = serve(tmp_path, -1, {"a-ok.txt": "ok", "b-gate.txt": "gate", "c-ok.txt": "ok"})
    servers.append(server)
    reached = workspace.state / "reached"
    try:
        with server.session_client() as client:
            name = submit(client)
            wait_for(lambda: reached.is_dir() and any(reached.iterdir()), JOB_SECONDS, "run() to block on the gate")
            worker = int(next(reached.iterdir()).name)
            assert api.get_job(workspace.ws, name)["status"] == "Running"
            page = client.get(f"/studio/jobs/{name}").text
            form = action_form(page, f"/studio/jobs/{name}/cancel")
            assert form is not None, "a Running job shows Cancel"
            assert '<input type="hidden" name="csrf" value="' in form and ">Cancel</button>" in form
            assert action_form(page, f"/studio/jobs/{name}/resume") is None
            csrf = csrf_of(form)

            for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")}):
                refused = client.post(f"/studio/jobs/{name}/cancel", data=data)
                assert refused.status_code == 403 and "CSRF" in refused.text
            time.sleep(2)  # a cancel would have stopped the job by now
            assert api.get_job(workspace.ws, name)["status"] == "Running"
            assert not (workspace.root / "jobs" / name / CANCEL_MARKER).exists()
            assert _alive(worker)

            # the route waits for the job to stop (api.cancel_job): give it more than the client's 30 s
            canceled = client.post(f"/studio/jobs/{name}/cancel", data={"csrf": csrf}, timeout=JOB_SECONDS)
            assert canceled.status_code == 303 and canceled.headers["location"] == f"/studio/jobs/{name}"
            job = wait_for(
                lambda: (j := api.get_job(workspace.ws, name))["status"] != "Running" and j,
                JOB_SECONDS,
                f"job {name} to stop",
            )
            assert job["status"] == "Canceled", job
            assert client.get(f"/studio/jobs/{name}/status.json").json()["status"] == "Canceled"
            page = client.get(f"/studio/jobs/{name}").text
        assert action_form(page, f"/studio/jobs/{name}/cancel") is None
        assert 'id="download"' not in page
        assert action_form(page, f"/studio/jobs/{name}/resume") is not None  # a Canceled job can continue
        # nothing published, and the blocked worker was stopped
        assert not workspace.output_file(name).exists()
        assert job["counts"]["items_succeeded"] <= 1  # a-ok.txt at most, never published
        wait_for(lambda: not _alive(worker), 60, f"worker {worker} to stop")
    finally:
        (workspace.state / "gate").touch()  # never leave a worker blocked, whatever happened


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
