"""Issue 26, tiny files: one-row CSV files against the same rows in one file.

    python bench/tinyfiles.py [--reps 3] [--files 20000] [--many 200000] [--mini-batch-size 10]
                              [--data /tmp/batchctl-tinyfiles] [--baseline-src DIR]

Workloads (seeded, generated once under --data and reused while their parameters match), each row of
the 10 float features of bench/run.py:
  * `--files` one-row CSV files, and the same rows in one CSV file;
  * `--many` one-row CSV files (0 skips them), for files per second.

Runs `batchctl endpoint invoke` of the logistic-regression model of bench/run.py (cloudpickle, or
`--serialization skops`), the deployment's `max_concurrency_per_instance: 2`, `--mini-batch-size` files
per mini-batch (Azure's default, 10, unless told), alternating the workloads within each repetition.
Every run must write one prediction per input row, or it is reported as FAILED and never timed.
Prints medians, the ratio of the tiny files to the one file, files per second, and the load average
at the start and end (the machine is shared). Results also go to bench/.work/tinyfiles-m<mini-batch size>.json.

`--baseline-src DIR` (e.g. `git archive <commit> src | tar -x -C /tmp/base`, then `/tmp/base/src`) runs
every case with that code too ("before", on PYTHONPATH) and with this checkout's `src/` ("after"),
alternated within each repetition (the order flips every repetition), so both see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402 - bench/run.py: models, environment, workspace helpers

FEATURES = base.FEATURES


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build(root: Path, files: int, seed: int) -> tuple[Path, Path]:
    """`files` one-row CSV files in one folder and one CSV file of the same rows, cached."""
    tiny, one = root / f"tiny{files}", root / f"one{files}" / "all.csv"
    stamp = root / f"stamp{files}.json"
    params = {"files": files, "seed": seed, "features": FEATURES}
    if stamp.is_file() and json.loads(stamp.read_text()) == params and one.is_file():
        return tiny, one
    import numpy as np

    log(f"generating {files:,} one-row files")
    shutil.rmtree(tiny, ignore_errors=True)
    shutil.rmtree(one.parent, ignore_errors=True)
    one.parent.mkdir(parents=True)
    values = np.random.default_rng(seed).normal(size=(files, len(FEATURES)))
    header = ",".join(FEATURES) + "\n"
    lines = [",".join(f"{v:.6f}" for v in row) + "\n" for row in values]
    tiny.mkdir(parents=True)
    for i, line in enumerate(lines):
        (tiny / f"f{i:07d}.csv").write_text(header + line)
    one.write_text(header + "".join(lines))
    stamp.write_text(json.dumps(params))
    return tiny, one


def run_once(model: Path, data: Path, work: Path, rows: int, mini_batch: int, src: str | None = None) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if src is not None:
        os.environ["PYTHONPATH"] = src  # the workspace's set-up and the job run this code
    env = base.batchctl_workspace(work / "ws", model)
    out = work / "out"
    cmd = [base.BATCHCTL, "endpoint", "invoke", "-n", "bench", "--input", str(data), "--output-path", str(out)]
    cmd += ["--job-name", "j1", "--mini-batch-size", str(mini_batch), "-o", "json"]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - started
    rec = {"wall_s": round(wall, 3), "error": None}
    if proc.returncode != 0:
        rec["error"] = f"exit code {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
    else:
        got = base.count_single_csv(out / "predictions.csv")
        if got != rows:
            rec["error"] = f"wrote {got} rows, expected {rows}"
    shutil.rmtree(work, ignore_errors=True)
    return rec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--many", type=int, default=200000, help="one-row files for files/s (0: skip)")
    parser.add_argument("--mini-batch-size", type=int, default=10)
    parser.add_argument("--serialization", choices=base.SERIALIZATIONS, default="cloudpickle")
    parser.add_argument("--data", default="/tmp/batchctl-tinyfiles")
    parser.add_argument("--baseline-src", help="also run this code (before), alternated with this checkout's src/")
    args = parser.parse_args()
    base.WORK.mkdir(exist_ok=True)
    load_start = os.getloadavg()
    model = base.build_models(base.WORK / "models", args.serialization)["lr"]
    root = Path(args.data)
    tiny, one = build(root, args.files, 26)
    cases = [
        (f"{args.files:,} one-row files", tiny, args.files),
        (f"one file of {args.files:,} rows", one, args.files),
    ]
    if args.many:
        many, _ = build(root, args.many, 27)
        cases.append((f"{args.many:,} one-row files", many, args.many))
    variants = [("after", os.environ.get("PYTHONPATH"))]
    if args.baseline_src:
        variants = [("before", str(Path(args.baseline_src).resolve())), ("after", str(BENCH.parent / "src"))]
    base.compile_sources(*[src or str(BENCH.parent / "src") for _, src in variants])
    records: dict[str, dict[str, list[dict]]] = {name: {} for name, _ in variants}
    for rep in range(args.reps):
        for label, path, rows in cases:
            for name, src in variants if rep % 2 == 0 else variants[::-1]:
                rec = run_once(model, path, root / "runs", rows, args.mini_batch_size, src)
                log(f"rep {rep + 1}: {name}: {label}: {rec}")
                records[name].setdefault(label, []).append(rec)
    load_end = os.getloadavg()
    print(
        f"mini-batch size {args.mini_batch_size}, models saved with {args.serialization}, {args.reps} alternated "
        f"repetitions; load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end"
    )
    summary: dict = {"load": [load_start, load_end], "mini_batch_size": args.mini_batch_size, "variants": {}}
    for name, _ in variants:
        summary["variants"][name] = report(name, records[name], cases, args.many)
    (base.WORK / f"tinyfiles-m{args.mini_batch_size}.json").write_text(json.dumps(summary, indent=1))


def report(name: str, records: dict[str, list[dict]], cases: list, many: int) -> dict:
    def med(label: str) -> float | None:
        ok = [r["wall_s"] for r in records[label] if r["error"] is None]
        return statistics.median(ok) if ok else None

    print(f"{name}:")
    print(f"  {'case':<32} {'median s':>9}  runs")
    for label, _, rows in cases:
        value = med(label)
        shown = f"{value:.2f}" if value is not None else "FAILED"
        rate = f"  {rows / value:,.0f} files/s" if value and "one-row" in label else ""
        print(f"  {label:<32} {shown:>9}  {[r['wall_s'] for r in records[label]]}{rate}")
    summary: dict = {"cases": records}
    tiny_s, one_s = med(cases[0][0]), med(cases[1][0])
    if tiny_s and one_s:
        summary["ratio"] = tiny_s / one_s
        verdict = "met" if tiny_s / one_s <= 1.2 else "MISSED"
        print(f"  tiny / one file: {tiny_s / one_s:.3f} ({verdict}; target <= 1.2)")
    many_s = med(cases[2][0]) if many else None
    if many_s:
        rate = many / many_s
        summary["files_per_s"] = rate
        verdict = "met" if rate >= 3 * 6400 else "MISSED"
        print(f"  {many:,} files: {rate:,.0f} files/s ({verdict}; target >= 19,200 = 3x the 6,400 of issue 26)")
    return summary


if __name__ == "__main__":
    main()
