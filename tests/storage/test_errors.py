"""Each storage failure is one clear line on stderr, a stable exit code, and no job marked done."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import csv_files, datastore_spec

pytestmark = [pytest.mark.azurite, pytest.mark.mlflow, pytest.mark.slow]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line_error(proc: Any, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("Warning:")]
    assert len(lines) <= 2, proc.stderr  # the message, and at most one hint line
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _no_jobs(bctl: Any) -> None:
    assert bctl.ok("job", "list") == []


def test_unreachable_storage_fails_fast(heart: Any, tmp_path: Path, azurite: Any) -> None:
    port = _closed_port()
    heart.ok("datastore", "create", "-f", str(datastore_spec(tmp_path, "down", "data", f"http://127.0.0.1:{port}")))
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string.replace(str(azurite.port), str(port))
    t0 = time.monotonic()
    proc = heart.invoke("--input", "azureml://datastores/down/paths/heart")
    elapsed = time.monotonic() - t0
    line = _one_line_error(proc, 9, "unreachable", f"127.0.0.1:{port}")
    assert "AccountKey" not in proc.stderr and azurite.account_key not in proc.stderr
    assert elapsed < 60, f"took {elapsed:.0f}s: the connect timeout/retries are not bounded"  # generous slack
    # local input, unreachable output
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_bytes(csv_files(1)["part0/f00.csv"])
    proc = heart.invoke("--input", str(data), "--output-path", "azureml://datastores/down/paths/out")
    _one_line_error(proc, 9, "unreachable")
    _no_jobs(heart)
    assert line


def test_missing_container(heart: Any, azurite_env: Any, tmp_path: Path) -> None:
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    proc = heart.invoke("--input", "az://no-such-container/heart")
    _one_line_error(proc, 9, "container 'no-such-container' does not exist")
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_bytes(csv_files(1)["part0/f00.csv"])
    proc = heart.invoke("--input", str(data), "--output-path", "az://no-such-container/out")
    _one_line_error(proc, 9, "container 'no-such-container' does not exist")
    _no_jobs(heart)


def test_missing_path(heart: Any, azurite_env: Any) -> None:
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    container = azurite_env.new_container()
    proc = heart.invoke("--input", f"az://{container}/nothing/here")
    _one_line_error(proc, 9, f"az://{container}/nothing/here", "does not exist")
    _no_jobs(heart)


def test_bad_credentials(heart: Any, azurite: Any, upload: Any) -> None:
    container = azurite.new_container()
    upload(container, csv_files(2))
    wrong_key = "A" * 86 + "=="
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string.replace(azurite.account_key, wrong_key)
    proc = heart.invoke("--input", f"az://{container}/part0")
    _one_line_error(proc, 9, "access denied", "credentials were rejected")
    assert wrong_key not in proc.stderr and "AccountKey" not in proc.stderr
    _no_jobs(heart)


@pytest.mark.parametrize(
    "value",
    ["az://c0ntainer/a/../b", "abfs://c0ntainer/../other/x", "azureml://datastores/blobds/paths/a/../../x"],
)
def test_dotdot_segment_refused_before_any_request(heart: Any, tmp_path: Path, value: str) -> None:
    heart.ok(
        "datastore",
        "create",
        "-f",
        str(datastore_spec(tmp_path, "blobds", "c0ntainer", "http://127.0.0.1:9")),
    )
    proc = heart.invoke("--input", value)
    _one_line_error(proc, 3, "'..'")
    proc = heart.invoke("--input", str(tmp_path), "--output-path", value)
    _one_line_error(proc, 3, "'..'")
    _no_jobs(heart)


def test_no_credentials_for_http_endpoint(heart: Any, tmp_path: Path) -> None:
    heart.ok("datastore", "create", "-f", str(datastore_spec(tmp_path, "nocreds", "data", "http://127.0.0.1:9")))
    proc = heart.invoke("--input", "azureml://datastores/nocreds/paths/x")
    _one_line_error(proc, 9, "no credentials for storage account 'devstoreaccount1'")
    assert json.loads(heart.run("job", "list", "-o", "json").stdout) == []


@pytest.mark.parametrize(
    "value, problem",
    [
        ("Sekrit-not-a-connection-string-5a1e", "it is not a list of Key=Value pairs separated by ';'"),
        ("DefaultEndpointsProtocol=https;Sekrit=5a1e", "it names no AccountName (nor a BlobEndpoint)"),
        ("AccountName=acct;AccountKey=Sekrit%%5a1e!;EndpointSuffix=core.windows.net", "its AccountKey is not base64"),
    ],
    ids=["no-pairs", "no-account", "key-not-base64"],
)
def test_a_malformed_connection_string_is_a_storage_error_naming_the_variable(
    heart: Any, value: str, problem: str
) -> None:
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = value
    proc = heart.invoke("--input", "az://c0ntainer/x")
    assert (proc.returncode, proc.stderr.splitlines()) == (
        9,
        [
            f"Error: AZURE_STORAGE_CONNECTION_STRING is malformed: {problem}",
            "Hint: set it to the account's connection string as the Azure portal shows it (AccountName, AccountKey "
            "and the endpoint, as Key=Value pairs separated by ';'), or unset it",
        ],
    )
    assert "Sekrit" not in proc.stderr + proc.stdout
    _no_jobs(heart)


def test_an_output_the_credentials_cannot_write_fails_before_any_scoring(
    heart: Any, azurite: Any, upload: Any, tmp_path: Path
) -> None:
    """A read-only SAS on the output is refused by its sp= before the job exists (so before any scoring);
    with a key, the write probe leaves nothing behind."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = azurite.new_container()
    upload(container, csv_files(2), prefix="in/")
    heart.ok("datastore", "create", "-f", str(datastore_spec(tmp_path, "blobds", container, azurite.blob_endpoint)))
    read_only = generate_container_sas(
        azurite.account_name, container, account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    sas_env = {"AZURE_STORAGE_CONNECTION_STRING": "", "AZURE_STORAGE_SAS_TOKEN": read_only}
    out = "azureml://datastores/blobds/paths/out"
    proc = heart.invoke("--input", "azureml://datastores/blobds/paths/in", "--output-path", out, env=sas_env)
    assert (proc.returncode, proc.stderr.splitlines()) == (
        9,
        [
            f"Error: cannot write to output {azurite.blob_endpoint}/{container}/out: the SAS token allows sp=rl "
            "(no create or write)",
            "Hint: use a SAS token with create and write permissions (sp=rcwl) for the output",
        ],
    )
    _no_jobs(heart)
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
    proc = heart.invoke("--input", "azureml://datastores/blobds/paths/in", "--output-path", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(azurite.fs().ls(f"{container}/out", detail=False)) == [f"{container}/out/predictions.csv"]

    # `job resume --output-path` checks the new folder as invoke does: the read-only SAS is refused before
    # the job is reopened (issue 29, item 9's way out must not be a way past item 8's probe)
    data = tmp_path / "local-in"
    data.mkdir()
    (data / "a.csv").write_bytes(csv_files(1)["part0/f00.csv"])
    (data / "b.csv").write_text("x,y\n1,2\n")  # not the model's columns: one failed item
    proc = heart.invoke("--input", str(data), "--set", "error_threshold=0")
    assert proc.returncode == 1, proc.stderr
    job = json.loads(proc.stdout)["name"]
    before = heart.ok("job", "show", "-n", job)
    proc = heart.run("job", "resume", "-n", job, "--output-path", f"{out}-2", env=sas_env)
    assert (proc.returncode, proc.stderr.splitlines()[:1]) == (
        9,
        [
            f"Error: cannot write to output {azurite.blob_endpoint}/{container}/out-2: the SAS token allows "
            "sp=rl (no create or write)"
        ],
    ), proc.stderr
    after = heart.ok("job", "show", "-n", job)
    assert after == before  # still Failed, same output, same history
    assert not azurite.fs().exists(f"{container}/out-2")
