"""batchctl's `main()` in this process: what `python -m batchctl ARGS` runs (group selection, the expansion of
abbreviated and multi-value options, the exit code), with its output captured. For behaviour tests of
`main()` where the process entry point itself is not under test (tests/cli/test_entry_point.py starts the
real one): a run costs milliseconds instead of a Python start-up and imports (about a second)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass
class MainResult:
    """What subprocess.run(..., capture_output=True, text=True) gives, for the tests written against it."""

    returncode: int
    stdout: str
    stderr: str


def run_main(*args: str) -> MainResult:
    from click.testing import CliRunner

    from batchctl.cli import main

    runner = CliRunner()
    # main() sets PYDANTIC_DISABLE_PLUGINS for its process: isolation() puts the test process's value back
    keep = {"PYDANTIC_DISABLE_PLUGINS": os.environ.get("PYDANTIC_DISABLE_PLUGINS")}
    argv = sys.argv
    with runner.isolation(env=keep) as (stdout, stderr, _output):
        sys.argv = ["batchctl", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = argv
    return MainResult(code, stdout.getvalue().decode(), stderr.getvalue().decode())
