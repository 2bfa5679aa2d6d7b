"""What scripts read does not change: `--query`, `-o json|yaml|tsv|table` print byte for byte what they
printed before the terminal summary and the curated `job show` existed, with stdout a pipe and with
stdout a pseudo-terminal.

The expected bytes (fixtures/script-outputs/) were captured from the code before that change
(`python tests/jobs/test_script_outputs.py CAPTURE_DIR` runs the same commands and writes them). The
values that differ from run to run (times, durations, the runner's pid and host, the interpreter's and
packages' versions, content hashes, the workspace's temporary folder) are replaced by placeholders, in
the captured bytes and in the bytes compared, and a table cell's padding is cut to one space (it follows
the length of the value replaced); everything else is compared as it is."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from testkit import run_in_terminal

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GOLDEN = Path(__file__).parent / "fixtures" / "script-outputs"
MODES = ("pipe", "tty")

# (case, the job it is about, the command's arguments after the job's name)
INVOKES = {
    "invoke-ok-json": ("ok", ["-o", "json"]),
    "invoke-ok-tsv": ("ok", ["--query", "name", "-o", "tsv"]),
    "invoke-bad-json": ("bad", ["-o", "json"]),
    "invoke-bad-tsv": ("bad", ["--query", "name", "-o", "tsv"]),
}
SHOWS = {
    "show-ok-json": ("invoke-ok-json", ["-o", "json"]),
    "show-ok-yaml": ("invoke-ok-json", ["-o", "yaml"]),
    "show-ok-tsv": ("invoke-ok-json", ["-o", "tsv"]),
    "show-ok-table": ("invoke-ok-json", ["-o", "table"]),
    "show-ok-name": ("invoke-ok-json", ["--query", "name", "-o", "tsv"]),
    "show-ok-counts": ("invoke-ok-json", ["--query", "counts"]),
    "show-bad-json": ("invoke-bad-json", ["-o", "json"]),
    "show-bad-table": ("invoke-bad-json", ["-o", "table"]),
}


def job_name(case: str, mode: str) -> str:
    return f"{case}-{mode}"


def _volatile(record: dict[str, Any]) -> dict[str, str]:
    """The values of a job record that differ from one run to the next -> their placeholder."""
    out: dict[str, str] = {}
    for key in ("created_at", "start_time", "end_time"):
        if record.get(key):
            out[record[key]] = f"<{key}>"
    if record.get("duration_seconds") is not None:
        out[str(record["duration_seconds"])] = "<duration>"
    runner = record.get("runner") or {}
    for key in ("pid", "start_ticks"):
        if runner.get(key) is not None:
            out[str(runner[key])] = f"<runner.{key}>"
    lineage = record.get("lineage") or {}
    environment = lineage.get("environment") or {}
    if environment.get("python"):
        out[environment["python"]] = "<python>"
    for package, version in (environment.get("packages") or {}).items():
        out[str(version)] = f"<{package}>"
    # the environment (issue 22): its requirements are the model's pins, recorded with the versions of
    # the machine that saved it, and its key hashes them
    env = record.get("environment") or {}
    for requirement in env.get("requirements") or []:
        name, pinned, version = str(requirement).partition("==")
        if pinned:
            out[f"{name}=={version}"] = f"{name}==<{name}>"
    for key in (env.get("key"), (env.get("isolated") or {}).get("key")):
        if key:
            out[key] = "<environment.key>"
    for part in ("model", "input", "output"):
        for key in ("sha256", "listing_sha256"):
            value = (lineage.get(part) or {}).get(key)
            if value:
                out[value] = f"<{part}.{key}>"
    return out


def normalize(raw: bytes, home: Path, records: list[dict[str, Any]]) -> bytes:
    text = raw.decode()
    text = text.replace(str(home.parent), "<TMP>")
    for record in records:  # the host only where it is the runner's (a host may be named like a key)
        host = (record.get("runner") or {}).get("host")
        if host:
            for before in ('"host": "', "host: ", "host="):
                text = re.sub(rf"(?<={re.escape(before)}){re.escape(host)}(?![\w.-])", "<runner.host>", text)
    for record in records:
        for value, placeholder in sorted(_volatile(record).items(), key=lambda kv: -len(kv[0])):
            text = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", placeholder, text)
    # a table pads each cell to its column: the padding after a value that was replaced followed its length
    text = re.sub(r"(?<=\S) +│", " │", text)
    # and a border is as wide as its widest cell, whose length follows the values replaced
    text = re.sub(r"─+", "─", text)
    return text.encode()


def _error_lines(stderr: bytes) -> bytes:
    """The Error:/Hint: lines (the progress lines before them are not a script's output)."""
    return b"".join(line for line in stderr.splitlines(keepends=True) if line.startswith((b"Error:", b"Hint:")))


def run(args: list[str], mode: str) -> Any:
    return run_in_terminal(*args, stdout_tty=mode == "tty", columns=200)


def produce(home: Path, model: Path) -> dict[str, tuple[bytes, bytes, int]]:
    """Run every case in both modes: case-mode -> (normalized stdout, normalized error lines, exit code)."""
    import yaml

    work = home.parent
    heart = work / "heart-in"
    heart.mkdir()
    (heart / "a.csv").write_text("age,chol,thal\n61,230.5,normal\n45,199.0,fixed\n")
    (heart / "b.csv").write_text("age,chol,thal\n70,301.2,reversible\n")
    items = work / "script-in"
    items.mkdir()
    (items / "a.txt").write_text("ok\n")
    (items / "b.txt").write_text("raise\n")
    code = work / "code"
    code.mkdir()
    (code / "score.py").write_text(
        "def init():\n    pass\n\n\n"
        "def run(mini_batch):\n"
        "    rows = []\n"
        "    for path in mini_batch:\n"
        "        if open(path).read().strip() == 'raise':\n"
        "            raise ValueError('bad value 42')\n"
        "        rows.append(path.rsplit('/', 1)[-1])\n"
        "    return rows\n"
    )
    specs = {
        "ok.yml": {
            "name": "ok",
            "endpoint_name": "heart",
            "type": "model",
            "model": {"path": str(model), "type": "mlflow_model", "name": "heart"},
            "settings": {"max_concurrency_per_instance": 1, "mini_batch_size": 1},
        },
        "bad.yml": {
            "name": "bad",
            "endpoint_name": "heart",
            "type": "model",
            "model": {"path": str(model), "type": "mlflow_model", "name": "heart"},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
            "settings": {
                "max_concurrency_per_instance": 1,
                "mini_batch_size": 1,
                "error_threshold": 0,
                "retry_settings": {"max_retries": 0, "timeout": 60},
            },
        },
    }
    for file, spec in specs.items():
        (work / file).write_text(yaml.safe_dump(spec, sort_keys=False))
    for args in (["endpoint", "create", "-n", "heart"], ["deployment", "create", "-f", str(work / "ok.yml")]):
        assert run([*args, "-o", "none"], "pipe").code == 0
    assert run(["deployment", "create", "-f", str(work / "bad.yml"), "-o", "none"], "pipe").code == 0

    def record(job: str) -> dict[str, Any]:
        return json.loads((home / "jobs" / job / "job.json").read_text())

    out: dict[str, tuple[bytes, bytes, int]] = {}
    for mode in MODES:
        for case, (deployment, extra) in INVOKES.items():
            job = job_name(case, mode)
            data = heart if deployment == "ok" else items
            result = run(
                ["endpoint", "invoke", "-n", "heart", "-d", deployment, "--input", str(data), "--job-name", job,
                 "--no-server", *extra],
                mode,
            )  # fmt: skip
            records = [record(job)]
            out[f"{case}-{mode}"] = (
                normalize(result.stdout, home, records),
                normalize(_error_lines(result.stderr), home, records),
                result.code,
            )
        for case, (invoke_case, extra) in SHOWS.items():
            job = job_name(invoke_case, mode)
            result = run(["job", "show", "-n", job, *extra], mode)
            records = [record(job)]
            out[f"{case}-{mode}"] = (
                normalize(result.stdout, home, records),
                normalize(_error_lines(result.stderr), home, records),
                result.code,
            )
    return out


def _fixed_home() -> Path:
    """A workspace whose path has the same length on every run, so that a table's layout does too."""
    return Path(tempfile.mkdtemp(prefix="bc-script-out-")) / "ws"


def write(outputs: dict[str, tuple[bytes, bytes, int]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (stdout, errors, code) in outputs.items():
        (folder / f"{name}.out").write_bytes(stdout)
        (folder / f"{name}.err").write_bytes(errors + f"exit {code}\n".encode())


@pytest.fixture
def fixed_home(monkeypatch: pytest.MonkeyPatch) -> Any:
    home = _fixed_home()
    monkeypatch.setenv("BATCHCTL_HOME", str(home))
    yield home
    shutil.rmtree(home.parent, ignore_errors=True)


def test_script_outputs_are_byte_for_byte_what_they_were(fixed_home, mlflow_model_for_outputs):
    outputs = produce(fixed_home, mlflow_model_for_outputs)
    expected = sorted(p.stem for p in GOLDEN.glob("*.out"))
    assert sorted(outputs) == expected
    for name, (stdout, errors, code) in outputs.items():
        for got, file in ((stdout, f"{name}.out"), (errors + f"exit {code}\n".encode(), f"{name}.err")):
            want = (GOLDEN / file).read_bytes()
            diff = difflib.unified_diff(want.decode().splitlines(), got.decode().splitlines(), lineterm="")
            assert got == want, f"{file}:\n" + "\n".join(diff)


@pytest.fixture(scope="module")
def mlflow_model_for_outputs(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from support.models import cached_heart_model

    return cached_heart_model(pytestconfig, tmp_path_factory)


if __name__ == "__main__":  # capture: python tests/jobs/test_script_outputs.py FOLDER (from the repository root)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from testkit import train_heart_model

    target = Path(sys.argv[1])
    home = _fixed_home()
    os.environ.update({"BATCHCTL_HOME": str(home), "NO_COLOR": "1", "BATCHCTL_NO_SERVER": "1"})
    for name in ("BATCHCTL_DEBUG", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(name, None)
    try:
        model = train_heart_model(home.parent / "model")
        write(produce(home, model), target)
    finally:
        shutil.rmtree(home.parent, ignore_errors=True)
