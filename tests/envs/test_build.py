"""envs.build directly: the import checks that make an environment that installs but does not import
fail its build (run in parallel processes, one per CPU; the verdict is the same as in one process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchctl.envs import build, spec
from batchctl.errors import EnvironmentBuildError

from .wheels import write_wheel


@pytest.fixture
def wheels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "wheels"
    write_wheel(folder, "bcprobe", "1.0.0")
    write_wheel(folder, "bcloud", "1.0.0", code='print("hello from bcloud")\nVALUE = 1\n')
    write_wheel(folder, "bcbroken", "1.0.0", code='raise ImportError("broken on purpose")\n')
    write_wheel(folder, "bcdies", "1.0.0", code='import os, sys\nsys.stderr.write("bcdies: gone\\n")\nos._exit(3)\n')
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder


def env_spec(*reqs: str) -> spec.EnvSpec:
    return spec.from_requirements(list(reqs), None, "test")


def idle_cpus(monkeypatch: pytest.MonkeyPatch, cpus: int, load: float) -> None:
    monkeypatch.setattr(build.os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(build.os, "getloadavg", lambda: (load, load, load))


def test_one_import_check_process_per_idle_cpu(monkeypatch):
    idle_cpus(monkeypatch, 8, 0.2)
    assert [build.smoke_procs(n) for n in (1, 3, 10)] == [1, 3, build.SMOKE_PROCS]
    idle_cpus(monkeypatch, 2, 1.4)
    assert build.smoke_procs(5) == 1
    idle_cpus(monkeypatch, 2, 11.0)  # a busy machine: one process, never none
    assert build.smoke_procs(5) == 1


@pytest.mark.parametrize(("cpus", "procs"), [(1, 1), (4, 3)])
def test_a_requirement_that_installs_but_does_not_import_fails_the_build(wheels, tmp_path, monkeypatch, cpus, procs):
    idle_cpus(monkeypatch, cpus, 0.0)
    root = tmp_path / "envs"
    s = env_spec("bcprobe==1.0.0", "bcloud", "bcbroken")
    with pytest.raises(EnvironmentBuildError) as caught:
        build.ensure(root, s)
    assert str(caught.value) == (
        f"environment {s.key[:12]}: bcbroken installs but import bcbroken fails: ImportError: broken on purpose"
    )
    assert caught.value.hint is not None and "full log: " in caught.value.hint
    log = Path(caught.value.hint.split("full log: ")[1])
    text = log.read_text()
    assert "hello from bcloud" in text  # what an import prints goes to the log
    assert f"<import check> x{procs}: " in text and text.count("[import check: exit ") == procs
    assert build.load(root, s.key) is None
    assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []


def test_an_import_that_kills_its_process_fails_the_build(wheels, tmp_path):
    root = tmp_path / "envs"
    s = env_spec("bcdies", "bcprobe==1.0.0", "bcloud")
    with pytest.raises(EnvironmentBuildError) as caught:
        build.ensure(root, s)
    assert str(caught.value) == f"environment {s.key[:12]}: bcdies installs but import bcdies fails: bcdies: gone"
    assert build.load(root, s.key) is None


def test_packages_that_import_build_and_print_nothing_on_the_answers(wheels, tmp_path):
    root = tmp_path / "envs"
    built = build.ensure(root, env_spec("bcprobe==1.0.0", "bcloud"))
    assert built.built and Path(built.lock_file).read_text() == "bcloud==1.0.0\nbcprobe==1.0.0\n"
    log = Path(built.build_log or "").read_text()
    assert "[import checks: " in log and "hello from bcloud" in log
