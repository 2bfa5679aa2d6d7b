"""Isolated environments (issue 22): what they cost, in alternated runs, medians reported.

    .venv/bin/python bench/envs.py                  # all three, 3 build rounds, 5 job rounds, 10 worker starts
    .venv/bin/python bench/envs.py --only jobs,workers --markdown

1. cold build: `scikit-learn + pandas + mlflow-skinny` (plus the worker's pyarrow and fsspec) into a new
   folder with a fresh key from a warm uv cache (one untimed build warms it; the index is PyPI, pip's
   configuration files are off), alternating the import checks in one process and in one process per
   idle CPU (the default: the CPUs less the load average). Target: <= 15 s.
2. jobs: the same job (a scoring script returning a DataFrame, whose environment lists `pyyaml` and
   `pandas`, 40 files, 2 workers) with
   `--env-manager uv` in an environment already built vs `--env-manager local`, each a whole
   `batchctl endpoint invoke` process, alternated. Target: median uv / median local <= 1.1.
3. workers: one local worker spawned until its init() is done ("ready"), in the environment's interpreter
   vs batchctl's. Reported, no target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
BATCHCTL = [sys.executable, "-m", "batchctl"]
SCRIPT = """import pandas as pd
import yaml


def init():
    pass


def run(mb):
    return pd.DataFrame({"file": mb, "n": [yaml.safe_dump(len(mb)).strip()] * len(mb)})
"""


def environ(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(BATCHCTL_HOME=str(home), PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1", PYTHONPATH=str(ROOT / "src"))
    return env


def _phases(log: str) -> tuple[float, float]:
    """(uv pip install seconds, import checks seconds) from a build.log."""
    install = checks = 0.0
    procs = log.split("<import check> x", 1)[1].split(":", 1)[0] if "<import check> x" in log else "?"
    print(f"  import check processes: {procs}", file=sys.stderr)
    command = ""
    for line in log.splitlines():
        if line.startswith("$ "):
            command = line
        elif line.startswith("[exit ") and " pip install " in command and "--dry-run" not in command:
            install += float(line.rsplit(",", 1)[1].strip(" s]\n"))
        elif line.startswith("[import checks: "):
            checks += float(line.split(": ")[1].strip(" s]\n"))
    return install, checks


def cold_builds(rounds: int) -> dict[str, list[tuple[float, float, float, float, float]]]:
    """Alternated: import checks in one process vs one per idle CPU (the default). Each build gets a fresh
    key (a nonce constraint naming no installed package) in a fresh folder; uv's cache is warm."""
    from batchctl.envs import build, spec

    os.environ.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1")
    for key in [k for k in os.environ if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"]:
        del os.environ[key]
    base = spec.from_requirements(["scikit-learn", "pandas", "mlflow-skinny"], None, "bench").with_worker("mlflow")
    default_procs = build.SMOKE_PROCS
    out: dict[str, list[tuple[float, float, float, float, float]]] = {"one process": [], "per idle CPU": []}
    for i in range(2 * rounds + 1):  # the first warms uv's cache, untimed
        label = ("per idle CPU", "one process")[i % 2] if i else "warm-up"
        build.SMOKE_PROCS = 1 if label == "one process" else default_procs
        s = base.with_worker_constraints((f"bcbench-nonce-{os.getpid()}-{i}<1",))
        with tempfile.TemporaryDirectory(prefix="batchctl-bench-envs-", dir=ROOT / "bench" / ".work") as tmp:
            load = os.getloadavg()[0]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            built = build.ensure(Path(tmp), s)
            took = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            install, checks = _phases(Path(built.build_log or "").read_text())
            if i:
                out[label].append((took, install, checks, load, cpu))
            print(f"  build {i} {label}: {took:.2f}s (install {install:.2f}s, import checks {checks:.2f}s, "
                  f"load {load:.1f}, CPU {cpu:.1f}s) {built.key[:12]}", file=sys.stderr)  # fmt: skip
    build.SMOKE_PROCS = default_procs
    return out


def setup_jobs(work: Path) -> tuple[dict[str, str], Path]:
    home = work / "ws"
    env = environ(home)
    code, model, data = work / "code", work / "model", work / "data"
    for folder in (code, model, data):
        folder.mkdir(parents=True, exist_ok=True)
    (code / "score.py").write_text(SCRIPT)
    (model / "w.txt").write_text("w")
    for i in range(40):
        (data / f"f{i:03d}.txt").write_text(str(i))
    (work / "conda.yml").write_text(
        "dependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - pyyaml\n      - pandas\n"
    )
    spec = {
        "name": "envs",
        "endpoint_name": "bench",
        "model": {"path": str(model), "type": "custom_model", "name": "w"},
        "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        "environment": {"image": "python:3.11", "conda_file": str(work / "conda.yml")},
        "settings": {"mini_batch_size": 5, "max_concurrency_per_instance": 2},
    }
    (work / "dep.yml").write_text(json.dumps(spec))
    for args in (["endpoint", "create", "-n", "bench"], ["deployment", "create", "-f", str(work / "dep.yml")]):
        subprocess.run(BATCHCTL + args, env=env, check=True, capture_output=True)
    return env, data


def job(env: dict[str, str], data: Path, manager: str, name: str) -> tuple[float, dict]:
    cmd = BATCHCTL + ["endpoint", "invoke", "-n", "bench", "--input", str(data), "--job-name", name]
    started = time.perf_counter()
    result = subprocess.run(cmd + ["--env-manager", manager, "-o", "json"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"job {name} failed: {result.stderr[-2000:]}")
    return wall, json.loads(result.stdout)


def jobs(work: Path, rounds: int) -> dict[str, list[float]]:
    env, data = setup_jobs(work)
    _, first = job(env, data, "uv", "warm-uv")  # builds the environment, untimed
    job(env, data, "local", "warm-local")
    print(f"  environment {first['environment']['key'][:12]} built (untimed)", file=sys.stderr)
    out: dict[str, list[float]] = {"uv": [], "local": []}
    for i in range(rounds):
        order = ("uv", "local") if i % 2 == 0 else ("local", "uv")
        for manager in order:
            wall, record = job(env, data, manager, f"{manager}-{i}")
            assert record["environment"]["used"] == ("isolated" if manager == "uv" else "local")
            assert manager == "local" or record["environment"]["built"] is False
            out[manager].append(wall)
            print(f"  round {i} {manager}: {wall:.2f}s", file=sys.stderr)
    return out


def workers(work: Path, reps: int) -> dict[str, list[float]]:
    from batchctl.envs import build, spec
    from batchctl.execution.local import LocalBackend, stop_workers
    from batchctl.jobs.environment import worker_path
    from batchctl.scoring.base import ScorerRef
    from batchctl.workspace import Workspace

    home = work / "ws"
    os.environ.update(PIP_CONFIG_FILE=os.devnull, UV_NO_CONFIG="1")
    built = build.ensure(home / "envs", spec.from_requirements(["pandas", "pyyaml"], None, "bench"))
    code = work / "code"
    base = ScorerRef("script", str(work / "model"), str(work / "model"), str(code), "score.py", "append_row",
                     str(work / "out"), "warning")  # fmt: skip
    (work / "out").mkdir(exist_ok=True)
    import dataclasses

    isolated = dataclasses.replace(
        base, python=built.python, python_path=worker_path(Workspace(home), built), env_key=built.key
    )
    out: dict[str, list[float]] = {"env": [], "host": []}
    for i in range(reps):
        for label, ref in (("env", isolated), ("host", base)) if i % 2 == 0 else (("host", base), ("env", isolated)):
            backend = LocalBackend(ref, str(work / "logs"), str(work / "parts"))
            started = time.perf_counter()
            handle = backend.spawn(0)
            while True:
                events = backend.wait([handle], 30)
                kinds = [m[0] for _, m in events]
                if "ready" in kinds:
                    break
                if any(k in ("init_failed", "died") for k in kinds):
                    raise SystemExit(f"worker ({label}) failed: {events}")
            out[label].append(time.perf_counter() - started)
            stop_workers([handle])
    return out


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="build,jobs,workers")
    parser.add_argument("--build-rounds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker-reps", type=int, default=10)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    only = set(args.only.split(","))
    (ROOT / "bench" / ".work").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="envs-", dir=ROOT / "bench" / ".work"))
    rows: list[tuple[str, str, str, str]] = []
    ok = True
    try:
        if "build" in only:
            builds = cold_builds(args.build_rounds)
            for label, runs in builds.items():
                took = med([r[0] for r in runs])
                good = took <= 15
                ok &= good or label == "one process"
                rows.append(
                    (
                        f"cold build, import checks {label} (s)",
                        f"{took:.2f}",
                        ", ".join(f"{r[0]:.2f}" for r in runs),
                        "<= 15: " + ("met" if good else "NOT met") if label == "per idle CPU" else "",
                    )
                )
                rows.append(
                    (
                        "  of which uv pip install (s)",
                        f"{med([r[1] for r in runs]):.2f}",
                        ", ".join(f"{r[1]:.2f}" for r in runs),
                        "",
                    )
                )
                rows.append(
                    (
                        "  of which import checks (s)",
                        f"{med([r[2] for r in runs]):.2f}",
                        ", ".join(f"{r[2]:.2f}" for r in runs),
                        "",
                    )
                )
                rows.append(
                    (
                        "  load average at start",
                        f"{med([r[3] for r in runs]):.1f}",
                        ", ".join(f"{r[3]:.1f}" for r in runs),
                        "",
                    )
                )
                rows.append(
                    (
                        "  CPU seconds (uv and the checks)",
                        f"{med([r[4] for r in runs]):.1f}",
                        ", ".join(f"{r[4]:.1f}" for r in runs),
                        "",
                    )
                )
        if "jobs" in only:
            j = jobs(work, args.rounds)
            ratio = med(j["uv"]) / med(j["local"])
            good = ratio <= 1.1
            ok &= good
            rows.append(
                (
                    "job, --env-manager local (s)",
                    f"{med(j['local']):.2f}",
                    ", ".join(f"{t:.2f}" for t in j["local"]),
                    "",
                )
            )
            rows.append(
                ("job, existing environment (s)", f"{med(j['uv']):.2f}", ", ".join(f"{t:.2f}" for t in j["uv"]), "")
            )
            rows.append(("ratio environment / local", f"{ratio:.3f}", "", f"<= 1.1: {'met' if good else 'NOT met'}"))
            extra = med(j["uv"]) - med(j["local"])
            rows.append(
                (
                    "overhead, existing environment - local (s)",
                    f"{extra:+.2f}",
                    "",
                    f"< 0.3: {'met' if extra < 0.3 else 'NOT met'}",
                )
            )
        if "workers" in only:
            w = workers(work, args.worker_reps)
            rows.append(
                (
                    "worker start, host interpreter (s)",
                    f"{med(w['host']):.3f}",
                    ", ".join(f"{t:.3f}" for t in w["host"]),
                    "",
                )
            )
            rows.append(
                ("worker start, environment (s)", f"{med(w['env']):.3f}", ", ".join(f"{t:.3f}" for t in w["env"]), "")
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.markdown:
        print("| measure | median | runs | target |\n|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        for row in rows:
            print("  ".join(row))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
