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


def test_a_kept_column_in_no_local_input_file_is_refused_before_the_job(mlenv, tmp_path: Path) -> None:
    """Issue 28, item 10: `--keep-columns Region` (the files have `region`) fails before any work (exit 3),
    naming a file's columns; it used to fail every item at scoring time, and resume failed the same way."""
    from .conftest import heart_frame

    data = tmp_path / "data"
    data.mkdir()
    heart_frame(4, 1).assign(region="north").to_csv(data / "a.csv", index=False)
    heart_frame(4, 2).assign(region="south").to_parquet(data / "b.parquet")
    (data / "notes.txt").write_text("not a table\n")
    mlenv.endpoint()
    mlenv.mlflow()
    out = tmp_path / "out"
    result = mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "k",
                          "--keep-columns", "age,Region")  # fmt: skip
    columns = ", ".join([*heart_frame(1, 1).columns, "region"])
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (
        f"Error: --keep-columns: 'Region' is in no input file (the columns of a.csv: {columns})\n"
        "Hint: column names are case-sensitive; name columns the input files have\n"
    )
    assert not mlenv.job_dir("k").exists() and not out.exists()
    # a column that only the Parquet file has passes the check (each file is read: CSV header, Parquet schema)
    (data / "a.csv").unlink()
    done = mlenv.invoke("heart", "--input", str(data), "--output-path", str(out), "--keep-columns", "region")
    assert done.exit_code == 0, done.stderr


def test_a_kept_column_missing_from_some_files_points_to_rerun(mlenv, tmp_path: Path) -> None:
    """Where the check cannot refuse (the column is in some files), the failure says that `job resume`
    keeps the columns and names `job rerun --set keep_columns=...`, which works."""
    import json

    from .conftest import heart_frame

    data = tmp_path / "data"
    data.mkdir()
    heart_frame(4, 1).assign(region="north").to_csv(data / "a.csv", index=False)
    heart_frame(4, 2).to_csv(data / "b.csv", index=False)
    mlenv.endpoint()
    mlenv.mlflow()
    failed = mlenv.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o1"), "--job-name", "k",
                          "--keep-columns", "region", "--set", "error_threshold=0")  # fmt: skip
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == (
        "Hint: see `batchctl job errors -n k`; score with other columns in a new job: "
        "`batchctl job rerun -n k --set keep_columns=<columns>`"
    )
    (item,) = [json.loads(x) for x in (mlenv.job_dir("k") / "failed_items.jsonl").read_text().splitlines()]
    assert "`batchctl job rerun -n <job> --set keep_columns=<columns>`" in item["message"]
    rerun = mlenv.cli("job", "rerun", "-n", "k", "--set", "keep_columns=age", "--output-path", str(tmp_path / "o2"),
                      "-o", "json")  # fmt: skip
    assert rerun.exit_code == 0, rerun.stderr
    assert json.loads(rerun.stdout)["settings"]["keep_columns"] == ["age"]
