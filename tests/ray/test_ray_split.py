"""One big Parquet file cut into row ranges across Ray actors: the same bytes as an unsplit local run."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray_helpers import Pair, heart_frame, ok_json

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::UserWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:ray.*"),
]


def test_one_big_parquet_file_on_ray_gives_the_bytes_of_the_local_run(
    cli, tmp_path: Path, ray_address: str, ray_heart_model: Path
) -> None:
    pair = Pair(cli, tmp_path, ray_address)
    pair.mlflow(ray_heart_model)
    data = tmp_path / "data"
    data.mkdir()
    heart_frame(3000, 5).to_parquet(data / "big.parquet", row_group_size=250)
    local = ok_json(pair.invoke("on-local", data, tmp_path / "out-local", "--split", "never"))
    ray = ok_json(pair.invoke("on-ray", data, tmp_path / "out-ray", "--split", "always", "--job-name", "r"))
    assert (local["status"], ray["status"]) == ("Completed", "Completed")
    assert ray["counts"]["items_succeeded"] == 1 and ray["counts"]["mini_batches_completed"] == 4
    expected = (tmp_path / "out-local" / "predictions.csv").read_bytes()
    assert expected.count(b"\n") == 3000
    assert (tmp_path / "out-ray" / "predictions.csv").read_bytes() == expected
    master = (pair.job_dir("r") / "logs" / "sys" / "master_role.txt").read_text()
    assert "split: big.parquet" in master and "-> 4 row ranges" in master and "on my-ray" in master
