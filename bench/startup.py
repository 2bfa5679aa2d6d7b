"""Start-up time of the CLI against a bare `python -c "import typer, pydantic, yaml"` (target: <= 1.5x).

Runs each command alternately (so drift in machine load hits all of them alike), at least 7 times,
and prints the medians and the ratios. `make bench-startup` runs it with the project's venv.

    python bench/startup.py [--runs N]
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

TARGET = 1.5


def _batchctl() -> list[str]:
    script = Path(sys.executable).parent / "batchctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "batchctl"]


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (at least 7; default 11)")
    args = parser.parse_args(argv)
    runs = max(7, args.runs)
    with tempfile.TemporaryDirectory(prefix="batchctl-bench-") as tmp:
        env = {**os.environ, "BATCHCTL_HOME": str(Path(tmp) / "ws"), "NO_COLOR": "1"}
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        subprocess.run(
            [*_batchctl(), "endpoint", "create", "-n", "bench-ep"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        commands = {
            'python -c "import typer, pydantic, yaml"': [
                sys.executable,
                "-c",
                "import typer, pydantic, yaml",
            ],
            "batchctl endpoint list": [*_batchctl(), "endpoint", "list"],
            "batchctl --help": [*_batchctl(), "--help"],
        }
        for cmd in commands.values():  # warm the file cache and the bytecode
            _time(cmd, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, cmd in commands.items():
                samples[name].append(_time(cmd, env))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = next(iter(medians.values()))
    width = max(len(name) for name in medians)
    print(f"{'command':<{width}}  {'median':>9}  {'min':>9}  {'ratio':>6}   ({runs} runs each, alternated)")
    worst = 0.0
    for name, median in medians.items():
        ratio = median / baseline
        if name.startswith("batchctl"):
            worst = max(worst, ratio)
        print(f"{name:<{width}}  {median * 1000:>7.0f}ms  {min(samples[name]) * 1000:>7.0f}ms  {ratio:>5.2f}x")
    verdict = "within" if worst <= TARGET else "ABOVE"
    print(f"worst batchctl ratio {worst:.2f}x: {verdict} the {TARGET}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
