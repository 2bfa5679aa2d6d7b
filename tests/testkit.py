"""Helpers shared by test folders (a module of its own: every conftest.py in the tree is `conftest`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# what mlflow's requirement inference finds for these models, pinned to this interpreter's versions
MODEL_PACKAGES = ("mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn", "scipy")


def model_requirements() -> list[str]:
    """pip requirements for the models tests save. Given explicitly, they spare mlflow's inference, which
    loads each saved model in a subprocess to see what it imports (6-7 s per model on this machine)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in MODEL_PACKAGES]


def train_heart_model(target: Path, rows: int = 80, seed: int = 0) -> Path:
    """A real scikit-learn pipeline on a string and two numeric columns, saved with mlflow (cloudpickle)."""
    import logging

    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.uniform(30, 80, rows),
            "chol": rng.uniform(120, 400, rows),
            "thal": rng.choice(["normal", "fixed", "reversible"], rows),
        }
    )
    y = ((X["age"] > 55) ^ (X["thal"] == "normal")).astype("int64")
    features = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["thal"]),
            ("num", StandardScaler(), ["age", "chol"]),
        ]
    )
    pipeline = Pipeline([("features", features), ("clf", LogisticRegression())]).fit(X, y)
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    mlflow.sklearn.save_model(
        pipeline,
        str(target),
        signature=infer_signature(X, pipeline.predict(X)),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        pip_requirements=model_requirements(),
    )
    return target


_COMMAND: list[Any] = []


def batchctl_command() -> Any:
    """batchctl's click command, converted from the typer app once per test process. typer's CliRunner
    converts it again on every invoke (~0.1 s, more than most commands take to run); the command is
    stateless, so one conversion serves every test."""
    if not _COMMAND:
        import typer.main

        from batchctl.cli import app

        _COMMAND.append(typer.main.get_command(app))
    return _COMMAND[0]


class Cli:
    """Runs batchctl in-process through click's CliRunner (what typer's CliRunner does, minus the
    conversion of the app on every call)."""

    def __init__(self) -> None:
        from click.testing import CliRunner

        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Any:
        from batchctl.cli._argv import expand_multi_values

        # the same rewrite of az-style `--set a=1 b=2 --tags k=v` that the real entry point (cli.main) does
        return self.runner.invoke(
            batchctl_command(), expand_multi_values(list(args)), input=input, catch_exceptions=False
        )


class Terminal:
    """What a batchctl run printed: its exit code and the bytes of its stdout and stderr."""

    def __init__(self, code: int, stdout: bytes, stderr: bytes) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr


def run_in_terminal(
    *args: str,
    env: dict[str, str] | None = None,
    stdout_tty: bool = True,
    stderr_tty: bool = False,
    columns: int = 80,
    lines: int = 24,
    timeout: float = 120,
    unset: tuple[str, ...] = (),
) -> Terminal:
    """`python -m batchctl ARGS` with stdout (and/or stderr) on a pseudo-terminal of columns x lines, the
    other stream on a pipe; `unset` names variables taken out of the environment. The terminal is raw,
    so what is read is the bytes the program wrote (no newline translation by the line discipline)."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios
    import time
    import tty

    def terminal() -> tuple[int, int]:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        tty.setraw(slave)
        return master, slave

    ends: dict[str, tuple[int, int]] = {}
    if stdout_tty:
        ends["stdout"] = terminal()
    if stderr_tty:
        ends["stderr"] = terminal()
    full_env = {**os.environ, "COLUMNS": str(columns), "LINES": str(lines), **(env or {})}
    for name in unset:
        full_env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchctl", *args],
        stdin=subprocess.DEVNULL,
        stdout=ends["stdout"][1] if stdout_tty else subprocess.PIPE,
        stderr=ends["stderr"][1] if stderr_tty else subprocess.PIPE,
        env=full_env,
    )
    for _, slave in ends.values():
        os.close(slave)
    readers: dict[int, str] = {master: name for name, (master, _) in ends.items()}
    for name in ("stdout", "stderr"):
        pipe = getattr(proc, name)
        if pipe is not None:
            readers[pipe.fileno()] = name
    got: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    deadline = time.monotonic() + timeout
    try:
        while readers:
            if time.monotonic() > deadline:
                raise AssertionError(f"batchctl {' '.join(args)} did not end within {timeout:g}s")
            ready, _, _ = select.select(list(readers), [], [], 0.5)
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the terminal's other end is closed
                    chunk = b""
                if chunk:
                    got[readers[fd]] += chunk
                else:
                    del readers[fd]
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for master, _ in ends.values():
            os.close(master)
        for name in ("stdout", "stderr"):
            pipe = getattr(proc, name)
            if pipe is not None:
                pipe.close()
    return Terminal(code, bytes(got["stdout"]), bytes(got["stderr"]))
