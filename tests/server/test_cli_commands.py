"""`batchctl serve` / `batchctl token` without starting a server: the start-up stays free of the web stack,
a missing extra says what to install, bad options are exit 3, tokens have az's shape."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

WEB = ("fastapi", "uvicorn", "httpx", "jwt", "starlette")


def test_the_cli_imports_no_web_library():
    probe = "import json, sys, batchctl.cli, batchctl.api; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout))
    assert sorted(m for m in loaded if m.split(".")[0] in WEB) == []


@pytest.mark.parametrize("command", [["serve"], ["token"]])
def test_a_missing_server_extra_is_exit_6_with_the_pip_hint(cli, monkeypatch, command):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in WEB else real(name, *a))
    result = cli(*command)
    assert result.exit_code == 6
    assert result.stderr.splitlines()[-1] == "Hint: pip install 'batchctl[server]'"
    assert "needs the server extra" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "Error: --port: 70000 is not a port number\n"),
        (["--max-jobs", "0"], "Error: --max-jobs must be at least 1\n"),
        (["--allow-path", "/no/such/dir"], "Error: --allow-path: '/no/such/dir' is not a folder\n"),
        (["--ssl-keyfile", "k.pem"], "Error: --ssl-keyfile and --ssl-certfile go together\n"),
    ],
)
def test_bad_serve_options_are_exit_3(cli, args, message):
    result = cli("serve", *args)
    assert (result.exit_code, result.stderr) == (3, message)


def test_token_has_azs_shape_and_the_key_is_private(cli, isolation: Path):
    import jwt

    result = cli("token", "--expires-in", "120")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tokenType"] == "Bearer"
    claims = jwt.decode(data["accessToken"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 120 == data["expires_on"] - claims["iat"]
    assert claims["aud"] == f"batchctl:{data['workspace_id']}"
    key = isolation / "server" / "secret.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key.parent).st_mode) == 0o700
    bare = cli("token", "--query", "accessToken", "-o", "tsv")
    assert bare.stdout.count(".") == 2 and bare.stdout.endswith("\n")
    assert cli("token", "--expires-in", "0").exit_code == 3


def test_a_key_readable_by_others_is_made_private_with_a_warning(cli, isolation: Path):
    assert cli("token").exit_code == 0
    key = isolation / "server" / "secret.key"
    os.chmod(key, 0o644)
    result = cli("token")
    assert result.exit_code == 0
    assert "was readable by other users; its mode is now 0600" in result.stderr
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_endpoint_show_without_a_server_names_the_url_serve_would_use(cli):
    assert cli("endpoint", "create", "-n", "heart").exit_code == 0
    shown = json.loads(cli("endpoint", "show", "-n", "heart").stdout)
    assert shown["scoring_uri"] == "http://127.0.0.1:8765/endpoints/heart/jobs"
    assert shown["openapi_uri"] == "http://127.0.0.1:8765/openapi.json"
    assert shown["server"]["running"] is False
    listed = json.loads(cli("endpoint", "list").stdout)
    assert listed[0]["scoring_uri"] == shown["scoring_uri"]


def test_a_stale_server_json_is_ignored(cli, isolation: Path):
    from batchctl import api
    from batchctl.workspace import Workspace

    assert cli("endpoint", "create", "-n", "heart").exit_code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (isolation / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": dead.pid}))
    assert api.server_info(Workspace(isolation)) is None
    assert json.loads(cli("endpoint", "show", "-n", "heart").stdout)["server"]["running"] is False
    (isolation / "server.json").write_text("{torn")
    assert api.server_info(Workspace(isolation)) is None
