"""Jobs that read from and write to Azure Blob Storage (a live Azurite), through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import csv_files, datastore_spec

pytestmark = [pytest.mark.azurite, pytest.mark.mlflow, pytest.mark.slow]


def _rows(data: bytes) -> list[list[str]]:
    return [line.split(",") for line in data.decode().splitlines() if line]


def test_folder_input_from_az_url_to_blob_output(
    heart: Any, azurite_env: Any, upload: Any, blob_reader: Any, no_leftover_tmp: Path
) -> None:
    src, dst = azurite_env.new_container(), azurite_env.new_container()
    upload(src, csv_files(4), prefix="heart/")
    proc = heart.invoke(
        "--input",
        f"az://{src}/heart",
        "--output-path",
        f"az://{dst}/scores",
        "--job-name",
        "j1",
        env={"TMPDIR": str(no_leftover_tmp)},
    )
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["status"] == "Completed"
    assert job["counts"]["files"] == 4 and job["counts"]["items_succeeded"] == 4
    data = blob_reader(f"{dst}/scores/predictions.csv")
    assert data is not None
    rows = _rows(data)
    assert len(rows) == 12
    assert {r[-1] for r in rows} == {"part0/f00.csv", "part0/f01.csv", "part1/f02.csv", "part1/f03.csv"}
    # the per-worker scratch folders (remote inputs downloaded there) are gone
    assert list(no_leftover_tmp.iterdir()) == []


def test_datastore_paths_use_the_datastores_account_and_endpoint(
    heart: Any, azurite: Any, upload: Any, blob_reader: Any, tmp_path: Path
) -> None:
    """No connection string: only the key. The account and the Azurite endpoint come from the datastore."""
    container = azurite.new_container()
    upload(container, csv_files(3), prefix="in/")
    spec = datastore_spec(tmp_path, "blobds", container, azurite.blob_endpoint)
    heart.ok("datastore", "create", "-f", str(spec))
    heart.env["AZURE_STORAGE_ACCOUNT_KEY"] = azurite.account_key
    # a single file, then a folder, from datastore paths, to a datastore path
    proc = heart.invoke(
        "--input",
        "azureml://datastores/blobds/paths/in/part0/f00.csv",
        "--output-path",
        "azureml://datastores/blobds/paths/out/one",
    )
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["inputs"]["input_data"]["type"] == "uri_file"
    assert job["output_file"] == f"{azurite.blob_endpoint}/{container}/out/one/predictions.csv"
    assert len(_rows(blob_reader(f"{container}/out/one/predictions.csv"))) == 3
    proc = heart.invoke(
        "--input",
        "azureml://datastores/blobds/paths/in",
        "--output-path",
        "azureml://datastores/blobds/paths/out/all",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["counts"]["files"] == 3  # the hidden file is skipped
    assert len(_rows(blob_reader(f"{container}/out/all/predictions.csv"))) == 9


def test_data_asset_on_a_datastore_and_abfs_single_file(
    heart: Any, azurite_env: Any, upload: Any, blob_reader: Any, tmp_path: Path
) -> None:
    container = azurite_env.new_container()
    upload(container, csv_files(2), prefix="data/")
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    heart.ok(
        "datastore",
        "create",
        "-f",
        str(datastore_spec(tmp_path, "blobds", container, azurite_env.blob_endpoint)),
    )
    asset = tmp_path / "data.yml"
    asset.write_text("name: heartdata\ntype: uri_folder\npath: azureml://datastores/blobds/paths/data\n")
    heart.ok("data", "create", "-f", str(asset))
    out = tmp_path / "local-out"
    proc = heart.invoke("--input", "azureml:heartdata@latest", "--output-path", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(_rows((out / "predictions.csv").read_bytes())) == 6
    # a data asset whose path is an abfs:// URL (a single file), to an abfs:// output
    asset.write_text(f"name: onefile\ntype: uri_file\npath: abfs://{container}/data/part0/f01.csv\n")
    heart.ok("data", "create", "-f", str(asset))
    proc = heart.invoke("--input", "azureml:onefile:1", "--output-path", f"abfs://{container}/scored")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(blob_reader(f"{container}/scored/predictions.csv"))
    assert [r[-1] for r in rows] == ["f01.csv"] * 3


def test_repointed_workspaceblobstore_receives_default_outputs(
    heart: Any, azurite_env: Any, upload: Any, blob_reader: Any, tmp_path: Path
) -> None:
    container = azurite_env.new_container()
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    spec = datastore_spec(tmp_path, "workspaceblobstore", container, azurite_env.blob_endpoint)
    heart.ok("datastore", "create", "-f", str(spec))
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_bytes(csv_files(1)["part0/f00.csv"])
    proc = heart.invoke("--input", str(data), "--job-name", "default-out")
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["outputs"]["score"]["path"] == "azureml://datastores/workspaceblobstore/paths/heart/default-out/"
    assert len(_rows(blob_reader(f"{container}/heart/default-out/predictions.csv"))) == 3
    # job download reads it back from the blob
    got = heart.ok("job", "download", "-n", "default-out", "--download-path", str(tmp_path / "dl"))
    assert Path(got["files"][0]).read_bytes() == blob_reader(f"{container}/heart/default-out/predictions.csv")


@pytest.fixture
def http_server(tmp_path: Path) -> Any:
    """A tiny http.server on 127.0.0.1 serving a folder of CSV files (stopped at the end of the test)."""
    from support.http import serve_folder

    root = tmp_path / "www"
    for rel, data in csv_files(3).items():
        (root / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "data" / rel).write_bytes(data)

    with serve_folder(root) as url:
        yield url


def test_public_http_file_and_listed_folder(heart: Any, http_server: str, tmp_path: Path) -> None:
    proc = heart.invoke("--input", f"{http_server}/data/part0/f00.csv", "--output-path", str(tmp_path / "o1"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["inputs"]["input_data"]["type"] == "uri_file"
    assert len(_rows((tmp_path / "o1" / "predictions.csv").read_bytes())) == 3
    # a folder whose server lists it (http.server index pages): files found through the links
    proc = heart.invoke(
        "--input", f"{http_server}/data/", "--input-type", "uri_folder", "--output-path", str(tmp_path / "o2")
    )
    assert proc.returncode == 0, proc.stderr
    job = json.loads(proc.stdout)
    assert job["counts"]["files"] == 3, job["counts"]
    # a missing public file: one line, nothing run
    proc = heart.invoke("--input", f"{http_server}/data/nope.csv")
    assert proc.returncode == 9 and "does not exist" in proc.stderr, proc.stderr


def test_existing_blob_output_is_refused_before_scoring(
    heart: Any, azurite_env: Any, upload: Any, blob_reader: Any
) -> None:
    container = azurite_env.new_container()
    heart.env["AZURE_STORAGE_CONNECTION_STRING"] = azurite_env.connection_string
    upload(container, csv_files(2), prefix="in/")
    upload(container, {"out/predictions.csv": b"precious\n"})
    proc = heart.invoke("--input", f"az://{container}/in", "--output-path", f"az://{container}/out")
    assert proc.returncode == 5, proc.stderr
    assert "already exists" in proc.stderr and f"az://{container}/out/predictions.csv" in proc.stderr
    assert blob_reader(f"{container}/out/predictions.csv") == b"precious\n"
    assert heart.ok("job", "list") == []
