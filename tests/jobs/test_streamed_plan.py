"""Streamed planning (issue 26): a big input is listed while its first mini-batches are scored, the plan is
written in chunks (plan.jsonl), and the results are byte for byte those of a plan listed whole at submit.

The ten-million-entry case uses a fake fsspec filesystem whose listing is generated (never on disk) and
the real submit, plan, feed, supervise loop, journal and publisher; only the workers are replaced by an
in-process backend that answers each mini-batch at once (spawned workers cannot import a filesystem
registered in the test process, and what is measured here is the driver)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from batchctl import api
from batchctl.execution.events import BatchResult, WorkerMessage, WorkerReady, WorkerResult
from batchctl.jobs import feed as feed_mod
from batchctl.jobs import plan as plan_io
from batchctl.jobs import runner
from batchctl.workspace import Workspace

from .conftest import heart_frame, ok_json

pytestmark = pytest.mark.slow

# ----------------------------------------------------------------------------- a generated data lake

DIRS, PER_DIR = 10_000, 1_000  # 10,000,000 files


def _fake_lake_class(dirs: int = DIRS, per_dir: int = PER_DIR, delay: float = 0.0) -> Any:
    from fsspec.spec import AbstractFileSystem

    class FakeLake(AbstractFileSystem):
        """`fakelake://lake/dNNNNN/fNNN.csv`: 10,000 folders of 1,000 files, listed from arithmetic."""

        protocol = "fakelake"
        root_marker = ""
        cachable = False
        listed_dirs = 0

        def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
            path = self._strip_protocol(path).rstrip("/")
            parts = path.split("/")
            if parts[0] != "lake" or len(parts) > 3:
                raise FileNotFoundError(path)
            if len(parts) < 3:
                return {"name": path, "type": "directory", "size": 0}
            return {"name": path, "type": "file", "size": 20, "etag": f'"{parts[1]}{parts[2]}"'}

        def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
            path = self._strip_protocol(path).rstrip("/")
            FakeLake.listed_dirs += 1
            time.sleep(delay)
            if path == "lake":
                out = [{"name": f"lake/d{i:05d}", "type": "directory", "size": 0} for i in range(dirs)]
            elif path.startswith("lake/d") and path.count("/") == 1:
                out = [
                    {"name": f"{path}/f{j:03d}.csv", "type": "file", "size": 20, "etag": f'"{path[5:]}{j}"'}
                    for j in range(per_dir)
                ]
            else:
                raise FileNotFoundError(path)
            return out if detail else [o["name"] for o in out]

    return FakeLake


class InstantBackend:
    """Workers that answer at once (no rows). Every dispatch samples the driver's RSS and how far the
    listing is; `stop_at` entries listed cancels the job (the test needs no more)."""

    name = "instant"

    def __init__(self, folder: Path, stop_at: int) -> None:
        import psutil

        self.proc = psutil.Process()
        self.folder = folder
        self.stop_at = stop_at
        self.outbox: deque[tuple[Any, WorkerMessage]] = deque()
        self.first_dispatch_listed: int | None = None
        self.first_dispatch_at: float | None = None
        self.samples: list[tuple[int, int]] = []  # (entries listed, rss)
        self.dispatched = 0

    def listed(self) -> int:
        # the plan's entry lines: ~36 bytes each here (`["d00000/f000.csv",20,"d00000/f0000"]`)
        return os.path.getsize(self.folder / plan_io.PLAN_FILE) // 36

    def spawn(self, slot: int) -> Any:
        backend = self

        class Handle:
            def __init__(self) -> None:
                self.slot = slot

            def submit(self, task: Any) -> None:
                backend.dispatched += 1
                if backend.first_dispatch_listed is None:
                    backend.first_dispatch_listed = backend.listed()
                    backend.first_dispatch_at = time.monotonic()
                listed = backend.listed()
                if backend.dispatched % 50 == 0:
                    backend.samples.append((listed, backend.proc.memory_info().rss))
                if listed >= backend.stop_at:
                    (backend.folder / runner.CANCEL_MARKER).touch()
                result = BatchResult(batch=task.batch, attempt=task.attempt, ok=True, succeeded=len(task.files))
                backend.outbox.append((self, WorkerResult(result)))

            def kill(self) -> None:
                pass

        handle = Handle()
        self.outbox.append((handle, WorkerReady(os.getpid())))
        return handle

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, WorkerMessage]]:
        out = list(self.outbox)
        self.outbox.clear()
        if not out:
            time.sleep(min(timeout, 0.005))
        return out

    def shutdown(self) -> None:
        pass


def test_ten_million_entries_stream_in_flat_memory(env, tmp_path, monkeypatch):
    import fsspec

    fsspec.register_implementation("fakelake", _fake_lake_class(), clobber=True)
    env.endpoint()
    env.script(mini_batch_size=500)
    ws = Workspace.open()
    started = time.monotonic()
    job = api.submit_job(
        ws, api.JobRequest(endpoint="heart", input="fakelake://lake", output_path=str(tmp_path / "out"))
    )
    submit_seconds = time.monotonic() - started
    folder = ws.jobs_dir / job["name"]
    assert job["counts"]["listing"] is True  # "at least" this many files: the listing goes on in the runner
    assert job["counts"]["files"] == plan_io.STREAM_AT
    backends: list[InstantBackend] = []

    def backend(record: Any, ref: Any, folder: Path, pools: Any = None, lineage: Any = None) -> InstantBackend:
        backends.append(InstantBackend(folder, stop_at=1_500_000))
        return backends[0]

    monkeypatch.setattr(runner, "make_backend", backend)
    final = runner.run_job(ws, job["name"])
    (instant,) = backends
    assert final.status == "Canceled"  # canceled by the backend once 1.5M entries were listed
    # scoring started while the listing had barely begun
    assert instant.first_dispatch_listed is not None and instant.first_dispatch_listed < 500_000
    assert submit_seconds < 30
    # the plan is on disk, in chunks; the listing had not ended (no end line)
    state = plan_io.count(folder)
    assert not state.complete
    assert 1_500_000 <= state.count < DIRS * PER_DIR
    bytes_per_entry = os.path.getsize(folder / plan_io.PLAN_FILE) / state.count
    assert bytes_per_entry < 100
    # flat memory: from ~200,000 entries listed to 1.5 million, the driver grows by less than 60 MB
    early = [rss for listed, rss in instant.samples if listed >= 200_000]
    assert early, instant.samples[:5]
    growth = max(rss for _, rss in instant.samples) - early[0]
    assert growth < 60 << 20, f"driver RSS grew {growth / 2**20:.0f} MB while listing went on"
    log = (folder / "logs" / "sys" / "master_role.txt").read_text()
    assert "listing goes on while scoring" in log


# ------------------------------------------------------------------- streamed vs listed whole: same bytes

NAMES = [
    "a/b.csv",
    "a-b/x.csv",
    "a.csv",
    "a0.csv",
    "a/b/c/deep.csv",
    "A/upper.csv",
    "é/accent.csv",
    "日本/データ.csv",
    "x-y/z.csv",
    "x.y/z.csv",
    "x/y/z.csv",
    "with space.csv",
] + [f"n{i // 4}/part-{i:02d}.csv" for i in range(14)]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for i, rel in enumerate(NAMES):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        heart_frame(2 + i % 3, 300 + i).to_csv(path, index=False)
    (root / "empty" / "inner").mkdir(parents=True)
    return root


def test_a_streamed_plan_gives_the_same_bytes_as_a_whole_one(mlenv, tree, tmp_path, monkeypatch):
    mlenv.endpoint()
    mlenv.mlflow(mini_batch_size=3, output_file_name="predictions.jsonl")

    def run(tag: str) -> tuple[dict[str, Any], bytes, list[bytes]]:
        out = tmp_path / f"out-{tag}"
        args = ("--input", str(tree), "--output-path", str(out), "--job-name", f"job-{tag}")
        job = ok_json(mlenv.invoke("heart", *args))
        assert job["status"] == "Completed", job
        lines = (mlenv.job_dir(job["name"]) / plan_io.PLAN_FILE).read_bytes().splitlines(keepends=True)
        return job, (out / "predictions.jsonl").read_bytes(), lines

    whole, whole_bytes, whole_plan = run("whole")
    # the same input, listed 5 files at submit and the rest while scoring, planned 6 files at a time
    monkeypatch.setattr(plan_io, "STREAM_AT", 5)
    monkeypatch.setattr(feed_mod, "CHUNK_FILES", 6)
    monkeypatch.setattr(feed_mod, "APPEND_EVERY", 4)
    streamed, streamed_bytes, streamed_plan = run("streamed")

    assert streamed_bytes == whole_bytes
    assert streamed_plan[1:] == whole_plan[1:]  # every entry and the end line (the listing hash)
    files = [json.loads(line)[0] for line in whole_plan[1:-1]]
    assert files == sorted(NAMES)
    rows = [json.loads(line) for line in whole_bytes.splitlines()]
    assert [r["file_name"] for r in rows] == [f for f in files for _ in range(2 + NAMES.index(f) % 3)]
    for key in ("files", "items_succeeded", "rows"):
        assert streamed["counts"][key] == whole["counts"][key] == (len(NAMES) if key != "rows" else len(rows))
    assert "listing" not in streamed["counts"]
    assert streamed["lineage"]["input"]["listing_sha256"] == whole["lineage"]["input"]["listing_sha256"]
    assert streamed["lineage"]["input"]["files"] == len(NAMES)
    log = (mlenv.job_dir(streamed["name"]) / "logs" / "sys" / "master_role.txt").read_text()
    assert "listing goes on while scoring" in log and f"listing done: {len(NAMES)} files" in log


def test_a_job_stopped_mid_listing_resumes_the_listing_where_it_stopped(env, tmp_path, monkeypatch):
    import fsspec

    from batchctl import storage

    fsspec.register_implementation("fakelake", _fake_lake_class(60, 500, delay=0.02), clobber=True)
    env.endpoint()
    env.script(mini_batch_size=500)
    ws = Workspace.open()
    job = api.submit_job(
        ws, api.JobRequest(endpoint="heart", input="fakelake://lake", output_path=str(tmp_path / "out"))
    )
    folder = ws.jobs_dir / job["name"]
    # the first attempt is canceled at its first dispatch, while the listing goes on
    monkeypatch.setattr(runner, "make_backend", lambda record, ref, folder, *_: InstantBackend(folder, 0))
    first = runner.run_job(ws, job["name"])
    assert first.status == "Canceled"
    state = plan_io.count(folder)
    assert not state.complete and plan_io.STREAM_AT <= state.count < 30_000
    api.resume_job(ws, job["name"])
    monkeypatch.setattr(runner, "make_backend", lambda record, ref, folder, *_: InstantBackend(folder, 10**9))
    second = runner.run_job(ws, job["name"])
    assert second.status == "Completed", second.error
    assert second.counts.files == second.counts.items_succeeded == 30_000
    entries = list(plan_io.iter_entries(folder))
    listed = list(storage.open_listing(storage.location("fakelake://lake"), None).entries)
    assert entries == [tuple(e) for e in listed]  # every entry once, in order, none lost or repeated
    digest = hashlib.sha256(b"".join(plan_io.entry_line(e) for e in listed)).hexdigest()
    assert second.lineage["input"]["listing_sha256"] == digest


def test_dry_run_counts_a_big_listing_to_its_end(env, tmp_path):
    import fsspec

    fsspec.register_implementation("fakelake", _fake_lake_class(30, 1000), clobber=True)
    env.endpoint()
    env.script(mini_batch_size=500)
    request = api.JobRequest(endpoint="heart", input="fakelake://lake", output_path=str(tmp_path / "o"))
    plan = api.submit_job(Workspace.open(), request, dry_run=True)
    assert plan["files"] == 30_000 and plan["mini_batches"] == 60
    assert plan["first_files"] == [f"d00000/f{j:03d}.csv" for j in range(5)]
    assert not (Workspace.open().jobs_dir / plan["name"]).exists()


def test_a_listing_error_after_submit_fails_the_job_with_its_reason(env, tmp_path, monkeypatch):
    data = tmp_path / "in"
    data.mkdir()
    for i in range(8):
        (data / f"f{i}.txt").write_text("ok")
    (tmp_path / "secret.txt").write_text("ok")
    (data / "z-link.txt").symlink_to(tmp_path / "secret.txt")  # listed after submit's first 5 files
    monkeypatch.setattr(plan_io, "STREAM_AT", 5)
    env.endpoint()
    env.script(mini_batch_size=2)
    out = tmp_path / "out"
    result = env.invoke("heart", "--input", str(data), "--output-path", str(out))
    job = json.loads(result.stdout)
    assert job["status"] == "Failed"
    assert "z-link.txt' is a symbolic link that points outside the input folder" in job["error"]["message"]
    assert not out.exists() or not any(out.iterdir())  # nothing published
