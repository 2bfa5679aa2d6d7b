"""`job show --web`, `endpoint show --web`, `deployment show --web` (issue 18).

`batchctl serve` is built in parallel; its contract is `<workspace>/server.json` = {"url", "pid",
"start_ticks"} and Studio pages under `{url}/studio/...`. Here a real loopback HTTP server (http.server on
127.0.0.1, in this test process) stands in for it, and $BROWSER is a script that records the URL it is
given and fetches it from that server: Python's webbrowser honours $BROWSER."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from batchctl.processes import process_start_ticks

OLD_JOB = Path(__file__).resolve().parents[1] / "jobs" / "fixtures" / "job-v0.1.0"


class StudioStub:
    def __init__(self) -> None:
        self.paths: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                stub.paths.append(self.path)
                body = f"studio page {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def studio(home: Path) -> Iterator[StudioStub]:
    stub = StudioStub()
    home.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    (home / "server.json").write_text(
        json.dumps({"url": stub.url, "pid": pid, "start_ticks": process_start_ticks(pid), "host": "127.0.0.1"})
    )
    try:
        yield stub
    finally:
        stub.close()


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    """browser(exit_code) -> (env for run_batchctl, the file where the script records what it opened)."""

    def make(exit_code: int = 0) -> tuple[dict[str, str], Path]:
        record = tmp_path / f"browser-{exit_code}.log"
        script = tmp_path / f"browser-{exit_code}.py"
        script.write_text(
            f"#!{sys.executable}\n"
            "import sys, urllib.request\n"
            "url = sys.argv[1]\n"
            "body = urllib.request.urlopen(url, timeout=10).read().decode()\n"
            f"open({str(record)!r}, 'a').write(url + ' -> ' + body + '\\n')\n"
            f"sys.exit({exit_code})\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        empty_path = tmp_path / "no-browsers-on-path"
        empty_path.mkdir(exist_ok=True)
        # no other browser to fall back to: PATH holds none, and there is no display
        env = {"BROWSER": str(script), "PATH": str(empty_path), "DISPLAY": "", "WAYLAND_DISPLAY": ""}
        return env, record

    return make


@pytest.fixture
def old_job(home: Path) -> str:
    folder = home / "jobs" / "old-job"
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(OLD_JOB, folder)
    return "old-job"


def test_job_show_web_opens_the_studio_page_of_the_running_server(studio, browser, old_job, run_batchctl):
    env, opened = browser()
    result = run_batchctl("job", "show", "-n", old_job, "--web", "--query", "status", "-o", "tsv", env=env)
    page = f"{studio.url}/studio/jobs/old-job"
    assert (result.returncode, result.stdout) == (0, "Completed\n")
    assert result.stderr == f"Opened {page}\n"
    assert opened.read_text() == f"{page} -> studio page /studio/jobs/old-job\n"
    assert studio.paths == ["/studio/jobs/old-job"]


@pytest.mark.slow
def test_endpoint_and_deployment_show_web(studio, browser, run_batchctl, tmp_path, mlflow_model):
    env, opened = browser()
    assert run_batchctl("endpoint", "create", "-n", "Heart").returncode == 0
    spec = tmp_path / "d.yml"
    spec.write_text(
        json.dumps(
            {"name": "blue", "endpoint_name": "heart", "model": {"path": str(mlflow_model), "type": "mlflow_model"}}
        )
    )
    assert run_batchctl("deployment", "create", "-f", str(spec)).returncode == 0
    shown = run_batchctl("endpoint", "show", "-n", "heart", "--web", env=env)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["name"] == "heart"
    deployment = run_batchctl("deployment", "show", "-n", "blue", "-e", "heart", "--web", env=env)
    assert deployment.returncode == 0
    assert json.loads(deployment.stdout)["name"] == "blue"
    assert deployment.stderr == f"Opened {studio.url}/studio/endpoints/heart/deployments/blue\n"
    assert studio.paths == ["/studio/endpoints/heart", "/studio/endpoints/heart/deployments/blue"]
    assert opened.read_text().splitlines() == [
        f"{studio.url}/studio/endpoints/heart -> studio page /studio/endpoints/heart",
        f"{studio.url}/studio/endpoints/heart/deployments/blue -> studio page /studio/endpoints/heart/deployments/blue",
    ]


def test_when_the_browser_fails_the_url_is_printed(studio, browser, old_job, run_batchctl):
    env, opened = browser(exit_code=1)
    result = run_batchctl("job", "show", "-n", old_job, "--web", "--query", "name", "-o", "tsv", env=env)
    assert (result.returncode, result.stdout) == (0, "old-job\n")
    assert result.stderr == f"No browser could be started; open {studio.url}/studio/jobs/old-job\n"
    assert opened.read_text().count("\n") == 1  # it was tried once, and no other browser after it


def test_with_no_display_and_no_browser_the_url_is_printed_and_nothing_is_started(
    studio, browser, old_job, run_batchctl
):
    env, opened = browser()
    env["BROWSER"] = ""
    result = run_batchctl("job", "show", "-n", old_job, "--web", "--query", "name", "-o", "tsv", env=env)
    assert (result.returncode, result.stdout) == (0, "old-job\n")
    assert result.stderr == f"No browser could be started; open {studio.url}/studio/jobs/old-job\n"
    assert not opened.exists()
    assert studio.paths == []


def test_without_a_server_it_says_how_to_start_one(browser, old_job, run_batchctl, home):
    env, opened = browser()
    result = run_batchctl("job", "show", "-n", old_job, "--web", "--query", "name", "-o", "tsv", env=env)
    assert (result.returncode, result.stdout) == (0, "old-job\n")
    assert result.stderr == (
        "No batchctl server is running for this workspace; start one with `batchctl serve`, "
        "then open http://127.0.0.1:8765/studio/jobs/old-job\n"
    )
    assert not opened.exists()


def test_a_stale_server_file_counts_as_no_server(studio, browser, old_job, run_batchctl, home):
    # the recorded pid is alive but started at another time: a reused pid, not the server
    record = json.loads((home / "server.json").read_text())
    (home / "server.json").write_text(json.dumps({**record, "start_ticks": record["start_ticks"] + 1}))
    env, opened = browser()
    result = run_batchctl("job", "show", "-n", old_job, "--web", env=env)
    assert result.returncode == 0
    assert result.stderr.startswith("No batchctl server is running for this workspace;")
    assert not opened.exists()
    assert studio.paths == []
    (home / "server.json").write_text("{not json")
    unreadable = run_batchctl("job", "show", "-n", old_job, "--web", env=env)
    assert unreadable.returncode == 0
    assert unreadable.stderr.startswith("No batchctl server is running for this workspace;")


def test_show_web_of_a_missing_job_is_not_found_and_opens_nothing(studio, browser, run_batchctl):
    env, opened = browser()
    result = run_batchctl("job", "show", "-n", "ghost", "--web", env=env)
    assert result.returncode == 4
    assert result.stderr.startswith("Error: job 'ghost' not found")
    assert not opened.exists()
    assert studio.paths == []
