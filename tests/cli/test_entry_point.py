"""The real installed entry point (`python -m batchctl` and the `batchctl` script) in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bad_name_exits_3_with_one_line_and_no_traceback(home, run_batchctl):
    result = run_batchctl("endpoint", "create", "-n", "x")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (
        "Error: endpoint name: The name for an endpoint must be at least 3 and at most "
        "32 characters long (inclusive of both limits).\n"
    )
    assert not (home / "registry.json").exists()


def test_debug_adds_the_traceback(home, run_batchctl):
    result = run_batchctl("--debug", "endpoint", "show", "-n", "nope")
    assert result.returncode == 4
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert "batchctl.errors.NotFoundError: endpoint 'nope' not found" in result.stderr
    assert result.stderr.endswith(
        "Error: endpoint 'nope' not found\nHint: create it with `batchctl endpoint create --name nope`\n"
    )


def test_create_show_query_tsv_and_json_when_piped(home, run_batchctl):
    created = run_batchctl("endpoint", "create", "-n", "Heart-Classifier")
    assert (created.returncode, created.stderr) == (0, "")
    assert json.loads(created.stdout)["name"] == "heart-classifier"
    shown = run_batchctl("endpoint", "show", "-n", "heart-classifier", "--query", "name", "-o", "tsv")
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, "heart-classifier\n", "")


def test_workspace_option_wins_over_batchctl_home(home, tmp_path, run_batchctl):
    other = tmp_path / "other-ws"
    result = run_batchctl("--workspace", str(other), "endpoint", "create", "-n", "ep1")
    assert result.returncode == 0
    assert (other / "registry.json").is_file()
    assert not (home / "registry.json").exists()


def test_registry_locked_exit_code_names_the_lock_file(home, run_batchctl):
    run_batchctl("endpoint", "create", "-n", "ep1", check=True)
    before = (home / "registry.json").read_bytes()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom filelock import FileLock\nlock = FileLock(sys.argv[1])\nlock.acquire()\n"
            "print('locked', flush=True)\ntime.sleep(60)\n",
            str(home / "registry.json.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        result = run_batchctl("endpoint", "create", "-n", "ep2", env={"BATCHCTL_LOCK_TIMEOUT": "0.2"})
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert result.returncode == 7
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"Error: the registry is locked by another process, pid {holder.pid} (`python")
    assert error.endswith(f" s ago): {home / 'registry.json.lock'}")
    assert hint == "Hint: wait for the other command to finish, or raise BATCHCTL_LOCK_TIMEOUT (seconds)"
    assert (home / "registry.json").read_bytes() == before


def test_corrupt_registry_exit_code(home, run_batchctl):
    home.mkdir(parents=True)
    (home / "registry.json").write_bytes(b"\x00\x00")
    result = run_batchctl("endpoint", "list")
    assert result.returncode == 8
    assert result.stderr == (
        f"Error: registry {home / 'registry.json'} is corrupt: the file is empty; it was left untouched\n"
        f"Hint: move {home / 'registry.json'} aside to start a new registry "
        "(its contents are not recoverable by batchctl)\n"
    )
    assert (home / "registry.json").read_bytes() == b"\x00\x00"


def test_console_script_is_installed_next_to_the_interpreter(home):
    script = Path(sys.executable).parent / "batchctl"
    assert script.is_file(), f"no console script {script}"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("batchctl ")


def test_usage_error_exits_2(home, run_batchctl):
    result = run_batchctl("endpoint", "show")
    assert result.returncode == 2
    assert "Missing option '--name' / '-n'." in result.stderr
