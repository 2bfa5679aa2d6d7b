"""Jobs that read from and write to Azure Blob Storage (a live Azurite), through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from storage_helpers import csv_files

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
