"""`address: local`: the job starts its own Ray instance, sized by the compute's max_workers, and stops it."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from ray_helpers import Pair, ok_json, write_inputs

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::UserWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning:ray.*"),
]


def _ray_children() -> list[psutil.Process]:
    names = ("raylet", "gcs_server", "ray::", "default_worker", "log_monitor", "dashboard")
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            text = " ".join(child.cmdline()) or child.name()
        except psutil.Error:
            continue
        if any(n in text for n in names):
            out.append(child)
    return out


def test_address_local_starts_an_instance_for_the_job_and_stops_it(cli, tmp_path: Path):
    import ray

    before = {p.pid for p in _ray_children()}  # the session's shared instance, if another module started it
    pair = Pair(cli, tmp_path, "local", max_workers=2)
    pair.script(mini_batch_size=2)
    data = write_inputs(tmp_path / "data", {f"f{i}.txt": f"ok {i}" for i in range(5)})
    local = ok_json(pair.invoke("on-local", data, tmp_path / "out-local"))
    job = ok_json(pair.invoke("on-ray", data, tmp_path / "out-ray"))
    assert (local["status"], job["status"]) == ("Completed", "Completed")
    assert job["settings"]["workers"] == 2
    assert (tmp_path / "out-ray" / "predictions.csv").read_bytes() == (
        tmp_path / "out-local" / "predictions.csv"
    ).read_bytes()
    assert not ray.is_initialized()
    ours = [p for p in _ray_children() if p.pid not in before]
    psutil.wait_procs(ours, timeout=30)
    assert not [p for p in ours if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
