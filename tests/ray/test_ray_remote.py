"""Actors on another machine, simulated on the one-node instance with BATCHCTL_RAY_FORCE_REMOTE (the driver
treats every actor as remote): what docs/ray.md promises for them. The model and code are shipped and
score; remote inputs (az:// on the session's Azurite) are read on the actor's node, with the storage
credentials forwarded in the actor's runtime_env; files a summary_only script writes come back to the
driver; error_threshold stops the job. Each result is compared with the local pool's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ray_helpers import Pair, heart_frame, ok_json

pytestmark = [
    pytest.mark.ray,
    pytest.mark.azurite,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::UserWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:ray.*"),
]


@pytest.fixture
def pair(cli: Any, tmp_path: Path, ray_address: str, azurite_env: Any) -> Pair:
    # the Ray instance was started without AZURE_STORAGE_CONNECTION_STRING (session fixture, cleared
    # environment): an actor reads az:// only through the credentials the driver forwards
    return Pair(cli, tmp_path, ray_address)


def _upload(azurite: Any, files: dict[str, bytes]) -> str:
    """The files in a new container's folder `in`; returns its az:// URL."""
    container = azurite.new_container()
    fs = azurite.fs()
    for name, data in files.items():
        fs.pipe_file(f"{container}/in/{name}", data)
    return f"az://{container}/in"


def _invoke_remote(pair: Pair, monkeypatch: pytest.MonkeyPatch, data: str, out: Path, *extra: str) -> Any:
    with monkeypatch.context() as patch:
        patch.setenv("BATCHCTL_RAY_FORCE_REMOTE", "1")
        return pair.invoke("on-ray", data, out, *extra)  # type: ignore[arg-type]


def test_a_shipped_mlflow_model_scores_remote_inputs_like_the_local_pool(
    pair: Pair, tmp_path: Path, ray_heart_model: Path, azurite_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"part-{i:03d}.csv": heart_frame(5 + i, 200 + i).to_csv(index=False).encode() for i in range(5)}
    data = _upload(azurite_env, files)
    pair.mlflow(ray_heart_model, mini_batch_size=2)
    local = ok_json(pair.invoke("on-local", data, tmp_path / "out-local"))  # type: ignore[arg-type]
    ray = ok_json(_invoke_remote(pair, monkeypatch, data, tmp_path / "out-ray"))
    assert (local["status"], ray["status"]) == ("Completed", "Completed")
    assert ray["compute"] == "my-ray"
    assert (ray["counts"]["items_succeeded"], ray["counts"]["items_failed"]) == (5, 0)
    expected = (tmp_path / "out-local" / "predictions.csv").read_bytes()
    assert len(expected.splitlines()) == sum(5 + i for i in range(5))
    assert (tmp_path / "out-ray" / "predictions.csv").read_bytes() == expected


def test_remote_inputs_are_read_on_the_actor_and_summary_only_files_come_back(
    pair: Pair, tmp_path: Path, azurite_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"f{i:02d}.txt" for i in range(6)]
    data = _upload(azurite_env, {name: f"write {name[1:3]}\n".encode() for name in names})
    pair.script(mini_batch_size=2, output_action="summary_only")
    local = ok_json(pair.invoke("on-local", data, tmp_path / "out-local"))  # type: ignore[arg-type]
    ray = ok_json(_invoke_remote(pair, monkeypatch, data, tmp_path / "out-ray"))
    assert (local["status"], ray["status"]) == ("Completed", "Completed")
    assert ray["counts"]["items_succeeded"] == 6
    # the files the script wrote on the actor's node were moved back and published like the local ones
    expected = {p.name: p.read_bytes() for p in (tmp_path / "out-local").iterdir()}
    assert sorted(expected) == [f"{name}.out" for name in names]
    assert expected["f03.txt.out"] == b"f03.txt: 03 x 2.5\n"
    assert {p.name: p.read_bytes() for p in (tmp_path / "out-ray").iterdir()} == expected
    # on the actor: the model, code and AZUREML_BI_OUTPUT_PATH in its own scratch folder, every input
    # downloaded there from the store (never through this machine's job folder)
    text = pair.stdout(ray["name"])
    reads = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("reading ")]
    assert sorted(Path(r).name for r in reads) == names
    assert all("batchctl-ray" in r for r in reads), reads
    inits = [line for line in text.splitlines() if line.startswith("init weight=2.5")]
    assert inits and all("batchctl-ray" in line.split("output_dir=", 1)[1] for line in inits), inits
    assert str(pair.home) not in text


def test_error_threshold_stops_a_job_on_remote_actors(
    pair: Pair, tmp_path: Path, azurite_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = {"a.txt": b"skip\n", **{f"z{i:02d}.txt": b"ok\n" for i in range(12)}}
    data = _upload(azurite_env, inputs)
    pair.script(mini_batch_size=1, max_concurrency_per_instance=1, error_threshold=0)
    result = _invoke_remote(pair, monkeypatch, data, tmp_path / "out", "--job-name", "thr")
    assert pair.ran() == {"a.txt"}  # one actor: no mini-batch after the failing one was dispatched
    assert result.exit_code == 1, result.stderr
    job = pair.show("thr")
    assert job["status"] == "Failed"
    assert "error_threshold exceeded: 1 failed items > error_threshold 0" in job["error"]["message"]
    assert (job["counts"]["items_failed"], job["counts"]["items_succeeded"]) == (1, 0)
    master = (pair.job_dir("thr") / "logs" / "sys" / "master_role.txt").read_text()
    assert master.count(" -> worker ") == 1, master
    assert not (tmp_path / "out" / "predictions.csv").exists()
