"""The shared test support (tests/support): one wait_for, and the heart model trained once per machine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.models import cached_heart_model
from support.waiting import wait_for


def test_wait_for_returns_the_first_true_value_and_names_what_never_happened() -> None:
    calls = iter([0, None, "ready"])
    assert wait_for(lambda: next(calls), 5, "the third call", interval=0.01) == "ready"
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"timed out after 0.2s waiting for the door"):
        wait_for(lambda: False, 0.2, "the door", interval=0.05)
    assert time.monotonic() - started >= 0.2


def test_the_heart_model_is_trained_once_and_then_read_from_the_cache(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import testkit

    trained: list[Path] = []
    real = testkit.train_heart_model

    def counting(target: Path, rows: int = 80, seed: int = 0) -> Path:
        trained.append(target)
        return real(target, rows=rows, seed=seed)

    monkeypatch.setattr(testkit, "train_heart_model", counting)
    first = cached_heart_model(pytestconfig, tmp_path_factory, rows=40, seed=7)
    stamp = (first / "MLmodel").stat().st_mtime_ns
    again = cached_heart_model(pytestconfig, tmp_path_factory, rows=40, seed=7)
    assert again == first and (again / "MLmodel").stat().st_mtime_ns == stamp
    assert len(trained) <= 1  # once, or never when an earlier run on this machine trained it
    assert Path(pytestconfig.cache.mkdir("batchctl-heart-models-v2")) in first.parents
    other = cached_heart_model(pytestconfig, tmp_path_factory, rows=41, seed=7)
    assert other != first  # another training set is another model
    assert not [p for p in first.parent.parent.iterdir() if p.name.startswith(".")]  # no partial copy left
    assert first.name == "model"  # named as a freshly trained model is: registering it copies that name
