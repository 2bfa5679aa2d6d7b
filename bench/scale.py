"""Scale benchmarks of issue 26: streamed planning and incremental re-scoring.

    PYTHONPATH=src .venv/bin/python bench/scale.py                       # all three, default sizes
    PYTHONPATH=src .venv/bin/python bench/scale.py --only lake --lake-entries 2000000
    PYTHONPATH=src .venv/bin/python bench/scale.py --only many,reuse --rounds 3

- lake: a fake fsspec filesystem generates a listing of N entries (10,000,000 by default; never on disk).
  The real submit, plan, feed, supervise loop, journal and publisher run in one process; the workers are
  an in-process backend that answers each mini-batch at once (the driver is what is measured: spawned
  workers cannot open a filesystem registered in this process). Reported: the driver's peak RSS
  (getrusage), plan.jsonl bytes per entry, seconds from the runner's start to the first result.
- many: `batchctl endpoint invoke` (real workers, LR model) over 10,000 and over 100,000 one-row CSV
  files, alternated; the driver's (the CLI process's) peak RSS, sampled every 50 ms; medians.
- reuse: 2,000 CSV files (RF model); a job with --reuse stamp, then the folder gains 10% (200 files),
  then, alternated each round, a job with --reuse stamp and a cold job (reuse off) over the grown
  folder; wall times of the whole CLI process, medians, and their ratio. Both results files are
  compared byte for byte. `--reuse-variants reuse,reuse1,cold` adds a reuse job with one worker.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import BATCHCTL, FEATURES, WORK, batchctl_workspace, build_models, log, measure  # noqa: E402

SCALE = WORK / "scale"


# ------------------------------------------------------------------------------------------------ lake


def _fake_lake(dirs: int, per_dir: int) -> Any:
    from fsspec.spec import AbstractFileSystem

    class FakeLake(AbstractFileSystem):
        protocol = "fakelake"
        root_marker = ""
        cachable = False

        def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
            parts = self._strip_protocol(path).rstrip("/").split("/")
            if parts[0] != "lake" or len(parts) > 3:
                raise FileNotFoundError(path)
            if len(parts) < 3:
                return {"name": "/".join(parts), "type": "directory", "size": 0}
            return {"name": "/".join(parts), "type": "file", "size": 20, "etag": parts[1] + parts[2]}

        def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
            path = self._strip_protocol(path).rstrip("/")
            if path == "lake":
                return [{"name": f"lake/d{i:05d}", "type": "directory", "size": 0} for i in range(dirs)]
            return [
                {"name": f"{path}/f{j:04d}.csv", "type": "file", "size": 20, "etag": f"{path[5:]}{j}"}
                for j in range(per_dir)
            ]

    return FakeLake


class InstantBackend:
    name = "instant"

    def __init__(self) -> None:
        self.outbox: deque[tuple[Any, tuple[Any, ...]]] = deque()
        self.first_result: float | None = None

    def spawn(self, slot: int) -> Any:
        from batchctl.execution.events import BatchResult

        backend = self

        class Handle:
            def __init__(self) -> None:
                self.slot = slot

            def submit(self, task: Any) -> None:
                if backend.first_result is None:
                    backend.first_result = time.monotonic()
                result = BatchResult(batch=task.batch, attempt=task.attempt, ok=True, succeeded=len(task.files))
                backend.outbox.append((self, ("result", result)))

            def kill(self) -> None:
                pass

        handle = Handle()
        self.outbox.append((handle, ("ready", os.getpid())))
        return handle

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, tuple[Any, ...]]]:
        out = list(self.outbox)
        self.outbox.clear()
        if not out:
            time.sleep(min(timeout, 0.005))
        return out

    def shutdown(self) -> None:
        pass


def _vm_hwm_kb() -> int:
    """This process's peak RSS (getrusage's ru_maxrss keeps the forking parent's after exec on Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def lake_child(entries: int, home: str) -> None:
    """In its own process: submit and run one job over the fake lake; print the figures as JSON."""
    import fsspec

    from batchctl import api
    from batchctl.jobs import plan as plan_io
    from batchctl.jobs import runner
    from batchctl.workspace import Workspace

    per_dir = 1000
    fsspec.register_implementation("fakelake", _fake_lake(entries // per_dir, per_dir), clobber=True)
    ws = Workspace.open(home)
    backend = InstantBackend()
    runner.make_backend = lambda *args, **kwargs: backend  # type: ignore[assignment]
    t0 = time.monotonic()
    job = api.submit_job(
        ws, endpoint="bench", input="fakelake://lake", output_path=str(Path(home) / "out"), mini_batch_size=500
    )
    submitted = time.monotonic()
    final = runner.run_job(ws, job["name"])
    done = time.monotonic()
    plan_bytes = os.path.getsize(ws.jobs_dir / job["name"] / plan_io.PLAN_FILE)
    print(
        json.dumps(
            {
                "status": str(final.status),
                "files": final.counts.files,
                "mini_batches": final.counts.mini_batches,
                "submit_s": round(submitted - t0, 3),
                "first_result_s": round((backend.first_result or done) - submitted, 3),
                "total_s": round(done - t0, 1),
                "peak_rss_mb": round(_vm_hwm_kb() / 1024, 1),
                "plan_bytes_per_entry": round(plan_bytes / max(1, final.counts.files), 1),
            }
        )
    )


def bench_lake(entries: int, models: dict[str, Path]) -> dict[str, Any]:
    ws = SCALE / "lake-ws"
    env = batchctl_workspace(ws, models["lr"])
    log(f"lake: {entries:,} generated entries, driver only")
    out = subprocess.run(
        [sys.executable, __file__, "--lake-child", str(entries), str(ws)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(ws, ignore_errors=True)  # the plan of 10M entries is ~400 MB
    return result


# ------------------------------------------------------------------------------------------------ many


def one_row_files(folder: Path, n: int) -> Path:
    stamp = folder.with_suffix(".json")
    if stamp.is_file() and json.loads(stamp.read_text()).get("files") == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    header = ",".join(FEATURES) + "\n"
    width = len(str(n - 1))
    for i in range(n):
        row = ",".join(f"{((i * 7 + j * 13) % 101) / 50 - 1:.4f}" for j in range(len(FEATURES)))
        (folder / f"part-{i:0{width}d}.csv").write_text(header + row + "\n")
    stamp.write_text(json.dumps({"files": n}))
    return folder


def bench_many(rounds: int, models: dict[str, Path], sizes: tuple[int, ...]) -> dict[str, Any]:
    ws = SCALE / "many-ws"
    env = batchctl_workspace(ws, models["lr"])
    data = {n: one_row_files(SCALE / f"one-row-{n}", n) for n in sizes}
    peaks: dict[int, list[float]] = {n: [] for n in sizes}
    walls: dict[int, list[float]] = {n: [] for n in sizes}
    for r in range(rounds):
        for n in sizes if r % 2 == 0 else tuple(reversed(sizes)):
            out = SCALE / "many-out" / f"{n}-{r}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [BATCHCTL, "endpoint", "invoke", "-n", "bench", "--input", str(data[n])]
            cmd += ["--output-path", str(out), "-m", "500"]
            m = measure(cmd, env=env, cwd=SCALE, out_dir=SCALE / "many-logs" / f"{n}-{r}", timeout=3600)
            if m.returncode != 0:
                raise RuntimeError(f"many {n}: exit {m.returncode}")
            lines = sum(1 for _ in open(out / "predictions.csv", "rb"))
            if lines != n:
                raise RuntimeError(f"many {n}: {lines} rows, expected {n}")
            peaks[n].append(m.peak_root_mb)
            walls[n].append(m.wall_s)
            log(f"many {n}: driver peak {m.peak_root_mb:.1f} MB, {m.wall_s:.1f} s")
    return {
        str(n): {"driver_peak_mb": statistics.median(peaks[n]), "wall_s": statistics.median(walls[n]), "runs": peaks[n]}
        for n in sizes
    }


# ------------------------------------------------------------------------------------------------ reuse


def reuse_files(folder: Path, start: int, n: int, rows: int) -> None:
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        rng = np.random.default_rng(1000 + i)
        frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
        frame.to_csv(folder / f"part-{i:05d}.csv", index=False, float_format="%.6f")


def _invoke(env: dict, data: Path, tag: str, r: int, *extra: str) -> tuple[float, bytes]:
    out = SCALE / "reuse-out" / f"{tag}-{r}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [BATCHCTL, "endpoint", "invoke", "-n", "bench", "--input", str(data), "--output-path", str(out), *extra]
    logs = SCALE / "reuse-logs" / f"{tag}-{r}"
    m = measure(cmd, env=env, cwd=SCALE, out_dir=logs, timeout=3600)
    if m.returncode != 0:
        raise RuntimeError(f"reuse {tag}: exit {m.returncode}")
    _keep_job_logs(env, logs)
    return m.wall_s, (out / "predictions.csv").read_bytes()


def _keep_job_logs(env: dict, logs: Path) -> None:
    """The job's record and system logs beside the CLI's output (the workspace is rebuilt each round), for
    the phases of each job: submit, worker start, scoring, publish."""
    try:
        name = json.loads((logs / "stdout.txt").read_text())["name"]
    except (OSError, ValueError, KeyError):
        return
    job = Path(env["BATCHCTL_HOME"]) / "jobs" / name
    shutil.rmtree(logs / "job", ignore_errors=True)
    shutil.copytree(job / "logs" / "sys", logs / "job" / "logs" / "sys")
    shutil.copy2(job / "job.json", logs / "job" / "job.json")


def _workers(env: dict, n: int) -> None:
    """The deployment's workers (max_concurrency_per_instance): not part of the reuse key."""
    cmd = [BATCHCTL, "deployment", "update", "-n", "bench-dpl", "-e", "bench"]
    r = subprocess.run([*cmd, "--set", f"settings.max_concurrency_per_instance={n}"], env=env, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"deployment update failed: {r.stderr[-2000:]!r}")


def bench_reuse(
    rounds: int,
    models: dict[str, Path],
    files: int,
    rows: int,
    variants: tuple[str, ...] = ("reuse", "cold"),
    served: bool = False,
) -> dict[str, Any]:
    """`variants`: reuse (2 workers), cold (2 workers, reuse off), reuse1 (reuse with 1 worker: does a
    small remainder score faster without the second worker's start?), rotated each round.
    `served`: a `batchctl serve` runs in the workspace, so each `endpoint invoke` hands its job to the
    server's warm workers (the first job warms them); the walls are still the CLI process's."""
    walls: dict[str, list[float]] = {"first": [], **{v: [] for v in variants}}
    loads: list[list[float]] = []
    for r in range(rounds):
        ws = SCALE / "reuse-ws"
        env = batchctl_workspace(ws, models["rf"])
        data = SCALE / "reuse-data"
        shutil.rmtree(data, ignore_errors=True)
        reuse_files(data, 0, files, rows)
        server = _serve(env) if served else None
        try:
            _reuse_round(r, env, ws, data, files, rows, variants, walls, loads)
        finally:
            if server is not None:
                server.stop()
    med = {k: statistics.median(v) for k, v in walls.items()}
    out: dict[str, Any] = {"files": files, "rows": rows, "served": served, **{f"{k}_s": v for k, v in med.items()}}
    out.update({f"ratio_{t}": med[t] / med["cold"] for t in variants if t != "cold"})
    out["runs"] = walls
    out["load_per_round"] = loads  # the 1-minute load average before each round's jobs after the first, and after
    return out


def _serve(env: dict) -> Any:
    from server import Server  # bench/server.py: `batchctl serve` on 127.0.0.1, a free port

    return Server(env, SCALE)


def _reuse_round(
    r: int,
    env: dict,
    ws: Path,
    data: Path,
    files: int,
    rows: int,
    variants: tuple[str, ...],
    walls: dict[str, list[float]],
    loads: list[list[float]],
) -> None:
    """One round: the first job (reuse on, cold), the folder gains 10%, then each variant, alternated."""
    first, _ = _invoke(env, data, "first", r, "--reuse", "stamp")
    first_done = time.time()
    walls["first"].append(first)
    reuse_files(data, files, files // 10, rows)  # the folder gains 10%
    order = variants[r % len(variants) :] + variants[: r % len(variants)]
    load_before = os.getloadavg()[0]
    got: dict[str, tuple[float, bytes]] = {}
    for tag in order:
        extra = ("--reuse", "stamp") if tag.startswith("reuse") else ()
        if tag == "reuse1":
            _workers(env, 1)
        got[tag] = _invoke(env, data, tag, r, *extra)
        if tag == "reuse1":
            _workers(env, 2)
        if tag.startswith("reuse"):  # each reuse job reuses the first job's results, not another's
            for index in (ws / "jobs").glob("*/reuse/index.jsonl"):
                if index.stat().st_mtime > first_done:
                    index.unlink()
        walls[tag].append(got[tag][0])
    if any(got[tag][1] != got["cold"][1] for tag in got):
        raise RuntimeError("reuse: the results differ from the cold run's")
    loads.append([round(load_before, 2), round(os.getloadavg()[0], 2)])
    log(
        f"reuse round {r}: first {first:.1f} s, "
        + ", ".join(f"{t} {got[t][0]:.1f} s" for t in order)
        + f" (load {loads[-1][0]} -> {loads[-1][1]})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="lake,many,reuse")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lake-entries", type=int, default=10_000_000)
    parser.add_argument("--many", default="10000,100000")
    parser.add_argument("--reuse-files", type=int, default=2000)
    parser.add_argument("--reuse-rows", type=int, default=500)
    parser.add_argument("--reuse-variants", default="reuse,cold", help="reuse, cold, reuse1 (reuse with 1 worker)")
    parser.add_argument("--reuse-served", action="store_true", help="reuse: jobs handed to a `batchctl serve`")
    parser.add_argument("--lake-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lake_child:
        lake_child(int(args.lake_child[0]), args.lake_child[1])
        return 0
    SCALE.mkdir(parents=True, exist_ok=True)
    models = build_models(WORK / "models")
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
    }
    only = args.only.split(",")
    if "lake" in only:
        result["lake"] = bench_lake(args.lake_entries, models)
        log(f"lake: {result['lake']}")
    if "many" in only:
        sizes = tuple(int(n) for n in args.many.split(","))
        result["many"] = bench_many(args.rounds, models, sizes)
        if len(sizes) == 2:
            small, big = (result["many"][str(n)]["driver_peak_mb"] for n in sizes)
            result["many"]["ratio"] = big / small
    if "reuse" in only:
        variants = tuple(args.reuse_variants.split(","))
        result["reuse"] = bench_reuse(
            args.rounds, models, args.reuse_files, args.reuse_rows, variants, args.reuse_served
        )
    result["machine"]["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
