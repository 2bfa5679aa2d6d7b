"""The Python of a pipeline step's environment (issue 24: Azure's training-with-components asks for
`python=3.8.5` and pins `pandas==1.4`, which has no wheel for 3.11). A step runs its component's command, no
batchctl code, so its environment may use a Python below the worker's 3.11 (down to 3.8): found in pyenv's
versions folder (its shims only re-run pyenv), uv's managed Pythons, or the PATH less pyenv's shims. When none
is found, the substitution (or, with --env-strict, the one-line error) names the version and where batchctl
looked. Offline: a fake pyenv root, and this machine's own Python 3.8 when it has one."""

from __future__ import annotations

import io
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from batchctl.envs import build
from batchctl.envs.spec import from_conda
from batchctl.errors import EnvironmentBuildError


def _fake_pyenv(root: Path, version: str) -> Path:
    """`<root>/versions/<version>/bin/pythonX.Y`: a script answering the version check as that Python would."""
    minor = ".".join(version.split(".")[:2])
    exe = root / "versions" / version / "bin" / f"python{minor}"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"#!/bin/sh\necho {version}\n")
    exe.chmod(0o755)
    return exe


def test_a_step_environment_takes_the_python_its_file_asks_for_from_pyenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    _fake_pyenv(tmp_path / "pyenv", "3.8.2")
    newest = _fake_pyenv(tmp_path / "pyenv", "3.8.17")
    _fake_pyenv(tmp_path / "pyenv", "3.9.1")
    env = {**build.uv_environ(), "PATH": f"{tmp_path / 'pyenv' / 'shims'}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    exe, version, change = build.choose_python("3.8.5", False, env, io.StringIO(), worker_code=False)
    assert (exe, version, change) == (str(newest), "3.8.17", None)
    # an environment batchctl's worker runs in keeps its 3.11 floor: this interpreter, with the reason
    exe, version, change = build.choose_python("3.8.5", False, env, io.StringIO(), worker_code=True)
    assert change is not None and change.reason == "batchctl's worker needs Python 3.11 or newer"
    assert version == build.host_python()[1]


def test_no_interpreter_names_the_version_and_where_batchctl_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    _fake_pyenv(tmp_path / "pyenv", "3.9.1")
    env = {**build.uv_environ(), "PATH": "/nowhere"}
    with pytest.raises(EnvironmentBuildError) as raised:
        build.choose_python("3.10.4", True, env, io.StringIO(), worker_code=False)
    message = raised.value.message
    assert message.startswith("the environment asks for Python 3.10.4: no Python 3.10 interpreter found (looked in ")
    assert f"{tmp_path / 'pyenv' / 'versions'}, " in message and "PATH (less pyenv's shims)" in message, message
    assert "\n" not in message
    # without --env-strict: this interpreter, with the same reason as the notice's
    _, _, change = build.choose_python("3.10.4", False, env, io.StringIO(), worker_code=False)
    assert change is not None and change.reason == message.split(": ", 1)[1]
    # below what uv and the import check run on: the floor is said
    _, _, change = build.choose_python("3.7", False, env, io.StringIO(), worker_code=False)
    assert change is not None and change.reason == "uv and batchctl's import check need Python 3.8 or newer"


def test_a_step_spec_has_a_key_of_its_own_and_worker_keys_stay() -> None:
    spec = from_conda({"dependencies": ["python=3.8.5", {"pip": ["pandas==1.4"]}]}, "conda.yml")
    step = replace(spec, worker_code=False)
    assert spec.worker_code and "worker_code" not in spec.canonical()  # keys of environments built before
    assert step.key != spec.key and step.describe()["worker_code"] is False


def test_a_pipeline_steps_environment_record_says_no_worker_code(tmp_path: Path) -> None:
    from batchctl.jobs.environment import spec_of
    from batchctl.resources.pipelines import resolve_step_environment
    from batchctl.workspace import Workspace

    conda = {"dependencies": ["python=3.8.5", "pip", {"pip": ["pandas==1.4"]}]}
    record = resolve_step_environment(Workspace(tmp_path), {}, {"conda_file": conda}, "environment", "comp.yml")
    assert record is not None and record["worker_code"] is False
    assert spec_of({**record, "manager": "uv"}).worker_code is False  # read back by the runner


def test_the_import_check_runs_on_python_3_8(tmp_path: Path) -> None:
    found, looked = build.find_python((3, 8), build.uv_environ(), io.StringIO())
    # as the training-with-components replay does, a machine without 3.8 fails here, saying so (a skip would
    # pass the suite without the check ever running)
    assert found is not None, f"this test needs a Python 3.8 on the machine (pyenv install 3.8); looked in {looked}"
    log = io.StringIO()
    failures = build.smoke(found[0], ["pip", "no-such-dist"], build.uv_environ(), log)
    assert failures == [["no-such-dist", None, "not installed"]], log.getvalue()
    assert sys.version_info[:2] != (3, 8)  # the check ran in another interpreter than this one


def test_an_install_that_fails_after_a_python_substitution_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error of the training example on a machine without Python 3.8: its pins do not install on the
    Python used instead, and the hint says which Python was asked for, where batchctl looked, and the log."""
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    spec = replace(
        from_conda({"dependencies": ["python=3.99.1", {"pip": ["bcprobe==9.9"]}]}, "conda.yml"), worker_code=False
    )
    with pytest.raises(EnvironmentBuildError) as raised:
        build.ensure(tmp_path / "envs", spec)
    assert "cannot install bcprobe==9.9" in raised.value.message
    hint = str(raised.value.hint)
    assert hint.startswith("the environment asks for Python 3.99.1 and was built on "), hint
    assert "no Python 3.99 interpreter found (looked in " in hint and "install Python 3.99 (pyenv install" in hint
    assert "; full log: " in hint and Path(hint.rsplit("full log: ", 1)[1]).is_file()
