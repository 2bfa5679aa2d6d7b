"""The competitors of batchctl, each run by bench/run.py as its own process.

    python bench/approaches.py plain   --model DIR --input DIR --output FILE [--flavor sklearn|pyfunc]
    python bench/approaches.py pool    --model DIR --input DIR --output FILE [--flavor ...] [--processes 2]
    python bench/approaches.py ray     --model DIR --input DIR --output DIR  [--concurrency 2]
    python bench/approaches.py dask    --model DIR --input DIR --output DIR  [--workers 2]
    python bench/approaches.py loadmodel --model DIR        (mlflow.pyfunc.load_model, nothing else)

Only the standard library is imported at module level, so each approach pays for exactly the imports
it needs (that is part of what is measured). Every approach reads every CSV/Parquet file of the input
folder and writes one prediction per input row; bench/run.py counts them.

The single-file outputs (plain, pool) use batchctl's results format: `row,prediction,file_name`, no
header. Ray and Dask write a folder of CSV parts (with a header each) in their own idiom.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

FEATURES = [f"f{i}" for i in range(10)]
DATA_SUFFIXES = (".csv", ".parquet")


def _input_files(input_dir: str) -> list[Path]:
    files = sorted(p for p in Path(input_dir).iterdir() if p.suffix in DATA_SUFFIXES)
    if not files:
        raise SystemExit(f"no input files in {input_dir}")
    return files


def _load_predict(model_dir: str, flavor: str):
    """Return a predict(DataFrame) callable: raw sklearn from the pickle, or through mlflow.pyfunc."""
    if flavor == "sklearn":
        import pickle

        with open(Path(model_dir) / "model.pkl", "rb") as fh:
            model = pickle.load(fh)
        return model.predict
    if flavor == "pyfunc":
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(model_dir).predict
    raise SystemExit(f"unknown flavor {flavor}")


def _read(path: Path):
    import pandas as pd

    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _score_file(predict, path: Path) -> str:
    """Score one file; return its results as CSV text (row,prediction,file_name)."""
    import numpy as np
    import pandas as pd

    df = _read(path)
    pred = np.asarray(predict(df)).ravel()
    part = pd.DataFrame({"row": np.arange(len(df)), "prediction": pred, "file_name": path.name})
    return part.to_csv(header=False, index=False)


# --- one plain process -------------------------------------------------------------------------------


def run_plain(args: argparse.Namespace) -> None:
    predict = _load_predict(args.model, args.flavor)
    with open(args.output, "w", newline="") as out:
        for path in _input_files(args.input):
            out.write(_score_file(predict, path))


# --- a hand-written multiprocessing.Pool ---------------------------------------------------------------

_POOL_PREDICT = None


def _pool_init(model_dir: str, flavor: str) -> None:
    global _POOL_PREDICT
    _POOL_PREDICT = _load_predict(model_dir, flavor)


def _pool_score(path: Path) -> str:
    return _score_file(_POOL_PREDICT, path)


def run_pool(args: argparse.Namespace) -> None:
    import multiprocessing as mp

    ctx = mp.get_context(args.start_method) if args.start_method else mp.get_context()
    files = _input_files(args.input)
    with (
        ctx.Pool(args.processes, initializer=_pool_init, initargs=(args.model, args.flavor)) as pool,
        open(args.output, "w", newline="") as out,
    ):
        for text in pool.imap(_pool_score, files, chunksize=1):
            out.write(text)


# --- Ray Data ------------------------------------------------------------------------------------------


class _RayPredictor:
    def __init__(self, model_dir: str):
        self.predict = _load_predict(model_dir, "sklearn")

    def __call__(self, batch):
        import pandas as pd

        pred = self.predict(batch[FEATURES])
        return pd.DataFrame({"prediction": pred, "file_name": batch["path"].map(os.path.basename)})


def run_ray(args: argparse.Namespace) -> None:
    import ray

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    files = [str(p) for p in _input_files(args.input)]
    if files[0].endswith(".parquet"):
        ds = ray.data.read_parquet(files, include_paths=True)
    else:
        ds = ray.data.read_csv(files, include_paths=True)
    ds = ds.map_batches(
        _RayPredictor,
        fn_constructor_kwargs={"model_dir": args.model},
        batch_format="pandas",
        concurrency=args.concurrency,
        # on 2 CPUs, actors asking for a whole CPU each leave none for the read tasks: it hangs
        num_cpus=0.5,
    )
    ds.write_csv(args.output)
    ray.shutdown()


# --- Dask ----------------------------------------------------------------------------------------------


def _dask_predict(pdf, model_dir: str):
    import pandas as pd
    from dask.distributed import get_worker

    worker = get_worker()
    predict = getattr(worker, "_bench_predict", None)
    if predict is None:  # load once per worker process
        predict = _load_predict(model_dir, "sklearn")
        worker._bench_predict = predict
    names = pdf["file_name"].astype(str).map(os.path.basename)
    return pd.DataFrame({"prediction": predict(pdf[FEATURES]), "file_name": names.to_numpy()})


def run_dask(args: argparse.Namespace) -> None:
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    files = [str(p) for p in _input_files(args.input)]
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        if files[0].endswith(".parquet"):
            ddf = dd.read_parquet(files, include_path_column="file_name")
        else:
            ddf = dd.read_csv(files, include_path_column="file_name")
        meta = {"prediction": "int64", "file_name": "object"}
        out = ddf.map_partitions(_dask_predict, args.model, meta=meta)
        os.makedirs(args.output, exist_ok=True)
        out.to_csv(os.path.join(args.output, "part-*.csv"), index=False)


# --- model load alone ----------------------------------------------------------------------------------


def run_loadmodel(args: argparse.Namespace) -> None:
    _load_predict(args.model, "pyfunc")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("approach", choices=["plain", "pool", "ray", "dask", "loadmodel"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--flavor", default="sklearn", choices=["sklearn", "pyfunc"])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--start-method", default=None, help="multiprocessing start method (pool)")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.approach != "loadmodel" and not (args.input and args.output):
        parser.error("--input and --output are required")
    globals()[f"run_{args.approach}"](args)


if __name__ == "__main__":
    sys.exit(main())
