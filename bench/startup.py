"""Start-up time of `batchctl endpoint list` against a minimal two-command typer app (target: <= 1.15x).

`batchctl endpoint list` runs in a workspace with 50 endpoints registered (`--endpoints N`; issue 26's
case), through the console script, and prints them as JSON (stdout is not a terminal).

The baseline is `bench/typer_floor.py endpoint list`: one group with two commands (`list`, `show`) and a
root option, so it pays what any typer CLI pays (typer converts the app to click and coerces options with
pydantic). `python -c "import typer, pydantic, yaml"` and `batchctl --help` are printed for reference.

Runs each command alternately (so drift in machine load hits all of them alike), at least 7 times, with
compiled bytecode (PYTHONDONTWRITEBYTECODE is dropped and every command is run once first), and prints
the medians and minimums of wall time and of CPU time (user + system: steadier on a loaded machine),
and the ratios to the baseline. `make bench-startup` runs it with the project's
venv.

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

TARGET = 1.15
FLOOR = Path(__file__).with_name("typer_floor.py")


def _batchctl() -> list[str]:
    script = Path(sys.executable).parent / "batchctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "batchctl"]


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system of the child). On a shared, loaded machine the CPU time
    is the steadier of the two: waiting for a core does not count."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return wall, usage.ru_utime + usage.ru_stime


def _instructions(cmd: list[str], env: dict[str, str]) -> int:
    """Instructions the command executes, counted by valgrind's callgrind: independent of machine load."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        env={**env, "PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    return int(proc.stderr.split("Collected :")[1].split()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (at least 7; default 11)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the instructions of one run of `batchctl endpoint list` and of the baseline under valgrind "
        "(slow: about a minute; load-independent, for a shared machine)",
    )
    parser.add_argument("--endpoints", type=int, default=50, help="endpoints registered (default 50)")
    args = parser.parse_args(argv)
    runs = max(7, args.runs)
    with tempfile.TemporaryDirectory(prefix="batchctl-bench-") as tmp:
        env = {**os.environ, "BATCHCTL_HOME": str(Path(tmp) / "ws"), "NO_COLOR": "1"}
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode
        for i in range(max(1, args.endpoints)):
            subprocess.run(
                [*_batchctl(), "endpoint", "create", "-n", f"bench-ep-{i:02d}"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        commands = {  # the first is the baseline
            "typer_floor.py endpoint list": [sys.executable, str(FLOOR), "endpoint", "list"],
            "batchctl endpoint list": [*_batchctl(), "endpoint", "list"],
            "batchctl --help": [*_batchctl(), "--help"],
            'python -c "import typer, pydantic, yaml"': [sys.executable, "-c", "import typer, pydantic, yaml"],
        }
        for cmd in commands.values():  # warm the file cache and the bytecode
            _time(cmd, env)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, cmd in commands.items():
                wall, used = _time(cmd, env)
                samples[name].append(wall)
                cpu[name].append(used)
        counted = {}
        if args.instructions:
            for name in list(commands)[:2]:
                counted[name] = _instructions(commands[name], env)
    base = next(iter(commands))
    width = max(len(name) for name in commands)
    print(
        f"{'command':<{width}}  {'wall med':>9}  {'wall min':>9}  {'ratio':>6}  {'cpu med':>8}  {'cpu min':>8}  "
        f"{'ratio':>6}   ({runs} runs each, alternated; {max(1, args.endpoints)} endpoints registered)"
    )
    for name in commands:
        wall_med, cpu_med = statistics.median(samples[name]), statistics.median(cpu[name])
        print(
            f"{name:<{width}}  {wall_med * 1000:>7.1f}ms  {min(samples[name]) * 1000:>7.1f}ms  "
            f"{wall_med / statistics.median(samples[base]):>5.2f}x  {cpu_med * 1000:>6.1f}ms  "
            f"{min(cpu[name]) * 1000:>6.1f}ms  {cpu_med / statistics.median(cpu[base]):>5.2f}x"
        )
    target = "batchctl endpoint list"
    ratios = {
        "wall, medians": statistics.median(samples[target]) / statistics.median(samples[base]),
        "wall, minimums": min(samples[target]) / min(samples[base]),
        "CPU, medians": statistics.median(cpu[target]) / statistics.median(cpu[base]),
        "CPU, minimums": min(cpu[target]) / min(cpu[base]),
    }
    if counted:
        ratios["instructions"] = counted[target] / counted[base]
    shown = "; ".join(f"{ratio:.3f}x ({how})" for how, ratio in ratios.items())
    verdict = "within" if ratios["wall, medians"] <= TARGET else "ABOVE"
    print(f"{target} / the minimal typer app: {shown}: {verdict} the {TARGET}x target (wall, medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
