"""No credential in any file after a Ray job (`address: local`): not under Ray's temp folder (Ray logs an
actor's runtime_env in clear in runtime_env_agent.log), not in the workspace, not in the job's logs. The
storage credentials and the resolved `${env:}` secrets of `environment_variables` reach the actors in
memory only, as an argument of their setup() call."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import Pair, ok_json

pytestmark = [
    pytest.mark.ray,
    pytest.mark.azurite,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::UserWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:ray.*"),
]

# recognisable fake values: none of them reaches a real service (the account key is 64 bytes in base64)
FAKE_ACCOUNT_KEY = "RkFLRUFDQ09VTlRLRVk" + "Q" * 67 + "=="
FAKE_CLIENT_SECRET = "fake-client-secret-8c1d7f4e-do-not-log"
ENV_SECRET = "fake-env-secret-2b9e61a0-do-not-log"

# the script reads an az:// input on the actor (so the connection string must reach it) and checks that
# the ${env:} secret did (without printing it)
SCRIPT = """
import os

import pandas as pd


def init():
    assert os.environ["API_TOKEN"].startswith("fake-env-secret-"), "the ${env:} secret did not reach init()"
    print("init: the secret is here", flush=True)


def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path) as handle:
            rows.append({"file": os.path.basename(path), "text": handle.read().strip()})
    return pd.DataFrame(rows)
"""


@pytest.fixture
def ray_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Ray's temp folder for the job's own instance (short: Ray puts unix sockets in it)."""
    folder = Path(tempfile.mkdtemp(prefix="rsec", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _files_holding(roots: list[Path], secrets: dict[str, str]) -> list[tuple[str, str]]:
    found = []
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                if path.is_symlink() or not path.is_file():
                    continue  # sockets, fifos
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                found += [(what, str(path)) for what, value in secrets.items() if value.encode() in data]
    return found


def test_no_credential_reaches_any_file_after_a_ray_job(
    cli: Any, tmp_path: Path, azurite_env: Any, monkeypatch: pytest.MonkeyPatch, ray_tmp: Path
) -> None:
    connection_string = os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    account_key = connection_string.split("AccountKey=")[1].split(";")[0]
    # every kind of credential batchctl forwards, set at once: an account key and a service principal
    # beside the connection string the job reads its input with
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", FAKE_ACCOUNT_KEY)
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-00000000c11d")
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-0000000007e1")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", FAKE_CLIENT_SECRET)
    monkeypatch.setenv("BATCHCTL_TEST_API_TOKEN", ENV_SECRET)
    container = azurite_env.new_container()
    fs = azurite_env.fs()
    for i in range(4):
        fs.pipe_file(f"{container}/in/f{i}.txt", f"text {i}".encode())

    pair = Pair(cli, tmp_path, "local", max_workers=2)
    code = tmp_path / "code"
    code.mkdir()
    (code / "score.py").write_text(SCRIPT)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.txt").write_text("1\n")
    pair.deploy(
        {
            "model": {"path": str(tmp_path / "model"), "type": "custom_model", "name": "m"},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        },
        mini_batch_size=2,
        environment_variables={"API_TOKEN": "${env:BATCHCTL_TEST_API_TOKEN}"},
    )
    with monkeypatch.context() as patch:
        patch.setenv("BATCHCTL_RAY_FORCE_REMOTE", "1")  # the az:// input is read on the actor
        job = ok_json(pair.invoke("on-ray", f"az://{container}/in", tmp_path / "out"))  # type: ignore[arg-type]
    assert job["status"] == "Completed", job
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (4, 0)
    assert "init: the secret is here" in pair.stdout(job["name"])

    sessions = list(ray_tmp.rglob("runtime_env_agent.log"))
    assert sessions, f"Ray wrote no session logs under {ray_tmp}: the scan below would prove nothing"
    secrets = {
        "connection string": connection_string,
        "account key in the connection string": account_key,
        "account key": FAKE_ACCOUNT_KEY,
        "client secret": FAKE_CLIENT_SECRET,
        "${env:} secret": ENV_SECRET,
    }
    assert _files_holding([ray_tmp, pair.home, tmp_path / "out"], secrets) == []
