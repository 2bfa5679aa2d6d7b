"""What MLflow tracking costs a job: the same 200-file job with and without a tracking URI, alternated.

    .venv/bin/python bench/tracking.py                 # 200 files x 5,000 rows, logistic regression, 5 rounds
    .venv/bin/python bench/tracking.py --rounds 3 --rows 1000 --markdown

Uses bench/run.py's workload and model (built under bench/.work/ and reused). One workspace; a sqlite
tracking store in a temporary folder, created and migrated by one untimed warm-up run of each mode.
Each round runs `batchctl endpoint invoke` once without and once with `MLFLOW_TRACKING_URI` (the order
alternates), timing the whole process. After a tracked run the harness waits for its tracking agent to
log the run (`tracking.state` in job.json) before the next run starts, so no run shares the CPU with
the previous one's agent; that time is reported too ("run logged"). Target (issue 14): median with /
median without < 1.05. Exits 1 if a run fails or a run is not logged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as harness  # noqa: E402  (bench/run.py: the workload, the models, the workspace set-up)

TARGET = 1.05


def invoke(env: dict, data: Path, out: Path, job: str) -> float:
    cmd = [harness.BATCHCTL, "endpoint", "invoke", "-n", "bench", "--input", str(data)]
    cmd += ["--output-path", str(out), "--job-name", job, "-o", "json"]
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0 or json.loads(result.stdout)["status"] != "Completed":
        raise SystemExit(f"run {job} failed: {result.stderr[-2000:]}")
    return wall


def wait_logged(ws: Path, job: str, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tracking = json.loads((ws / "jobs" / job / "job.json").read_text()).get("tracking") or {}
        if tracking.get("state") in ("logged", "failed"):
            return tracking["state"]
        time.sleep(0.1)
    raise SystemExit(f"run {job} was not logged within {timeout:g}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    root = harness.WORK / "tracking"
    root.mkdir(parents=True, exist_ok=True)
    data = harness.build_dataset(root, f"t{args.files}x{args.rows}", args.files, args.rows, 1, parquet=False)["csv"]
    models = harness.build_models(harness.WORK / "models")
    with tempfile.TemporaryDirectory(prefix="batchctl-bench-tracking-") as tmp:
        tmp_path = Path(tmp)
        ws = tmp_path / "ws"
        base_env = harness.batchctl_workspace(ws, models["lr"])
        base_env.pop("MLFLOW_TRACKING_URI", None)
        uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
        (tmp_path / "store").mkdir()
        modes = {"without": base_env, "with": {**base_env, "MLFLOW_TRACKING_URI": uri}}
        walls: dict[str, list[float]] = {"without": [], "with": []}
        logged: list[float] = []
        n = 0

        def one(mode: str, timed: bool) -> None:
            nonlocal n
            n += 1
            job = f"j{n}"
            started = time.perf_counter()
            wall = invoke(modes[mode], data, tmp_path / "out" / job, job)
            if mode == "with":
                state = wait_logged(ws, job)
                if state != "logged":
                    raise SystemExit(f"run {job}: tracking {state}")
                if timed:
                    logged.append(time.perf_counter() - started)
            if timed:
                walls[mode].append(wall)
            harness.log(f"{job} {mode} tracking: {wall:.2f}s{' (warm-up)' if not timed else ''}")

        one("with", False)  # creates and migrates the store (once per store, not per job)
        one("without", False)
        for r in range(args.rounds):
            for mode in ("without", "with") if r % 2 == 0 else ("with", "without"):
                one(mode, True)
        load = os.getloadavg()[0]
    off, on = statistics.median(walls["without"]), statistics.median(walls["with"])
    ratio = on / off
    lines = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.2f} at the end; "
        f"{args.files} files x {args.rows} rows, logistic regression, concurrency 2, {args.rounds} alternated rounds.",
        "",
        "| job | median wall s | min-max s |",
        "|---|---|---|",
        f"| without tracking | {off:.2f} | {min(walls['without']):.2f}-{max(walls['without']):.2f} |",
        f"| with tracking (sqlite) | {on:.2f} | {min(walls['with']):.2f}-{max(walls['with']):.2f} |",
        f"| with tracking: until the MLflow run is logged | {statistics.median(logged):.2f} | "
        f"{min(logged):.2f}-{max(logged):.2f} |",
        "",
        f"with / without: **{ratio:.3f}** (target < {TARGET}: {'met' if ratio < TARGET else 'MISSED'})",
    ]
    print("\n".join(lines) if args.markdown else "\n".join(line for line in lines if not line.startswith("|---")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
