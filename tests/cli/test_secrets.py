"""Secrets in deployments (issue 16, item 2): `${env:NAME}` references resolved at job start and never
written, a warning when a literal looks like a secret, and redaction of such values in every output."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchctl.errors import redact

KEY88 = base64.b64encode(bytes(range(7, 71))).decode()  # a storage account key: 64 bytes, 88 characters
CONN = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY88};EndpointSuffix=core.windows.net"
SAS = "sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJlc2lnbmF0dXJl"
RESOLVED = "resolved-at-job-start-4711"

SCRIPT = """
import os


def init():
    pass


def run(mini_batch):
    return [os.path.basename(p) + "," + os.environ["API_TOKEN"] for p in mini_batch]
"""


@pytest.fixture
def deployed(cli: Any, tmp_path: Path, custom_model: Path) -> Any:
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    spec = tmp_path / "dep.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "dep",
                "endpoint_name": "heart",
                "type": "model",
                "model": {"path": str(custom_model)},
                "code_configuration": {"code": str(code), "scoring_script": "score.py"},
                "settings": {
                    "environment_variables": {
                        "API_TOKEN": "${env:BATCHCTL_TEST_TOKEN}",
                        "STORAGE_CONN": CONN,
                        "STORAGE_KEY": KEY88,
                        "STORAGE_SAS": SAS,
                        "PLAIN": "hello",
                    }
                },
            }
        )
    )
    assert cli("endpoint", "create", "-n", "heart", "-o", "json").exit_code == 0
    result = cli("deployment", "create", "-f", str(spec), "-o", "json")
    assert result.exit_code == 0, result.output
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("x\n")
    return result


def _no_secret(text: str) -> None:
    assert KEY88 not in text
    assert "c2lnbmF0dXJlc2lnbmF0dXJl" not in text


def test_redact_covers_account_keys_sas_and_connection_strings() -> None:
    assert redact(KEY88) == "***"
    assert redact(f"key {KEY88}.") == "key ***."
    assert KEY88 not in redact(CONN) and "AccountName=acct" in redact(CONN)
    assert redact(SAS).endswith("sig=***")
    assert redact("sig=abcdef") == "sig=***"
    assert redact("a" * 88) == "a" * 88  # not base64 with the key's padding: left alone


def test_create_warns_about_literal_secrets_naming_them(deployed: Any) -> None:
    lines = [line for line in deployed.stderr.splitlines() if line.startswith("Warning:")]
    assert len(lines) == 1, deployed.stderr
    warning = lines[0]
    for name in ("STORAGE_CONN", "STORAGE_KEY", "STORAGE_SAS"):
        assert name in warning
    assert "API_TOKEN" not in warning and "PLAIN" not in warning
    assert "${env:" in warning
    _no_secret(deployed.stderr)
    _no_secret(deployed.stdout)


@pytest.mark.parametrize("fmt", ["json", "yaml", "table"])
def test_deployment_show_redacts_in_every_format(cli: Any, deployed: Any, fmt: str) -> None:
    result = cli("deployment", "show", "-n", "dep", "-e", "heart", "-o", fmt)
    assert result.exit_code == 0
    _no_secret(result.stdout)
    assert "${env:BATCHCTL_TEST_TOKEN}" in result.stdout
    if fmt == "json":
        env = json.loads(result.stdout)["settings"]["environment_variables"]
        assert env["PLAIN"] == "hello" and env["STORAGE_KEY"] == "***"


def test_env_reference_is_resolved_at_job_start_and_never_written(
    cli: Any, deployed: Any, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHCTL_TEST_TOKEN", RESOLVED)
    out = tmp_path / "out"
    result = cli("endpoint", "invoke", "-n", "heart", "--input", str(tmp_path / "data"), "--output-path", str(out),
                 "--job-name", "j1", "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    # the worker saw the value ...
    assert (out / "predictions.csv").read_text().strip() == f"a.txt,{RESOLVED}"
    # ... and no file of the workspace holds it (the reference is what is stored)
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert RESOLVED.encode() not in data, path
    registry = (home / "registry.json").read_text()
    assert "${env:BATCHCTL_TEST_TOKEN}" in registry
    assert "${env:BATCHCTL_TEST_TOKEN}" in (home / "jobs" / "j1" / "job.json").read_text()
    for fmt in ("json", "yaml", "table"):
        shown = cli("job", "show", "-n", "j1", "-o", fmt)
        assert shown.exit_code == 0
        _no_secret(shown.stdout)
        assert RESOLVED not in shown.stdout
    streamed = cli("job", "stream", "-n", "j1")
    assert streamed.exit_code == 0
    _no_secret(streamed.stdout)


def test_a_missing_referenced_variable_fails_the_job_early_naming_it(
    cli: Any, deployed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BATCHCTL_TEST_TOKEN", raising=False)
    out = tmp_path / "out"
    result = cli("endpoint", "invoke", "-n", "heart", "--input", str(tmp_path / "data"), "--output-path", str(out),
                 "--job-name", "j2", "-o", "json")  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "BATCHCTL_TEST_TOKEN" in errors[0] and "API_TOKEN" in errors[0], result.stderr
    assert json.loads(result.stdout)["status"] == "Failed"
    assert not out.exists() or not any(out.iterdir())


def test_a_malformed_reference_is_refused_at_create(cli: Any, deployed: Any, registry: Any) -> None:
    before = registry.bytes()
    result = cli("deployment", "update", "-n", "dep", "-e", "heart", "--set",
                 "settings.environment_variables.X=${env:1BAD}")  # fmt: skip
    assert result.exit_code == 3
    assert "environment_variables.X" in result.stderr and "${env:1BAD}" in result.stderr
    assert registry.bytes() == before
