"""Create-only publishing on the blob store: races, dying jobs and writers, stale listings; no secret kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import csv_files, datastore_spec, deploy_slow_script, wait_for

pytestmark = [pytest.mark.azurite]


@pytest.mark.mlflow
@pytest.mark.slow
def test_two_jobs_racing_for_one_blob_path_exactly_one_wins(
    heart: Any, azurite_env: Any, upload: Any, blob_reader: Any
) -> None:
    container = azurite_env.new_container()
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    files = csv_files(4)
    upload(container, {k: v for k, v in files.items() if k.startswith("part0")}, prefix="a/")
    upload(container, {k: v for k, v in files.items() if k.startswith("part1")}, prefix="b/")
    target = f"az://{container}/shared"
    procs = [
        heart.popen("endpoint", "invoke", "-n", "heart", "--input", f"az://{container}/{src}",
                    "--output-path", target, "--job-name", f"race-{src}", "-o", "json")
        for src in ("a", "b")
    ]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    # the loser either found the winner's file at the pre-flight check (exit 5, no job) or lost the
    # create-only publish (its job Failed, exit 1)
    assert codes.count(0) == 1 and set(codes) - {0} <= {1, 5}, (codes, [r[1] for r in results])
    winner, loser = ("a", "b") if codes[0] == 0 else ("b", "a")
    loser_err = results[1 if winner == "a" else 0][1]
    if "already exists" not in loser_err:
        loser_err = heart.ok("job", "show", "-n", f"race-{loser}")["error"]["message"]
        assert "appeared while the job ran; it was not overwritten" in loser_err, loser_err
    data = blob_reader(f"{container}/shared/predictions.csv")
    names = {line.rsplit(",", 1)[1] for line in data.decode().splitlines()}
    assert names == ({"part0/f00.csv", "part0/f01.csv"} if winner == "a" else {"part1/f02.csv", "part1/f03.csv"})
    jobs = {j["name"]: j["status"] for j in heart.ok("job", "list")}
    assert sorted(jobs.values()) in (["Completed"], ["Completed", "Failed"])


@pytest.mark.slow
def test_runner_killed_mid_run_publishes_nothing(bctl: Any, azurite_env: Any, upload: Any, blob_reader: Any,
                                                 tmp_path: Path) -> None:  # fmt: skip
    deploy_slow_script(bctl, tmp_path, sleep=1.0)
    container = azurite_env.new_container()
    bctl.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    upload(container, {f"f{i:02d}.csv": b"x\n" for i in range(30)}, prefix="in/")
    proc = bctl.popen("endpoint", "invoke", "-n", "heart", "--input", f"az://{container}/in",
                      "--output-path", f"az://{container}/out", "--job-name", "killed")  # fmt: skip
    record = bctl.home / "jobs" / "killed" / "job.json"

    def one_batch_done() -> bool:
        try:
            return json.loads(record.read_text())["counts"]["mini_batches_completed"] >= 1
        except (OSError, ValueError, KeyError):
            return False

    try:
        wait_for(one_batch_done, 120, "the first mini-batch")
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the foreground CLI is the runner
        proc.communicate(timeout=30)
    shown = wait_for(lambda: (j := bctl.ok("job", "show", "-n", "killed"))["status"] != "Running" and j, 60,
                      "the job to be reported dead")  # fmt: skip
    assert shown["status"] == "Failed" and "runner exited unexpectedly" in shown["error"]["message"]
    assert blob_reader(f"{container}/out/predictions.csv") is None
    fs = azurite_env.fs()
    assert fs.find(f"{container}/out") == []


DYING_WRITER = """
import os, shutil, sys
from batchctl import storage

def copy_then_die(src, dst, length=0):
    data = src.read(dst.blocksize + (1 << 20))  # more than one block: the buffered file stages what it holds
    dst.write(data)
    print(len(data), flush=True)
    os._exit(9)

shutil.copyfileobj = copy_then_die  # the shutil that storage.publish (storage/outputs.py) copies with
storage.publish(sys.argv[1], storage.location(sys.argv[2]))
"""


def _blocks(azurite: Any, container: str, name: str) -> tuple[int, int]:
    """(committed, uncommitted) bytes of a blob's block list; (0, 0) when no block was ever staged."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        try:
            committed, uncommitted = service.get_blob_client(container, name).get_block_list("all")
        except ResourceNotFoundError:
            return 0, 0
    return sum(b.size for b in committed), sum(b.size for b in uncommitted)


def _block_size(url: str) -> int:
    from batchctl import storage

    fs, _ = storage.remote(storage.location(url))
    return int(fs.blocksize)


def test_writer_dying_mid_publish_leaves_no_blob(azurite_env: Any, tmp_path: Path, blob_reader: Any) -> None:
    container = azurite_env.new_container()
    target = f"az://{container}/out/predictions.csv"
    big = tmp_path / "results.csv"
    big.write_bytes(os.urandom(_block_size(target) + (2 << 20)))
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite_env.connection_string}
    proc = subprocess.run([sys.executable, "-c", DYING_WRITER, str(big), target],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    written = int(proc.stdout)
    # the writer died mid-publish: its blocks reached the store, staged but never committed
    assert _blocks(azurite_env, container, "out/predictions.csv") == (0, written)
    assert blob_reader(f"{container}/out/predictions.csv") is None


def test_failed_upload_is_discarded(azurite_env: Any, tmp_path: Path, blob_reader: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from batchctl import storage
    from batchctl.errors import StorageError
    from batchctl.storage import outputs

    container = azurite_env.new_container()
    target = f"az://{container}/o/predictions.csv"
    src = tmp_path / "results.csv"
    src.write_bytes(b"x" * (_block_size(target) + (2 << 20)))
    staged: list[int] = []

    def copy_then_fail(fsrc: Any, fdst: Any, length: int = 0) -> None:
        data = fsrc.read(fdst.blocksize + (1 << 20))
        fdst.write(data)  # a full block is staged on the store
        staged.append(len(data))
        raise OSError("disk went away")

    with monkeypatch.context() as patch:
        patch.setattr(outputs.shutil, "copyfileobj", copy_then_fail)
        with pytest.raises(StorageError, match="cannot publish .* disk went away"):
            storage.publish(str(src), storage.location(target))
    assert _blocks(azurite_env, container, "o/predictions.csv") == (0, staged[0])  # staged, never committed
    assert blob_reader(f"{container}/o/predictions.csv") is None
    # nothing of the failed attempt is left in the way, or in the next upload's blob
    retry = tmp_path / "retry.csv"
    retry.write_bytes(b"a.csv,1\n")
    storage.publish(str(retry), storage.location(target))
    assert blob_reader(f"{container}/o/predictions.csv") == b"a.csv,1\n"


def test_publish_onto_an_existing_blob_raises_and_leaves_it_byte_identical(
    azurite_env: Any, tmp_path: Path, upload: Any, blob_reader: Any
) -> None:
    from batchctl import storage
    from batchctl.errors import OutputExistsError

    container = azurite_env.new_container()
    theirs = b"theirs,1\n" * 1000
    upload(container, {"o/predictions.csv": theirs})
    etag = azurite_env.fs().info(f"{container}/o/predictions.csv")["etag"]
    src = tmp_path / "results.csv"
    src.write_bytes(b"ours,2\n" * 3000)
    with pytest.raises(OutputExistsError, match="it was not overwritten"):
        storage.publish(str(src), storage.location(f"az://{container}/o/predictions.csv"))
    assert blob_reader(f"{container}/o/predictions.csv") == theirs
    assert azurite_env.fs().info(f"{container}/o/predictions.csv")["etag"] == etag
    assert azurite_env.fs().ls(f"{container}/o", detail=False) == [f"{container}/o/predictions.csv"]


RACER = """
import sys, time
from batchctl import storage
from batchctl.errors import OutputExistsError
while time.time() < float(sys.argv[3]):
    time.sleep(0.001)
try:
    storage.publish(sys.argv[1], storage.location(sys.argv[2]))
except OutputExistsError:
    sys.exit(5)
"""


def test_create_only_publish_race_between_processes(azurite_env: Any, tmp_path: Path, blob_reader: Any) -> None:
    container = azurite_env.new_container()
    target = f"az://{container}/race/predictions.csv"
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite_env.connection_string}
    start = time.time() + 8  # all four are importing by then, then publish at once
    procs = []
    for i in range(4):
        src = tmp_path / f"r{i}.csv"
        src.write_bytes(f"writer {i}\n".encode() * 1000)
        procs.append(subprocess.Popen([sys.executable, "-c", RACER, str(src), target, str(start)], env=env,
                                      stderr=subprocess.PIPE, text=True))  # fmt: skip
    codes = [p.wait(timeout=120) for p in procs]
    assert sorted(codes) == [0, 5, 5, 5], (codes, [p.stderr.read() for p in procs if p.stderr])
    winner = codes.index(0)
    assert blob_reader(f"{container}/race/predictions.csv") == f"writer {winner}\n".encode() * 1000


def test_blob_appearing_after_a_cached_listing_is_still_refused(azurite_env: Any, upload: Any) -> None:
    from batchctl import storage
    from batchctl.errors import OutputExistsError

    container = azurite_env.new_container()
    upload(container, {"out/other.txt": b"1"})
    folder = storage.location(f"az://{container}/out")
    assert storage.list_files(folder) == ["other.txt"]  # fills the listing cache
    upload(container, {"out/predictions.csv": b"late\n"})  # out of band
    with pytest.raises(OutputExistsError):
        storage.refuse_existing(folder.join("predictions.csv"))


@pytest.mark.mlflow
@pytest.mark.slow
def test_no_secret_under_the_workspace_after_runs(
    heart: Any, azurite: Any, upload: Any, blob_reader: Any, tmp_path: Path
) -> None:
    from datetime import datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = azurite.new_container()
    upload(container, csv_files(2), prefix="in/")
    spec = datastore_spec(tmp_path, "blobds", container, azurite.blob_endpoint,
                          credentials={"account_key": azurite.account_key})  # fmt: skip
    created = heart.run("datastore", "create", "-f", str(spec), "-o", "json")
    assert created.returncode == 0 and "credentials in the spec were not stored" in created.stderr
    # 1: the connection string (with its AccountKey); 2: only a SAS token (sig=...)
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
    proc = heart.invoke("--input", "azureml://datastores/blobds/paths/in", "--output-path",
                        "azureml://datastores/blobds/paths/o1", "--job-name", "with-key")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sas = generate_container_sas(
        azurite.account_name, container, account_key=azurite.account_key,
        permission=ContainerSasPermissions(read=True, write=True, list=True, create=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    assert "sig=" in sas
    sas_env = {"AZURE_STORAGE_CONNECTION_STRING": "", "AZURE_STORAGE_SAS_TOKEN": sas}
    o2 = "azureml://datastores/blobds/paths/o2"
    proc = heart.invoke("--input", "azureml://datastores/blobds/paths/in", "--output-path", o2,
                        "--job-name", "with-sas", env=sas_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(blob_reader(f"{container}/o2/predictions.csv").splitlines()) == 6
    # a failing run with a SAS: the error path is redacted too
    proc = heart.invoke("--input", "azureml://datastores/blobds/paths/missing", env=sas_env)
    assert proc.returncode == 9
    sig = sas.split("sig=", 1)[1].split("&", 1)[0]
    outputs = [proc.stderr, proc.stdout, created.stdout, created.stderr]
    for name in ("with-key", "with-sas"):
        show = heart.run("job", "show", "-n", name, "-o", "json")
        assert show.returncode == 0, show.stderr
        assert (json.loads(show.stdout)["name"], json.loads(show.stdout)["status"]) == (name, "Completed")
        stream = heart.run("job", "stream", "-n", name)
        assert stream.returncode == 0, stream.stderr
        assert f"job {name}: Completed" in stream.stdout
        outputs += [show.stdout, show.stderr, stream.stdout, stream.stderr]
    shown = heart.run("datastore", "show", "-n", "blobds", "-o", "yaml")
    assert shown.returncode == 0, shown.stderr
    assert f"container_name: {container}" in shown.stdout
    outputs += [shown.stdout, shown.stderr]
    for path in heart.home.rglob("*"):
        if path.is_file():
            outputs.append(path.read_bytes().decode(errors="replace"))
    blob = "\n".join(outputs)
    for secret in (azurite.account_key, "AccountKey", sig, "sig="):
        assert secret not in blob, f"{secret[:12]}... found under the workspace or in the output"
