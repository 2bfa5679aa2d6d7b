"""A bounded load test on loopback: 50 invokes of small jobs from 10 client threads against one real
server. All are accepted, all Complete with correct outputs, none lost or duplicated, and the server's
memory after the run is within 20 % of before. Prints the accepted-invoke latency (p50/p99) and jobs/min."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from server_helpers import body, heart_folder, wait_for

pytestmark = pytest.mark.slow

JOBS = 50
CLIENTS = 10
OVERALL_SECONDS = 600


def rss_tree(pid: int) -> int:
    """Resident memory of the server and its workers (the pool's warm workers are part of its cost)."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def test_fifty_concurrent_invokes(workspace, start_server, reference):
    server = start_server(workspace)
    inputs = [heart_folder(workspace.allowed / f"load-{i:02d}", files=2, rows=4, seed=100 + 2 * i) for i in range(JOBS)]
    expected = {i: [r for p in sorted(inputs[i].iterdir()) for r in reference(p)] for i in range(JOBS)}
    with server.client() as client:
        warm = client.post("/endpoints/heart/jobs", json=body(str(inputs[0]), name="warmup")).json()["name"]
        wait_for(lambda: client.get(f"/jobs/{warm}").json()["properties"]["status"] == "Completed", 300, "warm-up")
        time.sleep(1.0)
        before = rss_tree(server.pid)
    started = time.monotonic()
    deadline = started + OVERALL_SECONDS
    latencies: list[float] = []
    names: dict[int, str] = {}
    lock = threading.Lock()

    def invoke(i: int) -> None:
        with server.client() as client:
            out = workspace.allowed / f"load-out-{i:02d}"
            t0 = time.monotonic()
            response = client.post("/endpoints/heart/jobs", json=body(str(inputs[i]), output=str(out)))
            elapsed = time.monotonic() - t0
            assert response.status_code == 200, response.text
            with lock:
                latencies.append(elapsed)
                names[i] = response.json()["name"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(invoke, i) for i in range(JOBS)]:
            future.result(timeout=max(1.0, deadline - time.monotonic()))
    assert len(names) == JOBS and len(set(names.values())) == JOBS  # all accepted, none duplicated

    with server.client() as client:

        def all_done() -> bool:
            listed = client.get("/endpoints/heart/jobs").json()["value"]
            states = {j["name"]: j["properties"]["status"] for j in listed}
            return all(states.get(n) in ("Completed", "Failed", "Canceled") for n in names.values())

        wait_for(all_done, max(1.0, deadline - time.monotonic()), "all 50 jobs to end")
        finished = time.monotonic()
        listed = client.get("/endpoints/heart/jobs").json()["value"]
    ours = [j for j in listed if j["name"] in set(names.values())]
    assert len(ours) == JOBS  # none lost
    assert {j["properties"]["status"] for j in ours} == {"Completed"}
    for i, name in names.items():
        rows = (workspace.allowed / f"load-out-{i:02d}" / "predictions.csv").read_text().splitlines()
        assert rows == expected[i], name
    time.sleep(1.0)
    after = rss_tree(server.pid)
    lat = sorted(latencies)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
    per_minute = JOBS / ((finished - started) / 60)
    print(
        f"\nload: {JOBS} jobs from {CLIENTS} threads; accepted-invoke latency p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms; {per_minute:.0f} jobs/min; server+workers RSS {before / 2**20:.0f} MB -> "
        f"{after / 2**20:.0f} MB ({(after - before) / before:+.1%})"
    )
    assert abs(after - before) <= 0.2 * before
