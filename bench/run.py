"""batchctl benchmark: batchctl against the real alternatives, on one machine, in one run.

    make bench                                   # = .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --quick        # small data, 1 round: checks that every approach works
    .venv/bin/python bench/run.py --scale base --only batchctl,pool --models lr --rounds 5
    .venv/bin/python bench/run.py --markdown     # also print the tables and targets as Markdown

Builds the workload under bench/.work/ (reused when present), then runs each approach as a separate
process, round-robin over the approaches for --rounds rounds, measuring whole-process wall time and the
peak RSS of the process tree (psutil, every 50 ms). Every run's output is checked: a run that exits
non-zero or does not write one prediction per input row is reported as FAILED, never timed.
See docs/benchmarks.md for the method and the targets of issue 6.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
APPROACHES_PY = BENCH / "approaches.py"
PY = sys.executable
BIN = Path(PY).parent
BATCHCTL = str(BIN / "batchctl")
MLFLOW = str(BIN / "mlflow")
FEATURES = [f"f{i}" for i in range(10)]
SAMPLE_EVERY = 0.05
MB = 1024 * 1024

# datasets: name -> (files, rows per file), for the full run and for --quick
DATASETS = {
    "full": {"base": (200, 5000), "10x": (2000, 5000), "tiny": (20000, 10), "tiny-ref": (200, 1000)},
    "quick": {"base": (20, 1000), "10x": (200, 1000), "tiny": (2000, 10), "tiny-ref": (20, 1000)},
}
SEEDS = {"base": 1, "10x": 2, "tiny": 3, "tiny-ref": 4}
SCALES = ("base", "10x", "tiny")

LABELS = {
    "batchctl": "batchctl endpoint invoke (concurrency 2)",
    "batchctl-parquet": "batchctl, same data as Parquet",
    "plain": "one plain process, sklearn",
    "pyfunc": "one plain process, mlflow.pyfunc",
    "pool": "multiprocessing.Pool(2), sklearn",
    "mlflow-cli": "mlflow models predict (one concatenated CSV)",
    "ray": "Ray Data, local, incl. ray.init",
    "dask": "Dask LocalCluster(2), incl. start",
    "model-load": "mlflow.pyfunc.load_model alone, fresh process",
}
ALL_APPROACHES = tuple(LABELS)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# workload
# --------------------------------------------------------------------------------------------------


def _stamp_ok(stamp: Path, params: dict) -> bool:
    try:
        return json.loads(stamp.read_text()) == params
    except (OSError, ValueError):
        return False


def build_dataset(root: Path, name: str, files: int, rows: int, seed: int, parquet: bool) -> dict:
    """Seeded CSV files (and the same as Parquet, and their concatenation for `base`)."""
    csv_dir, pq_dir = root / f"{name}-csv", root / f"{name}-parquet"
    all_csv = root / f"{name}-all.csv"
    stamp = root / f"{name}.json"
    params = {"files": files, "rows": rows, "seed": seed, "parquet": parquet, "features": FEATURES}
    paths = {"csv": csv_dir, "parquet": pq_dir if parquet else None, "all_csv": all_csv if parquet else None}
    if _stamp_ok(stamp, params):
        return paths
    import numpy as np
    import pandas as pd

    log(f"building dataset {name}: {files} files x {rows} rows (seed {seed})")
    for d in (csv_dir, pq_dir):
        shutil.rmtree(d, ignore_errors=True)
    csv_dir.mkdir(parents=True)
    if parquet:
        pq_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    width = len(str(files - 1))
    for i in range(files):
        df = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
        stem = f"part-{i:0{width}d}"
        df.to_csv(csv_dir / f"{stem}.csv", index=False, float_format="%.6f")
        if parquet:
            df = pd.read_csv(csv_dir / f"{stem}.csv")  # the very same values as the CSV
            df.to_parquet(pq_dir / f"{stem}.parquet", index=False)
    if parquet:  # the concatenated CSV: one header, then every file's rows in order
        with open(all_csv, "wb") as out:
            out.write((",".join(FEATURES) + "\n").encode())
            for p in sorted(csv_dir.iterdir()):
                with open(p, "rb") as fh:
                    fh.readline()
                    shutil.copyfileobj(fh, out)
    stamp.write_text(json.dumps(params))
    return paths


SERIALIZATIONS = ("cloudpickle", "skops")


def build_models(root: Path, serialization: str = "cloudpickle") -> dict[str, Path]:
    """LogisticRegression and RandomForest(100 trees, depth 12), saved by mlflow with a signature, in
    cloudpickle or skops format (mlflow 3's default; the forest's tree type is recorded as trusted, which
    skops asks for)."""
    if serialization != "cloudpickle":
        root = root / serialization
    paths = {"lr": root / "lr", "rf": root / "rf"}
    stamp = root / "models.json"
    params = {"train_rows": 50000, "seed": 0, "format": serialization, "features": FEATURES}
    if _stamp_ok(stamp, params) and all((p / "MLmodel").is_file() for p in paths.values()):
        return paths
    log("training and saving the models (once)")
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(params["train_rows"], len(FEATURES))), columns=FEATURES)
    w = rng.normal(size=len(FEATURES))
    y = ((X.to_numpy() @ w + 0.5 * rng.normal(size=len(X))) > 0).astype("int64")
    models = {
        "lr": LogisticRegression(max_iter=1000),
        "rf": RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=-1, random_state=0),
    }
    for key, model in models.items():
        model.fit(X, y)
        if key == "rf":
            model.set_params(n_jobs=None)  # score single-threaded, like every worker here
        shutil.rmtree(paths[key], ignore_errors=True)
        sig = infer_signature(X.head(100), model.predict(X.head(100)))
        extra = {"skops_trusted_types": ["sklearn.tree._tree.Tree"]} if serialization == "skops" and key == "rf" else {}
        mlflow.sklearn.save_model(model, str(paths[key]), signature=sig, serialization_format=serialization, **extra)
    stamp.write_text(json.dumps(params))
    return paths


# --------------------------------------------------------------------------------------------------
# measuring one process
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Measured:
    wall_s: float
    returncode: int | None  # None: timed out and killed
    peak_tree_mb: float
    peak_root_mb: float
    max_procs: int
    start_epoch: float


def measure(cmd: list[str], *, env: dict, cwd: Path, out_dir: Path, timeout: float) -> Measured:
    """Run cmd; wall time from spawn to exit; RSS sum of the process and all its descendants."""
    out_dir.mkdir(parents=True, exist_ok=True)
    peaks = {"tree": 0, "root": 0, "procs": 0}
    stop = threading.Event()
    with open(out_dir / "stdout.txt", "wb") as so, open(out_dir / "stderr.txt", "wb") as se:
        start_epoch = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=so, stderr=se, start_new_session=True)

        def sample() -> None:
            while not stop.is_set():
                got = tree_rss(proc.pid)
                if got is None:
                    break
                total, root_rss, n = got
                peaks["tree"] = max(peaks["tree"], total)
                peaks["root"] = max(peaks["root"], root_rss)
                peaks["procs"] = max(peaks["procs"], n)
                stop.wait(SAMPLE_EVERY)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = None
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    _kill_group(proc)  # leftovers of the run (a daemon that outlived its parent), in its own session only
    return Measured(wall, rc, peaks["tree"] / MB, peaks["root"] / MB, peaks["procs"], start_epoch)


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_rss(root: int) -> tuple[int, int, int] | None:
    """(RSS of root and all its descendants, RSS of root, number of processes), in bytes.

    On Linux one pass over /proc/*/stat (ppid and rss of every process): about 5 ms with ~100 processes
    on the machine, a third of what psutil's children(recursive=True) + memory_info() costs, which
    matters when sampling every 50 ms on 2 cores. Elsewhere, psutil."""
    if not os.path.isdir("/proc/self"):
        try:
            p = psutil.Process(root)
            kids = p.children(recursive=True)
            root_rss = p.memory_info().rss
        except psutil.Error:
            return None
        total = root_rss
        for k in kids:
            try:
                total += k.memory_info().rss
            except psutil.Error:
                pass
        return total, root_rss, 1 + len(kids)
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) ": state ppid ... rss is #24
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * PAGE
    if root not in rss:
        return None
    total, n, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        n += 1
        stack.extend(children.get(pid, ()))
    return total, rss[root], n


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def quick_wall(cmd: list[str], env: dict | None = None, cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.decode()[-2000:]}")
    return wall


# --------------------------------------------------------------------------------------------------
# output checks
# --------------------------------------------------------------------------------------------------


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def count_single_csv(path: Path) -> int:
    """Rows of a headerless results file (batchctl's predictions.csv, plain, pool)."""
    return _count_lines(path)


def count_csv_folder(folder: Path) -> int:
    """Rows of a folder of CSV parts that each start with a header line (Ray, Dask)."""
    parts = [p for p in folder.rglob("*.csv") if p.is_file()]
    return sum(max(_count_lines(p) - 1, 0) for p in parts)


def count_mlflow_predictions(path: Path) -> int:
    """`mlflow models predict -o FILE` writes JSON: {"predictions": [...]}."""
    text = path.read_text()
    try:
        obj = json.loads(text)
    except ValueError:
        return _count_lines(path)
    preds = obj["predictions"] if isinstance(obj, dict) else obj
    return len(preds)


# --------------------------------------------------------------------------------------------------
# the approaches
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Job:
    approach: str
    model: str  # lr | rf
    workload: str  # base | 10x | tiny | tiny-ref
    input: Path
    expected_rows: int
    n_files: int

    @property
    def key(self) -> str:
        return f"{self.approach}|{self.model}/{self.workload}"


def compile_sources(*dirs: str) -> None:
    """Bytecode for these source folders, as an installed package has it, so that no timed run compiles."""
    env = _env()
    for folder in dirs:
        subprocess.run([PY, "-m", "compileall", "-q", folder], env=env, check=False, stdout=subprocess.DEVNULL)


def _env(extra: dict | None = None) -> dict:
    # an installed package has its bytecode compiled: PYTHONDONTWRITEBYTECODE (set in some shells) would
    # make every batchctl process of every run compile batchctl's modules from source again
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    env.update(extra or {})
    return env


DEPLOYMENT_YML = """\
name: bench-dpl
endpoint_name: bench
type: model
model: azureml:m@latest
settings:
  max_concurrency_per_instance: 2
"""


def batchctl_workspace(ws: Path, model_dir: Path) -> dict:
    """A fresh workspace with model m, endpoint bench and its default deployment (not timed)."""
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True)
    env = _env({"BATCHCTL_HOME": str(ws)})
    dep = ws.parent / "dep.yml"
    dep.write_text(DEPLOYMENT_YML)
    for cmd in (
        [BATCHCTL, "model", "create", "--name", "m", "--type", "mlflow_model", "--path", str(model_dir)],
        [BATCHCTL, "endpoint", "create", "-n", "bench"],
        [BATCHCTL, "deployment", "create", "-f", str(dep)],
    ):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ws.parent)
        if r.returncode != 0:
            raise RuntimeError(f"setup failed: {' '.join(cmd)}: {r.stderr[-2000:]}")
    return env


def _parse_log_time(line: str) -> float | None:
    try:  # batchctl's job logs: "YYYY-mm-dd HH:MM:SS.mmm ..." in UTC
        stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None
    return stamp.replace(tzinfo=dt.UTC).timestamp()


def batchctl_phases(job_dir: Path, start_epoch: float) -> dict:
    """Seconds from the invoke process's start to: job planned, first worker ready, first mini-batch
    scored (from logs/sys/master_role.txt and logs/sys/worker/*.txt)."""
    out: dict[str, float | None] = {"planned_s": None, "first_worker_ready_s": None, "first_batch_s": None}
    sysdir = job_dir / "logs" / "sys"
    master = sysdir / "master_role.txt"
    if master.is_file():
        for line in master.read_text().splitlines():
            t = _parse_log_time(line)
            if t is None:
                continue
            rest = line[24:]
            if out["planned_s"] is None and rest.startswith("job "):
                out["planned_s"] = t - start_epoch
            if out["first_worker_ready_s"] is None and " ready " in rest:
                out["first_worker_ready_s"] = t - start_epoch
    firsts = []
    for wf in sorted((sysdir / "worker").glob("*.txt")):
        for line in wf.read_text().splitlines():
            t = _parse_log_time(line)
            if t is not None and line[24:].startswith("mini-batch ") and " duration " in line:
                firsts.append(t)
                break
    if firsts:
        out["first_batch_s"] = min(firsts) - start_epoch
    return out


def run_job(job: Job, run_dir: Path, models: dict[str, Path], datasets: dict, timeout: float) -> dict:
    """Set up (untimed), run (timed), then check the output. Returns one run record."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    model = str(models[job.model])
    approach = job.approach
    env = _env()
    extra: dict = {}
    counter: Callable[[Path], int]
    if approach in ("batchctl", "batchctl-parquet"):
        env = batchctl_workspace(run_dir / "ws", models[job.model])
        output = run_dir / "out"
        cmd = [BATCHCTL, "endpoint", "invoke", "-n", "bench", "--input", str(job.input)]
        cmd += ["--output-path", str(output), "--job-name", "j1", "-o", "json"]
        result, counter = output / "predictions.csv", count_single_csv
    elif approach in ("plain", "pyfunc", "pool"):
        flavor = "pyfunc" if approach == "pyfunc" else "sklearn"
        result = run_dir / "out.csv"
        kind = "pool" if approach == "pool" else "plain"
        cmd = [PY, str(APPROACHES_PY), kind, "--model", model, "--input", str(job.input)]
        cmd += ["--output", str(result), "--flavor", flavor]
        counter = count_single_csv
    elif approach == "mlflow-cli":
        result = run_dir / "out.csv"
        cmd = [MLFLOW, "models", "predict", "-m", model, "-i", str(job.input), "-o", str(result)]
        cmd += ["--env-manager", "local", "-t", "csv"]
        counter = count_mlflow_predictions
    elif approach == "model-load":  # the model's own load time: import mlflow + load_model, nothing else
        result = None
        cmd = [PY, "-c", "import sys, mlflow.pyfunc; mlflow.pyfunc.load_model(sys.argv[1])", model]
        counter = count_single_csv
    elif approach in ("ray", "dask"):
        result = run_dir / "out"
        cmd = [PY, str(APPROACHES_PY), approach, "--model", model, "--input", str(job.input)]
        cmd += ["--output", str(result)]
        counter = count_csv_folder
    else:
        raise ValueError(approach)

    m = measure(cmd, env=env, cwd=run_dir, out_dir=run_dir, timeout=timeout)
    rec = {
        "approach": approach,
        "model": job.model,
        "workload": job.workload,
        "files": job.n_files,
        "expected_rows": job.expected_rows,
        "wall_s": round(m.wall_s, 3),
        "peak_tree_mb": round(m.peak_tree_mb, 1),
        "peak_root_mb": round(m.peak_root_mb, 1),
        "max_procs": m.max_procs,
        "returncode": m.returncode,
        "cmd": cmd,
        "ok": False,
        "error": None,
    }
    if m.returncode is None:
        rec["error"] = f"timed out after {timeout:.0f} s"
    elif m.returncode != 0:
        rec["error"] = f"exit code {m.returncode}"
    elif result is None:
        pass  # nothing to count (model-load)
    elif not result.exists():
        rec["error"] = f"no output at {result}"
    else:
        rows = counter(result)
        rec["rows"] = rows
        if rows != job.expected_rows:
            rec["error"] = f"wrote {rows} prediction rows, expected {job.expected_rows}"
    if approach.startswith("batchctl") and rec["error"] is None:
        try:
            status = json.loads((run_dir / "stdout.txt").read_text()).get("status")
        except (ValueError, AttributeError):
            status = None
        if status != "Completed":
            rec["error"] = f"job status {status!r}, expected 'Completed'"
        job_dir = run_dir / "ws" / "jobs" / "j1"
        extra = batchctl_phases(job_dir, m.start_epoch)
        rec.update(extra)
    if rec["error"] is None:
        rec["ok"] = True
    else:
        tail = (run_dir / "stderr.txt").read_text(errors="replace")[-1500:]
        rec["stderr_tail"] = tail
    return rec


# --------------------------------------------------------------------------------------------------
# startup and model load
# --------------------------------------------------------------------------------------------------


def measure_startup(reps: int, ws_env: dict) -> dict:
    """Medians of alternated runs: bare interpreter, the bare typer/pydantic/yaml import, `batchctl
    --help`, and `batchctl endpoint list` (in a workspace holding one endpoint and deployment)."""
    floor = str(BENCH / "typer_floor.py")
    cmds = {
        "python -c pass": [PY, "-c", "pass"],
        "python -c 'import typer, pydantic, yaml'": [PY, "-c", "import typer, pydantic, yaml"],
        "minimal typer app (bench/typer_floor.py endpoint list)": [PY, floor, "endpoint", "list"],
        "batchctl --help": [BATCHCTL, "--help"],
        "batchctl endpoint list": [BATCHCTL, "endpoint", "list", "-o", "json"],
    }
    # an installed package has its bytecode compiled; PYTHONDONTWRITEBYTECODE (set in some shells)
    # would make every run compile batchctl's modules from source
    env = {k: v for k, v in ws_env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [PY, "-m", "compileall", "-q", str(REPO / "src"), floor], env=env, check=False, stdout=subprocess.DEVNULL
    )
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(reps):
        for name, cmd in cmds.items():
            samples[name].append(quick_wall(cmd, env=env))
    return {"samples": samples, "median_s": {k: statistics.median(v) for k, v in samples.items()}}


# --------------------------------------------------------------------------------------------------
# summary and targets
# --------------------------------------------------------------------------------------------------


def summarise(records: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["approach"], r["model"], r["workload"]), []).append(r)
    rows = []
    for (approach, model, workload), recs in groups.items():
        ok = [r for r in recs if r["ok"]]
        row = {
            "approach": approach,
            "model": model,
            "workload": workload,
            "files": recs[0]["files"],
            "rows": recs[0]["expected_rows"],
            "runs": len(recs),
            "ok_runs": len(ok),
            "errors": sorted({r["error"] for r in recs if r["error"]}),
        }
        if ok:
            walls = [r["wall_s"] for r in ok]
            row.update(
                wall_s=statistics.median(walls),
                wall_min_s=min(walls),
                wall_max_s=max(walls),
                peak_tree_mb=statistics.median(r["peak_tree_mb"] for r in ok),
                peak_root_mb=statistics.median(r["peak_root_mb"] for r in ok),
                max_procs=max(r["max_procs"] for r in ok),
            )
            for k in ("planned_s", "first_worker_ready_s", "first_batch_s"):
                vals = [r[k] for r in ok if r.get(k) is not None]
                if vals:
                    row[k] = statistics.median(vals)
        rows.append(row)
    by = {(r["approach"], r["model"], r["workload"]): r for r in rows}
    for r in rows:
        ref = by.get(("batchctl", r["model"], r["workload"]))
        if ref and ref.get("wall_s") and r.get("wall_s") and r["approach"] != "model-load":
            r["ratio_to_batchctl"] = r["wall_s"] / ref["wall_s"]
    return rows


def _wall(by: dict, approach: str, model: str, workload: str) -> float | None:
    r = by.get((approach, model, workload))
    return r.get("wall_s") if r else None


def model_load(rows: list[dict], startup: dict | None) -> dict[str, float]:
    """The model's own load time: median wall of `mlflow.pyfunc.load_model` in a fresh process (measured
    in the rounds, alternated with the rest) minus the bare interpreter's start (`python -c pass`)."""
    bare = startup["median_s"]["python -c pass"] if startup else 0.0
    return {
        r["model"]: r["wall_s"] - bare for r in rows if r["approach"] == "model-load" and r.get("wall_s") is not None
    }


def targets(rows: list[dict], startup: dict | None, loads: dict[str, float], sizes: dict) -> list[dict]:
    """Issue 6's targets, each as (target, measured, met) from this run's numbers."""
    by = {(r["approach"], r["model"], r["workload"]): r for r in rows}
    out: list[dict] = []

    def add(name: str, goal: str, value: float | None, ok: Callable[[float], bool], fmt: str = "{:.2f}"):
        out.append(
            {
                "target": name,
                "goal": goal,
                "measured": None if value is None else round(value, 3),
                "measured_text": "n/a" if value is None else fmt.format(value),
                "met": None if value is None else bool(ok(value)),
            }
        )

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    bc = {m: _wall(by, "batchctl", m, "base") for m in ("lr", "rf")}
    add(
        "batchctl / mlflow models predict, logistic regression",
        "<= 0.60",
        ratio(bc["lr"], _wall(by, "mlflow-cli", "lr", "base")),
        lambda v: v <= 0.60,
    )
    add(
        "batchctl / one process through mlflow.pyfunc, random forest",
        "<= 0.60 (2-core limit 0.5)",
        ratio(bc["rf"], _wall(by, "pyfunc", "rf", "base")),
        lambda v: v <= 0.60,
    )
    for m, label in (("lr", "logistic regression"), ("rf", "random forest")):
        add(
            f"Ray Data / batchctl, {label}",
            ">= 4",
            ratio(_wall(by, "ray", m, "base"), bc[m]),
            lambda v: v >= 4,
        )
    for m, label in (("lr", "logistic regression"), ("rf", "random forest")):
        add(f"Dask / batchctl, {label}", ">= 2", ratio(_wall(by, "dask", m, "base"), bc[m]), lambda v: v >= 2)
    for m, label in (("lr", "logistic regression"), ("rf", "random forest")):
        add(
            f"batchctl wall time at 10x the data / base, {label}",
            "<= 10.5",
            ratio(_wall(by, "batchctl", m, "10x"), bc[m]),
            lambda v: v <= 10.5,
        )
    drivers = [
        r["peak_root_mb"]
        for r in rows
        if r["approach"] == "batchctl" and r.get("peak_root_mb") and r["workload"] in ("base", "10x", "tiny")
    ]
    counts = " / ".join(f"{sizes[w][0]:,}" for w in ("base", "10x", "tiny"))
    add(
        f"batchctl driver peak RSS, max / min over {counts} files",
        "<= 1.2",
        max(drivers) / min(drivers) if len(drivers) >= 2 else None,
        lambda v: v <= 1.2,
    )
    add(
        f"batchctl on {sizes['tiny'][0]:,} tiny files / the same rows in {sizes['tiny-ref'][0]:,} files",
        "<= 3",
        ratio(_wall(by, "batchctl", "lr", "tiny"), _wall(by, "batchctl", "lr", "tiny-ref")),
        lambda v: v <= 3,
    )
    if startup:
        med = startup["median_s"]
        bare = med["python -c 'import typer, pydantic, yaml'"]
        for cmd in ("batchctl endpoint list", "batchctl --help"):
            add(
                f"`{cmd}` / bare `import typer, pydantic, yaml`",
                "<= 1.5",
                med[cmd] / bare,
                lambda v: v <= 1.5,
            )
    for m, label in (("lr", "logistic regression"), ("rf", "random forest")):
        r = by.get(("batchctl", m, "base"))
        load = loads.get(m)
        if r and r.get("first_batch_s") is not None and load is not None:
            over = r["first_batch_s"] - load
        else:
            over = None
        add(
            f"invoke to first mini-batch scored, minus the model's own load ({label})",
            "<= 2 s",
            over,
            lambda v: v <= 2.0,
            fmt="{:.2f} s",
        )
    return out


# --------------------------------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------------------------------

WORKLOAD_TEXT = {
    "base": "{files} files x {per} rows",
    "10x": "10x: {files} files x {per} rows",
    "tiny": "tiny: {files} files x {per} rows",
    "tiny-ref": "same rows in {files} files x {per} rows",
}


def _workload_text(r: dict) -> str:
    per = r["rows"] // max(r["files"], 1)
    model = {"lr": "logistic reg.", "rf": "RF 100"}[r["model"]]
    return f"{model}, " + WORKLOAD_TEXT[r["workload"]].format(files=f"{r['files']:,}", per=f"{per:,}")


def table_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    head = ["approach", "workload", "median wall s", "min-max s", "peak RSS MB (tree)", "driver MB", "procs"]
    head += ["x batchctl", "runs ok"]
    body = []
    for r in rows:
        if r.get("wall_s") is None:
            cells = ["FAILED", "", "", "", "", "", f"0/{r['runs']}"]
        else:
            cells = [
                f"{r['wall_s']:.2f}",
                f"{r['wall_min_s']:.2f}-{r['wall_max_s']:.2f}",
                f"{r['peak_tree_mb']:.0f}",
                f"{r['peak_root_mb']:.0f}" if r["approach"].startswith("batchctl") else "",
                str(r["max_procs"]),
                f"{r['ratio_to_batchctl']:.2f}" if r.get("ratio_to_batchctl") else "",
                f"{r['ok_runs']}/{r['runs']}",
            ]
        body.append([LABELS[r["approach"]], _workload_text(r), *cells])
    return head, body


def render_text(head: list[str], body: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def render_md(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines)


def report(result: dict, markdown: bool) -> str:
    render = render_md if markdown else render_text
    m = result["machine"]
    parts = []
    title = "## " if markdown else ""
    parts.append(
        f"{title}Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']:.0f} GB, Python {m['python']}, "
        f"load average {m['loadavg_start'][0]:.2f} at start, {result['loadavg_end'][0]:.2f} at end; "
        f"{result['rounds']} alternated round(s), mode {result['mode']}, models saved with "
        f"{result.get('serialization', 'cloudpickle')}; "
        f"Pool start method {m['pool_start_method']}; versions "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
        + "."
    )
    parts.append(render(*table_rows(result["summary"])))
    phase_rows = [
        [LABELS[r["approach"]], _workload_text(r)]
        + [f"{r[k]:.2f}" if r.get(k) is not None else "" for k in ("planned_s", "first_worker_ready_s")]
        + [f"{r['first_batch_s']:.2f}" if r.get("first_batch_s") is not None else ""]
        for r in result["summary"]
        if r["approach"].startswith("batchctl") and r.get("wall_s")
    ]
    if phase_rows:
        parts.append(f"{title}batchctl: seconds from the invoke process's start to")
        parts.append(
            render(["approach", "workload", "job planned", "first worker ready", "first mini-batch"], phase_rows)
        )
    if result.get("startup"):
        st = result["startup"]
        bare = st["median_s"]["python -c 'import typer, pydantic, yaml'"]
        srows = [[k, f"{v:.3f}", f"{v / bare:.2f}"] for k, v in st["median_s"].items()]
        srows += [
            [f"model's own load ({k}): load_model wall minus `python -c pass`", f"{v:.3f}", ""]
            for k, v in result["model_load_s"].items()
        ]
        parts.append(f"{title}Start-up (median of {len(st['samples']['python -c pass'])}, wall s)")
        parts.append(render(["command", "median s", "x bare import"], srows))
    trows = []
    for t in result["targets"]:
        met = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        trows.append([t["target"], t["goal"], t["measured_text"], met])
    parts.append(f"{title}Targets of issue 6 (ratios from this run)")
    parts.append(render(["target", "goal", "measured", "status"], trows))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def _split(values: list[str] | None, allowed: tuple[str, ...], what: str) -> list[str]:
    if not values:
        return list(allowed)
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    if "all" in out:
        return list(allowed)
    bad = [v for v in out if v not in allowed]
    if bad:
        raise SystemExit(f"unknown {what}: {', '.join(bad)} (choose from {', '.join(allowed)})")
    return out


def plan_jobs(scales: list[str], approaches: list[str], models: list[str], data: dict, sizes: dict) -> list[Job]:
    have = {
        "ray": importlib.util.find_spec("ray") is not None,
        "dask": importlib.util.find_spec("dask") is not None and importlib.util.find_spec("distributed") is not None,
    }
    for name, ok in have.items():
        if name in approaches and not ok:
            log(f"{name} is not installed: its rows are skipped")
    jobs: list[Job] = []

    def add(approach: str, model: str, workload: str, inp: Path) -> None:
        if approach in approaches and have.get(approach, True) and model in models:
            files, rows = sizes[workload]
            jobs.append(Job(approach, model, workload, inp, files * rows, files))

    for model in ("lr", "rf"):
        if "base" in scales:
            base = data["base"]
            add("batchctl", model, "base", base["csv"])
            add("batchctl-parquet", model, "base", base["parquet"])
            add("plain", model, "base", base["csv"])
            add("pyfunc", model, "base", base["csv"])
            add("pool", model, "base", base["csv"])
            if model == "lr":
                add("mlflow-cli", model, "base", base["all_csv"])
            add("ray", model, "base", base["csv"])
            add("dask", model, "base", base["csv"])
            add("model-load", model, "base", base["csv"])
        if "10x" in scales:
            for a in ("batchctl", "plain", "pool"):
                add(a, model, "10x", data["10x"]["csv"])
    if "tiny" in scales:
        add("batchctl", "lr", "tiny", data["tiny"]["csv"])
        add("batchctl", "lr", "tiny-ref", data["tiny-ref"]["csv"])
    return jobs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small data (20 files x 1,000 rows; 10x: 200 files; tiny: 2,000 x 10) and 1 round",
    )
    ap.add_argument("--rounds", type=int, default=None, help="alternated rounds (default 3; 1 with --quick)")
    ap.add_argument(
        "--scale",
        action="append",
        metavar="{base,10x,tiny,all}",
        help="workloads to run, comma-separated or repeated (default: all three)",
    )
    ap.add_argument(
        "--only",
        action="append",
        metavar="APPROACH",
        help=f"approaches to run, comma-separated: {', '.join(ALL_APPROACHES)}",
    )
    ap.add_argument("--models", action="append", metavar="{lr,rf}", help="models (default: both)")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up timings")
    ap.add_argument("--startup-reps", type=int, default=None, help="runs per start-up command (default 10)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before one run counts as failed")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--keep", action="store_true", help="keep every run's outputs (default: logs only)")
    ap.add_argument(
        "--serialization",
        choices=SERIALIZATIONS,
        default="cloudpickle",
        help="how the models are saved (default cloudpickle; skops is mlflow 3's default)",
    )
    args = ap.parse_args(argv)

    mode = "quick" if args.quick else "full"
    rounds = args.rounds or (1 if args.quick else 3)
    scales = _split(args.scale, SCALES, "scale")
    approaches = _split(args.only, ALL_APPROACHES, "approach")
    models_sel = _split(args.models, ("lr", "rf"), "model")
    sizes = DATASETS[mode]
    startup_reps = args.startup_reps or (3 if args.quick else 10)

    if not Path(BATCHCTL).exists():
        raise SystemExit(f"{BATCHCTL} not found: run `make install` first")
    blas = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    if blas:
        log(f"note: {blas} is set; it slows a current numpy (see docs/benchmarks.md)")

    root = WORK / mode
    t_build = time.perf_counter()
    models = build_models(WORK / "models", args.serialization)
    need = {"base"} if "base" in scales else set()
    need |= {"10x"} if "10x" in scales else set()
    need |= {"tiny", "tiny-ref"} if "tiny" in scales else set()
    data = {
        name: build_dataset(root / "data", name, *sizes[name], SEEDS[name], parquet=(name == "base"))
        for name in ("base", "10x", "tiny", "tiny-ref")
        if name in need
    }
    build_s = time.perf_counter() - t_build
    jobs = plan_jobs(scales, approaches, models_sel, data, sizes)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs_root = root / "runs" / stamp
    vm = psutil.virtual_memory()
    machine = {
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu": _cpu_model(),
        "memory_gb": vm.total / 1024**3,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
        "env": blas,
        "pool_start_method": _start_method(),
        "versions": _versions(),
    }
    log(f"{len(jobs)} jobs x {rounds} round(s) on {machine['cores']} cores; runs in {runs_root}")
    records: list[dict] = []
    t_runs = time.perf_counter()
    for rnd in range(rounds):
        for i, job in enumerate(jobs):
            run_dir = runs_root / f"r{rnd}" / f"{i:02d}-{job.approach}-{job.model}-{job.workload}"
            rec = run_job(job, run_dir, models, data, args.timeout)
            rec["round"] = rnd
            records.append(rec)
            status = "ok" if rec["ok"] else f"FAILED: {rec['error']}"
            log(
                f"round {rnd + 1}/{rounds} {job.approach:16} {job.model}/{job.workload:8} "
                f"{rec['wall_s']:8.2f} s {rec['peak_tree_mb']:8.0f} MB  {status}"
            )
            if not rec["ok"]:
                log("stderr tail:\n" + rec.get("stderr_tail", ""))
            if rec["ok"] and not args.keep:  # keep logs, drop data-sized outputs
                for sub in ("out", "out.csv"):
                    p = run_dir / sub
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                for p in (run_dir / "ws" / "datastores", run_dir / "ws" / "models"):
                    shutil.rmtree(p, ignore_errors=True)
    runs_s = time.perf_counter() - t_runs

    startup = None
    if not args.no_startup and "batchctl" in approaches:
        log(f"start-up timings ({startup_reps} alternated runs each)")
        ws_env = batchctl_workspace(runs_root / "startup" / "ws", models["lr"])
        startup = measure_startup(startup_reps, ws_env)

    summary = summarise(records)
    result = {
        "timestamp": stamp,
        "mode": mode,
        "serialization": args.serialization,
        "rounds": rounds,
        "scales": scales,
        "datasets": {k: {"files": v[0], "rows_per_file": v[1]} for k, v in sizes.items() if k in need},
        "machine": machine,
        "loadavg_end": os.getloadavg(),
        "build_s": build_s,
        "runs_s": runs_s,
        "records": records,
        "summary": summary,
        "startup": startup,
    }
    result["model_load_s"] = model_load(summary, startup)
    result["targets"] = targets(summary, startup, result["model_load_s"], sizes)
    out_json = WORK / f"results-{stamp}.json"
    out_json.write_text(json.dumps(result, indent=2, default=str))
    print(report(result, args.markdown))
    log(f"results: {out_json} (workload build {build_s:.0f} s, runs {runs_s:.0f} s)")
    failed = [r for r in records if not r["ok"]]
    if failed:
        log(f"{len(failed)} run(s) FAILED; see their stderr.txt under {runs_root}")
        return 1
    return 0


def _start_method() -> str:
    import multiprocessing

    return multiprocessing.get_start_method(allow_none=False)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "batchctl",
        "mlflow",
        "scikit-learn",
        "pandas",
        "pyarrow",
        "numpy",
        "ray",
        "dask",
        "distributed",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    sys.exit(main())
