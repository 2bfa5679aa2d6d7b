"""Wall time of one batch job on the `local` pool vs a `ray` compute (not part of the test suite).

Workload: 200 CSV files x 5,000 rows x 10 float columns, a LogisticRegression saved with mlflow
(cloudpickle format), max_concurrency_per_instance: 2, default mini-batch size (10). Each job is the
whole `batchctl endpoint invoke` process, so `ray` with `address: local` includes starting and stopping
its Ray instance. The results files are compared byte for byte.

    .venv/bin/python bench/ray_vs_local.py [--rounds N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES, ROWS, COLS = 200, 5000, 10


def make_workload(root: Path) -> tuple[Path, Path]:
    import logging

    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    data = root / "data"
    model = root / "model"
    if data.is_dir() and model.is_dir():
        return data, model
    rng = np.random.default_rng(0)
    columns = [f"x{i}" for i in range(COLS)]
    X = pd.DataFrame(rng.normal(size=(20_000, COLS)), columns=columns)
    y = (X.sum(axis=1) > 0).astype("int64")
    clf = LogisticRegression().fit(X, y)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.sklearn.save_model(
        clf, str(model), signature=infer_signature(X, clf.predict(X)), serialization_format="cloudpickle"
    )
    data.mkdir(parents=True)
    for i in range(FILES):
        frame = pd.DataFrame(rng.normal(size=(ROWS, COLS)), columns=columns)
        frame.to_csv(data / f"part-{i:04d}.csv", index=False)
    return data, model


def batchctl(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BATCHCTL_HOME": str(home), "NO_COLOR": "1"}
    exe = str(Path(sys.executable).with_name("batchctl"))
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, check=False)


def setup_workspace(root: Path, model: Path) -> Path:
    import yaml

    home = root / "ws"
    if (home / "registry.json").exists():
        return home
    for args in (
        ("endpoint", "create", "-n", "bench"),
        ("compute", "create", "-n", "my-ray", "--type", "ray", "--address", "local", "--max-workers", "2"),
    ):
        done = batchctl(home, *args)
        assert done.returncode == 0, done.stderr
    for name, compute in (("on-local", "local"), ("on-ray", "azureml:my-ray")):
        spec = root / f"{name}.yml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "endpoint_name": "bench",
                    "type": "model",
                    "model": {"path": str(model), "type": "mlflow_model", "name": "lr"},
                    "compute": compute,
                    "settings": {"max_concurrency_per_instance": 2},
                }
            )
        )
        done = batchctl(home, "deployment", "create", "-f", str(spec))
        assert done.returncode == 0, done.stderr
    return home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "batchctl-bench-ray"))
    args = parser.parse_args()
    root = Path(args.workdir)
    root.mkdir(parents=True, exist_ok=True)
    data, model = make_workload(root)
    home = setup_workspace(root, model)
    times: dict[str, list[float]] = {"on-local": [], "on-ray": []}
    outputs: dict[str, bytes] = {}
    for r in range(args.rounds):
        for deployment in ("on-local", "on-ray") if r % 2 == 0 else ("on-ray", "on-local"):
            out = root / "out" / f"{deployment}-{r}-{time.time_ns()}"
            started = time.perf_counter()
            done = batchctl(
                home,
                "endpoint",
                "invoke",
                "-n",
                "bench",
                "-d",
                deployment,
                "--input",
                str(data),
                "--output-path",
                str(out),
                "-o",
                "json",
            )
            elapsed = time.perf_counter() - started
            assert done.returncode == 0, done.stderr[-2000:]
            times[deployment].append(elapsed)
            outputs[deployment] = (out / "predictions.csv").read_bytes()
            print(f"round {r + 1} {deployment}: {elapsed:.1f} s", flush=True)
    same = outputs["on-local"] == outputs["on-ray"]
    rows = outputs["on-local"].count(b"\n")
    for deployment, values in times.items():
        print(f"{deployment}: median {statistics.median(values):.1f} s over {len(values)} round(s)")
    print(f"results: {rows} rows, identical bytes on local and ray: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
