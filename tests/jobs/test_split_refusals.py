"""What `--split`, `--keep-columns` and output formats refuse, before any work: one line, exit 3."""

from __future__ import annotations

from pathlib import Path

from .conftest import write_inputs


def test_script_deployments_keep_azures_csv_and_refuse_formats_and_kept_columns(env, tmp_path: Path) -> None:
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    env.endpoint()
    env.script()
    for extra, message in (
        (("--set", "output_file_name=p.parquet"), "built-in MLflow scorer only"),
        (("--keep-columns", "id"), "--keep-columns works with the built-in MLflow scorer only"),
    ):
        result = env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o"), *extra)
        assert result.exit_code == 3, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_bad_split_and_keep_columns_values_are_usage_errors(env, tmp_path: Path) -> None:
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    env.endpoint()
    env.script()
    for extra in (("--split", "sometimes"), ("--keep-columns", "id,,x"), ("--keep-columns", "id,id")):
        result = env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o"), *extra)
        assert result.exit_code == 3, (extra, result.stderr)
        assert result.stderr.startswith("Error:") and "Traceback" not in result.stderr
