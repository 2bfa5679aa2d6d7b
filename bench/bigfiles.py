"""Issue 15: one big file, cut into row ranges across the workers.

    python bench/bigfiles.py [--reps 3] [--big-reps 2] [--data /tmp/batchctl-bigfiles] [--skip-10m]

Workloads (seeded, generated once and cached under --data, reused while their parameters match):
  * one 1M-row CSV (10 float features, the models of bench/run.py) and the same rows as one Parquet file
    written in row groups of 65,536 rows;
  * one 10M-row CSV (the 1M generator, ten times).

Approaches, alternated within each repetition (median of --reps):
  * batchctl, automatic splitting (the default), on the CSV and on the Parquet file;
  * batchctl --split never (one worker holds the whole file: the baseline of the issue);
  * `mlflow models predict` on the CSV (--env-manager local).
The 10M-row CSV is run with logistic regression against the 1M-row CSV in the same repetitions: time
ratio and peak RSS of the biggest single worker process (psutil, sampled every 50 ms).

Every run must write one prediction per input row, or it is reported as FAILED and never timed.
Results: a table on stdout and bench/.work/bigfiles.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402 - bench/run.py: models, environment, workspace helpers

FEATURES = base.FEATURES
ROW_GROUP = 65536
MB = 1024 * 1024


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build_data(root: Path, ten: bool = True) -> dict[str, Path]:
    """1M-row CSV + Parquet, 10M-row CSV unless `ten` is False (cached: a stamp file holds the parameters)."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv1m": root / "m1" / "big.csv",
        "pq1m": root / "m1pq" / "big.parquet",
        "csv10m": root / "m10" / "big.csv",
    }
    stamp = root / "stamp.json"
    params = {"rows": 1_000_000, "times": 10 if ten else 0, "seed": 15, "row_group": ROW_GROUP, "features": FEATURES}
    if not ten:
        del paths["csv10m"]
    if stamp.is_file() and json.loads(stamp.read_text()) == params and all(p.is_file() for p in paths.values()):
        return paths
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    log("generating the 1M-row CSV and Parquet files")
    for p in paths.values():
        shutil.rmtree(p.parent, ignore_errors=True)
        p.parent.mkdir(parents=True)
    shutil.rmtree(root / "m10", ignore_errors=True)
    rng = np.random.default_rng(params["seed"])
    frame = pd.DataFrame(rng.normal(size=(params["rows"], len(FEATURES))), columns=FEATURES)
    frame.to_csv(paths["csv1m"], index=False, float_format="%.6f")
    same = pd.read_csv(paths["csv1m"])  # the very same values as the CSV
    pq.write_table(
        __import__("pyarrow").Table.from_pandas(same, preserve_index=False), paths["pq1m"], row_group_size=ROW_GROUP
    )
    if not ten:
        stamp.write_text(json.dumps(params))
        return paths
    log("generating the 10M-row CSV (the 1M rows, ten times)")
    with open(paths["csv1m"], "rb") as src:
        header = src.readline()
        body = src.read()
    with open(paths["csv10m"], "wb") as out:
        out.write(header)
        for _ in range(params["times"]):
            out.write(body)
    stamp.write_text(json.dumps(params))
    return paths


def _sample(proc: subprocess.Popen, peaks: dict) -> None:
    """Peak RSS of the biggest descendant process (a worker), and of the whole tree."""
    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        return
    while proc.poll() is None:
        try:
            kids = root.children(recursive=True)
        except psutil.Error:
            break
        biggest, total = 0, 0
        for kid in kids:
            try:
                rss = kid.memory_info().rss
            except psutil.Error:
                continue
            biggest, total = max(biggest, rss), total + rss
        peaks["worker"] = max(peaks["worker"], biggest)
        peaks["children"] = max(peaks["children"], total)
        time.sleep(0.05)


def run_once(kind: str, model: Path, data: Path, work: Path, rows: int, split: str = "auto") -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if kind == "batchctl":
        env = base.batchctl_workspace(work / "ws", model)
        out = work / "out"
        cmd = [base.BATCHCTL, "endpoint", "invoke", "-n", "bench", "--input", str(data)]
        cmd += ["--output-path", str(out), "--job-name", "j1", "--split", split, "-o", "json"]
        cmd += ["--set", "retry_settings.timeout=3600"]  # an unsplit 10M-row file outlasts Azure's default
        result = out / "predictions.csv"
    else:
        env = base._env()
        result = work / "out.json"
        cmd = [base.MLFLOW, "models", "predict", "-m", str(model), "-i", str(data), "-o", str(result)]
        cmd += ["--env-manager", "local", "-t", "csv"]
    peaks = {"worker": 0, "children": 0}
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sampler = threading.Thread(target=_sample, args=(proc, peaks), daemon=True)
    sampler.start()
    _, err = proc.communicate(timeout=3600)
    wall = time.monotonic() - started
    sampler.join(5)
    rec = {"wall_s": round(wall, 3), "peak_worker_mb": round(peaks["worker"] / MB, 1), "error": None}
    rec["load"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # 1-minute load average before, after
    if proc.returncode != 0:
        rec["error"] = f"exit code {proc.returncode}: {err.strip().splitlines()[-1:] if err else ''}"
    elif kind == "batchctl":
        got = base.count_single_csv(result)
        if got != rows:
            rec["error"] = f"wrote {got} rows, expected {rows}"
        master = (work / "ws" / "jobs" / "j1" / "logs" / "sys" / "master_role.txt").read_text()
        cuts = [line.split("-> ")[1].split()[0] for line in master.splitlines() if " row ranges" in line]
        rec["ranges"] = sum(int(c) for c in cuts)
    else:
        got = base.count_mlflow_predictions(result)
        if got != rows:
            rec["error"] = f"wrote {got} predictions, expected {rows}"
    shutil.rmtree(work, ignore_errors=True)
    return rec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--big-reps", type=int, default=2)
    parser.add_argument("--data", default="/tmp/batchctl-bigfiles")
    parser.add_argument("--skip-10m", action="store_true", help="neither generate nor run the 10M-row CSV")
    parser.add_argument("--models", default="lr,rf", help="comma-separated: lr, rf (default both)")
    parser.add_argument("--serialization", choices=base.SERIALIZATIONS, default="cloudpickle")
    args = parser.parse_args()
    base.WORK.mkdir(exist_ok=True)
    models = base.build_models(base.WORK / "models", args.serialization)
    data = build_data(Path(args.data), ten=not args.skip_10m)
    log(f"models saved with {args.serialization}; load average {os.getloadavg()[0]:.2f}")
    work = Path(args.data) / "runs"
    cases = []
    for model in args.models.split(","):
        cases += [
            (f"{model} csv auto", "batchctl", model, data["csv1m"], 1_000_000, "auto"),
            (f"{model} parquet auto", "batchctl", model, data["pq1m"], 1_000_000, "auto"),
            (f"{model} csv never", "batchctl", model, data["csv1m"], 1_000_000, "never"),
            (f"{model} mlflow predict", "mlflow", model, data["csv1m"], 1_000_000, ""),
        ]
    big = [] if args.skip_10m else [("lr csv10m auto", "batchctl", "lr", data["csv10m"], 10_000_000, "auto")]
    records: dict[str, list[dict]] = {}
    for rep in range(args.reps):
        for label, kind, model, path, rows, split in cases + (big if rep < args.big_reps else []):
            rec = run_once(kind, models[model], path, work, rows, split)
            log(f"rep {rep + 1}: {label}: {rec}")
            records.setdefault(label, []).append(rec)

    def med(label: str, key: str = "wall_s") -> float | None:
        ok = [r[key] for r in records.get(label, []) if r["error"] is None]
        return statistics.median(ok) if ok else None

    rows_out = []
    for label, runs in records.items():
        failed = [r["error"] for r in runs if r["error"]]
        rows_out.append(
            {
                "case": label,
                "median_s": med(label),
                "peak_worker_mb": med(label, "peak_worker_mb"),
                "runs": [r["wall_s"] for r in runs],
                "loads": [r["load"] for r in runs],
                "ranges": runs[0].get("ranges"),
                "failed": failed,
            }
        )
    ratios = {}
    for model, goal in (("lr", 0.55), ("rf", 0.60)):
        ref = med(f"{model} mlflow predict")
        for fmt in ("csv auto", "parquet auto", "csv never"):
            value = med(f"{model} {fmt}")
            if ref and value:
                target = goal if fmt != "csv never" else None
                ratios[f"{model} {fmt} / mlflow predict"] = (round(value / ref, 3), target)
    if med("lr csv10m auto") and med("lr csv auto"):
        ratios["10M / 1M time (lr csv auto)"] = (round(med("lr csv10m auto") / med("lr csv auto"), 2), 10.5)
        ratios["10M / 1M peak worker RSS"] = (
            round(med("lr csv10m auto", "peak_worker_mb") / med("lr csv auto", "peak_worker_mb"), 2),
            2.0,
        )
    print(f"models saved with {args.serialization}; load average at the end {os.getloadavg()[0]:.2f}")
    print(f"{'case':<28} {'median s':>9} {'peak worker MB':>15} {'ranges':>7}  runs")
    for r in rows_out:
        median = f"{r['median_s']:.2f}" if r["median_s"] is not None else "FAILED"
        line = f"{r['case']:<28} {median:>9} {r['peak_worker_mb'] or 0:>15.0f} {r['ranges'] or '':>7}  {r['runs']}"
        print(f"{line} load {r['loads']}")
    print()
    for name, (value, goal) in ratios.items():
        verdict = "" if goal is None else ("  met" if value <= goal else "  MISSED") + f" (target <= {goal})"
        print(f"{name:<40} {value:>6}{verdict}")
    (base.WORK / "bigfiles.json").write_text(json.dumps({"cases": rows_out, "ratios": ratios}, indent=1))


if __name__ == "__main__":
    main()
