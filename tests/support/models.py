"""The heart model, trained once per machine: `cached_heart_model(config)` keeps the saved MLflow folder in
pytest's cache (`.pytest_cache/d/`), keyed by the trainer's source and the versions of the libraries that
write it, so a session fixture (and every xdist worker) reuses it instead of training again. The folder is
read-only for the tests: each one that registers it copies it into its own workspace."""

from __future__ import annotations

import hashlib
import inspect
import os
import shutil
import uuid
from importlib import metadata
from pathlib import Path

import pytest

import testkit


def _key(rows: int, seed: int) -> str:
    parts = [inspect.getsource(testkit.train_heart_model), inspect.getsource(testkit.model_requirements)]
    parts += [f"{name}={metadata.version(name)}" for name in ("mlflow-skinny", "scikit-learn", "pandas", "numpy")]
    parts += [str(rows), str(seed)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cached_heart_model(config: pytest.Config, factory: pytest.TempPathFactory, rows: int = 80, seed: int = 0) -> Path:
    """testkit.train_heart_model's folder, from the cache when a run on this machine already trained it.
    Without pytest's cache (`-p no:cacheprovider`) it trains into a temporary folder, as before."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return testkit.train_heart_model(factory.mktemp("heart-model") / "model", rows=rows, seed=seed)
    # <cache>/<key>/model: the model folder is named `model`, as a freshly trained one is (tests that
    # register it see that name copied into the workspace)
    folder = Path(cache.mkdir("batchctl-heart-models-v2")) / _key(rows, seed)
    if (folder / "model" / "MLmodel").is_file():
        return folder / "model"
    # trained beside its final path, then renamed into place: two workers training at once both succeed,
    # and the loser's copy goes; a reader never sees a half-written model
    partial = folder.parent / f".{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    testkit.train_heart_model(partial / "model", rows=rows, seed=seed)
    try:
        partial.rename(folder)
    except OSError:  # another worker put it there first
        shutil.rmtree(partial, ignore_errors=True)
    assert (folder / "model" / "MLmodel").is_file(), folder
    return folder / "model"
