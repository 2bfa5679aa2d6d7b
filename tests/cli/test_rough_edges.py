"""Output and validation rough edges (issue 16, item 4): each gives one clear line and loses nothing."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


@pytest.fixture
def script_endpoint(cli: Any, tmp_path: Path, custom_model: Path, score_code: Path) -> Path:
    """Endpoint `heart` with a custom-script deployment `dep`; returns an input folder with one file."""
    assert cli("endpoint", "create", "-n", "heart", "-o", "json").exit_code == 0
    spec = tmp_path / "dep.yml"
    spec.write_text(yaml.safe_dump({
        "name": "dep", "endpoint_name": "heart", "model": {"path": str(custom_model)},
        "code_configuration": {"code": str(score_code), "scoring_script": "score.py"}, "settings": {},
    }))  # fmt: skip
    result = cli("deployment", "create", "-f", str(spec), "-o", "json")
    assert result.exit_code == 0, result.output
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("1\n")
    return data


# ------------------------------------------------------------------------------------------- -o xml


@pytest.mark.parametrize("args", [("endpoint", "list"), ("job", "list"), ("endpoint", "show", "-n", "heart")])
def test_an_unknown_output_format_is_refused_before_the_command_runs(cli: Any, args: tuple[str, ...]) -> None:
    result = cli(*args, "-o", "xml")
    assert result.exit_code == 2
    assert _errors(result.stderr) == [
        "Error: --output: 'xml' is not an output format; use json, jsonc, yaml, table, tsv or none"
    ]
    assert result.stdout == ""


def test_an_unknown_output_format_does_not_start_a_job(cli: Any, script_endpoint: Path, home: Path) -> None:
    result = cli("endpoint", "invoke", "-n", "heart", "-i", str(script_endpoint), "--job-name", "j", "-o", "xml")
    assert result.exit_code == 2
    assert not (home / "jobs" / "j").exists()


# ------------------------------------------------------------------------------------ table cells


def test_job_show_table_prints_nested_values_as_key_value_lines(
    cli: Any, script_endpoint: Path, tmp_path: Path
) -> None:
    result = cli("endpoint", "invoke", "-n", "heart", "-i", str(script_endpoint), "--job-name", "j1",
                 "--output-path", str(tmp_path / "out"), "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    table = cli("job", "show", "-n", "j1", "-o", "table")
    assert table.exit_code == 0
    assert "{" not in table.stdout and '"' not in table.stdout
    lines = [line.strip(" │|") for line in table.stdout.splitlines()]
    assert any(line.endswith("files=1") for line in lines), table.stdout
    assert any("mini_batch_size=10" in line for line in lines), table.stdout
    assert any("retry_settings.max_retries=3" in line for line in lines), table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) < 200


# ---------------------------------------------------------------------------- control characters


@pytest.mark.parametrize(
    ("field", "value"),
    [("settings.output_file_name", "out\nput.csv"), ("settings.output_file_name", "a\tb.csv"),
     ("settings.output_file_name", "x\x1b[31m.csv"), ("code_configuration.scoring_script", "sc\nore.py")],
)  # fmt: skip
def test_control_characters_in_file_names_are_refused(
    cli: Any, script_endpoint: Path, registry: Any, tmp_path: Path, field: str, value: str
) -> None:
    before = registry.bytes()
    spec = yaml.safe_load((tmp_path / "dep.yml").read_text())
    section, key = field.split(".")
    spec[section][key] = value
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(spec))  # the YAML escapes the character: the spec really holds it
    result = cli("deployment", "create", "-f", str(bad))
    assert result.exit_code == 3
    [error] = _errors(result.stderr)
    assert field in error and "control character" in error
    assert registry.bytes() == before


def test_format_characters_in_file_names_are_refused(
    cli: Any, script_endpoint: Path, registry: Any, tmp_path: Path
) -> None:
    before = registry.bytes()
    spec = yaml.safe_load((tmp_path / "dep.yml").read_text())
    spec["settings"]["output_file_name"] = "invoice\u202ecsv.exe"  # shows as invoiceexe.csv
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(spec))
    result = cli("deployment", "create", "-f", str(bad))
    assert result.exit_code == 3
    [error] = _errors(result.stderr)
    assert "settings.output_file_name" in error and "format character (U+202E)" in error
    assert registry.bytes() == before


def test_control_characters_in_an_invocation_file_are_refused(cli: Any, script_endpoint: Path, home: Path) -> None:
    spec = home.parent / "invoke.yml"
    spec.write_text(yaml.safe_dump({"output_file_name": "a\nb.csv", "display_name": "x"}))
    result = cli("endpoint", "invoke", "-n", "heart", "-i", str(script_endpoint), "-f", str(spec))
    assert result.exit_code == 3
    assert "control character" in _errors(result.stderr)[0]
    spec.write_text(yaml.safe_dump({"display_name": "nightly\rrun"}))
    result = cli("endpoint", "invoke", "-n", "heart", "-i", str(script_endpoint), "-f", str(spec))
    assert result.exit_code == 3 and "display_name" in _errors(result.stderr)[0]
    assert not (home / "jobs").exists() or list((home / "jobs").iterdir()) == []


# ------------------------------------------------------------------------------------ YAML keys


def test_duplicate_yaml_keys_are_refused_naming_the_key_and_line(cli: Any, tmp_path: Path, registry: Any) -> None:
    spec = tmp_path / "ep.yml"
    spec.write_text("name: heart\ndescription: one\ntags:\n  a: 1\n  a: 2\n")
    result = cli("endpoint", "create", "-f", str(spec))
    assert result.exit_code == 3
    assert _errors(result.stderr) == ["Error: ep.yml: duplicate key 'a' at line 5 (first at line 4)"]
    spec.write_text("name: heart\ndescription: one\nname: other\n")
    result = cli("endpoint", "create", "-f", str(spec))
    assert _errors(result.stderr) == ["Error: ep.yml: duplicate key 'name' at line 3 (first at line 1)"]
    assert registry.bytes() is None
    # a merge key (<<) that a mapping overrides is not a duplicate
    spec.write_text("base: &b {x: 1}\n")
    ok = tmp_path / "ok.yml"
    ok.write_text("name: heart\ntags:\n  <<: {a: '1', b: '2'}\n  a: '3'\n")
    created = cli("endpoint", "create", "-f", str(ok), "-o", "json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["tags"] == {"a": "3", "b": "2"}


# ---------------------------------------------------------------------------------- strict numbers


@pytest.mark.parametrize(
    "setting",
    ["settings.mini_batch_size=true", "settings.max_concurrency_per_instance=false",
     "settings.retry_settings.max_retries=true", "settings.error_threshold=true", "resources.instance_count=true"],
)  # fmt: skip
def test_booleans_are_not_numbers(cli: Any, script_endpoint: Path, registry: Any, setting: str) -> None:
    before = registry.bytes()
    result = cli("deployment", "update", "-n", "dep", "-e", "heart", "--set", setting)
    assert result.exit_code == 3
    [error] = _errors(result.stderr)
    assert setting.split("=")[0] in error and "boolean" in error
    assert registry.bytes() == before


def test_booleans_are_not_numbers_in_an_invocation_file(cli: Any, script_endpoint: Path, tmp_path: Path) -> None:
    spec = tmp_path / "invoke.yml"
    spec.write_text("mini_batch_size: true\n")
    result = cli("endpoint", "invoke", "-n", "heart", "-i", str(script_endpoint), "-f", str(spec))
    assert result.exit_code == 3 and "mini_batch_size" in _errors(result.stderr)[0]


# ------------------------------------------------------------------------------------ corrupt job


def test_a_corrupt_job_record_is_reported_as_corrupt(cli: Any, script_endpoint: Path, home: Path) -> None:
    result = cli("endpoint", "invoke", "-n", "heart", "-i", str(script_endpoint), "--job-name", "j1",
                 "--output-path", str(home.parent / "out"), "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    record = home / "jobs" / "j1" / "job.json"
    record.write_bytes(record.read_bytes()[:40])
    before = record.read_bytes()
    shown = cli("job", "show", "-n", "j1")
    assert shown.exit_code == 8
    [error] = _errors(shown.stderr)
    assert "corrupt" in error and str(record) in error
    assert f"rm -r {home / 'jobs' / 'j1'}" in shown.stderr
    assert record.read_bytes() == before  # left as it is
    listed = cli("job", "list", "-o", "json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    assert "j1" in listed.stderr and "corrupt" in listed.stderr  # a warning, not silence


# --------------------------------------------------------------------------------- unreachable https


def test_an_unreachable_https_input_says_unreachable(cli: Any, script_endpoint: Path, home: Path) -> None:
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = cli("endpoint", "invoke", "-n", "heart", "-i", f"https://127.0.0.1:{port}/data/a.csv")
    assert result.exit_code == 9
    [error] = _errors(result.stderr)
    assert "unreachable" in error and "does not exist" not in error
    assert not (home / "jobs").exists()


# ------------------------------------------------------------------------ folder holding the workspace


@pytest.mark.parametrize("what", ["model", "code"])
def test_a_folder_that_contains_the_workspace_is_refused_at_once(
    cli: Any, tmp_path: Path, home: Path, registry: Any, what: str, custom_model: Path, score_code: Path
) -> None:
    assert cli("endpoint", "create", "-n", "heart", "-o", "json").exit_code == 0
    before = registry.bytes()
    spec = tmp_path / "dep.yml"  # the workspace is tmp_path/ws: tmp_path holds it
    model = str(tmp_path) if what == "model" else str(custom_model)
    code = str(tmp_path) if what == "code" else str(score_code)
    (tmp_path / "score.py").write_text((score_code / "score.py").read_text())
    spec.write_text(yaml.safe_dump({"name": "dep", "endpoint_name": "heart", "model": {"path": model},
                                    "code_configuration": {"code": code, "scoring_script": "score.py"}}))  # fmt: skip
    result = cli("deployment", "create", "-f", str(spec))
    assert result.exit_code == 3
    [error] = _errors(result.stderr)
    assert str(tmp_path) in error and str(home) in error and len(error) < 400
    assert registry.bytes() == before
    assert not any(p.name.startswith(".staging") for p in home.rglob("*"))


# ------------------------------------------------------------------------------------- disk full


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `path` (the tests run as root, as CI does)."""
    assert os.geteuid() == 0, "the disk-full test mounts a tmpfs: run it as root (CI does)"
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()


def test_workspace_disk_full_gives_one_line_and_leaves_no_job_folder(
    cli: Any, tmp_path: Path, custom_model: Path, score_code: Path
) -> None:
    with tiny_filesystem(tmp_path / "small") as ws:
        home = ws / "ws"
        for args in (("endpoint", "create", "-n", "heart"),):
            assert cli("--workspace", str(home), *args, "-o", "json").exit_code == 0
        spec = tmp_path / "dep.yml"
        spec.write_text(yaml.safe_dump({
            "name": "dep", "endpoint_name": "heart", "model": {"path": str(custom_model)},
            "code_configuration": {"code": str(score_code), "scoring_script": "score.py"},
        }))  # fmt: skip
        assert cli("--workspace", str(home), "deployment", "create", "-f", str(spec), "-o", "json").exit_code == 0
        data = tmp_path / "data"
        data.mkdir()
        for i in range(300):  # a plan.json of some size, so that the job folder cannot be written
            (data / f"input-file-with-a-long-name-{i:04d}.txt").write_text("1\n")
        registry = (home / "registry.json").read_bytes()
        _fill(ws)
        result = cli("--workspace", str(home), "endpoint", "invoke", "-n", "heart", "-i", str(data),
                     "--job-name", "j1", "--output-path", str(tmp_path / "out"))  # fmt: skip
        assert result.exit_code == 1
        [error] = _errors(result.stderr)
        assert "No space left on device" in error and "j1" in error and "unexpected" not in error
        assert not (home / "jobs" / "j1").exists()
        assert [p.name for p in (home / "jobs").iterdir()] == []
        assert (home / "registry.json").read_bytes() == registry
