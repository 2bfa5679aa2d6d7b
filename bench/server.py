"""batchctl serve: what a warm server saves, against `mlflow models predict`, in one run.

    .venv/bin/python bench/server.py                  # 5 rounds of the small job, 3 of the 1M-row job
    .venv/bin/python bench/server.py --rounds 3 --skip-big
    .venv/bin/python bench/server.py --markdown       # also print the tables for docs/benchmarks.md

Same data and model as bench/run.py (logistic regression, 10 float columns, built under bench/.work/):

- small job: one CSV file of 1,000 rows;
- big job: 200 CSV files x 5,000 rows (1M rows; mlflow gets their concatenation as one file).

Each round, alternated: `mlflow models predict` (whole process); a cold `batchctl endpoint invoke
--no-server` (whole process); a fresh `batchctl serve`, its first job and then warm jobs, each measured
from the client's POST to the job read Completed (REST, polled every 10 ms) and as a whole
`batchctl endpoint invoke` process that hands the job to the server. Medians over the rounds; every
output's row count is checked. Where a warm job spends its time comes from the job's own timings
(job.json: created, started, ended).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as benchrun  # noqa: E402  (bench/run.py: datasets, models, the mlflow command)

WORK = benchrun.WORK / "server"
BATCHCTL = benchrun.BATCHCTL
MLFLOW = benchrun.MLFLOW
POLL = 0.01


def log(msg: str) -> None:
    print(f"[bench-server {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    started = time.monotonic()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {result.stderr[-2000:]}")
    return wall


def rows_of(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


class Server:
    def __init__(self, env: dict, cwd: Path) -> None:
        self.log = open(cwd / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [BATCHCTL, "serve", "--port", "0", "--allow-path", str(benchrun.WORK)],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on " not in line:
            raise RuntimeError(f"the server did not start: {line}")
        self.start_s = time.monotonic() - started
        self.url = line.split("listening on ", 1)[1].split()[0]
        import httpx

        token = json.loads(subprocess.check_output([BATCHCTL, "token"], env=env, text=True))["accessToken"]
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=600)

    def job(self, data: Path, out: Path) -> tuple[float, str]:
        """Seconds from POST to the job read Completed."""
        body = {
            "properties": {
                "InputData": {"d": {"JobInputType": "UriFile" if data.is_file() else "UriFolder", "Uri": str(data)}},
                "OutputData": {"score": {"JobOutputType": "UriFolder", "Uri": str(out)}},
            }
        }
        started = time.monotonic()
        response = self.client.post("/endpoints/bench/jobs", json=body)
        if response.status_code != 200:
            raise RuntimeError(response.text)
        name = response.json()["name"]
        while True:
            status = self.client.get(f"/jobs/{name}").json()["properties"]["status"]
            if status in ("Completed", "Failed", "Canceled"):
                break
            time.sleep(POLL)
        wall = time.monotonic() - started
        if status != "Completed":
            raise RuntimeError(f"job {name} {status}")
        return wall, name

    def stop(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.log.close()


def phases(ws: Path, name: str) -> dict[str, float]:
    """A job's own timings: submit (created) -> runner start -> end, and the record's duration."""
    record = json.loads((ws / "jobs" / name / "job.json").read_text())

    def at(key: str) -> float:
        return dt.datetime.fromisoformat(record[key].replace("Z", "+00:00")).timestamp()

    return {
        "queued_s": at("start_time") - at("created_at"),
        "run_s": at("end_time") - at("start_time"),
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--big-rounds", type=int, default=3)
    parser.add_argument("--warm-jobs", type=int, default=5, help="warm jobs per round (after the first)")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    models = benchrun.build_models(benchrun.WORK / "models")
    small_dir = benchrun.build_dataset(benchrun.WORK / "data", "small", 1, 1000, 7, parquet=False)["csv"]
    small = next(small_dir.iterdir())
    big = None if args.skip_big else benchrun.build_dataset(benchrun.WORK / "data", "base", 200, 5000, 1, parquet=True)
    ws = WORK / "ws"
    env = benchrun.batchctl_workspace(ws, models["lr"])
    env = {**env, "BATCHCTL_NO_SERVER": "0"}
    runs = WORK / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    count = 0

    def out() -> Path:
        nonlocal count
        count += 1
        return runs / f"o{count}"

    res: dict[str, list[float]] = {}
    where: list[dict[str, float]] = []

    def add(key: str, value: float) -> None:
        res.setdefault(key, []).append(value)

    for rnd in range(args.rounds):
        log(f"round {rnd + 1}/{args.rounds}")
        o = out()
        add(
            "mlflow",
            timed(
                [MLFLOW, "models", "predict", "-m", str(models["lr"]), "-i", str(small), "-o", str(o)]
                + ["--env-manager", "local", "-t", "csv"],
                env,
                WORK,
            ),
        )
        o = out()
        add(
            "cold",
            timed(
                [
                    BATCHCTL,
                    "endpoint",
                    "invoke",
                    "-n",
                    "bench",
                    "--input",
                    str(small),
                    "--output-path",
                    str(o),
                    "--no-server",
                ],
                env,
                WORK,
            ),
        )
        assert rows_of(o / "predictions.csv") == 1000
        server = Server(env, WORK)
        try:
            add("server_start", server.start_s)
            o = out()
            first, _ = server.job(small, o)
            add("first", first)
            assert rows_of(o / "predictions.csv") == 1000
            for _ in range(args.warm_jobs):
                o = out()
                warm, name = server.job(small, o)
                add("warm_rest", warm)
                where.append(phases(ws, name))
                assert rows_of(o / "predictions.csv") == 1000
            o = out()
            add(
                "warm_cli",
                timed(
                    [BATCHCTL, "endpoint", "invoke", "-n", "bench", "--input", str(small), "--output-path", str(o)],
                    env,
                    WORK,
                ),
            )
            assert rows_of(o / "predictions.csv") == 1000
        finally:
            server.stop()

    if big is not None:
        server = Server(env, WORK)
        try:
            server.job(big["csv"], out())  # warms both workers (a 1,000-row job uses one)
            for rnd in range(args.big_rounds):
                log(f"1M rows, round {rnd + 1}/{args.big_rounds}")
                o = out()
                add(
                    "big_mlflow",
                    timed(
                        [MLFLOW, "models", "predict", "-m", str(models["lr"]), "-i", str(big["all_csv"]), "-o", str(o)]
                        + ["--env-manager", "local", "-t", "csv"],
                        env,
                        WORK,
                    ),
                )
                o = out()
                wall, name = server.job(big["csv"], o)
                add("big_warm", wall)
                assert rows_of(o / "predictions.csv") == 1_000_000
        finally:
            server.stop()

    m = {k: median(v) for k, v in res.items()}
    queued = median([w["queued_s"] for w in where])
    running = median([w["run_s"] for w in where])
    lines = [
        "| run | median s | / mlflow models predict |",
        "|---|---|---|",
        f"| `mlflow models predict`, 1,000 rows | {m['mlflow']:.2f} | 1.00 |",
        f"| cold `batchctl endpoint invoke --no-server` | {m['cold']:.2f} | {m['cold'] / m['mlflow']:.2f} |",
        f"| first job through a fresh server (REST) | {m['first']:.2f} | {m['first'] / m['mlflow']:.2f} |",
        f"| warm job through the server (REST, POST to Completed) | {m['warm_rest']:.3f} | "
        f"{m['warm_rest'] / m['mlflow']:.3f} |",
        f"| warm job, `batchctl endpoint invoke` handing it to the server | {m['warm_cli']:.2f} | "
        f"{m['warm_cli'] / m['mlflow']:.2f} |",
        f"| (server start, not in the job times) | {m['server_start']:.2f} | |",
    ]
    if big is not None:
        lines += [
            f"| `mlflow models predict`, 1M rows (one CSV) | {m['big_mlflow']:.2f} | 1.00 |",
            f"| warm job through the server, 1M rows in 200 files | {m['big_warm']:.2f} | "
            f"{m['big_warm'] / m['big_mlflow']:.2f} |",
        ]
    lines.append(
        f"\nwarm 1,000-row job, its own record: {queued * 1000:.0f} ms queued (submit -> runner start), "
        f"{running * 1000:.0f} ms running (runner start -> Completed); rounds {args.rounds}, "
        f"{args.warm_jobs} warm jobs per round, cpus {os.cpu_count()}"
    )
    print("\n".join(lines))
    (WORK / "results.json").write_text(json.dumps({"raw": res, "medians": m, "warm_phases": where}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
