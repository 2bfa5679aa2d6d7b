"""Custom scoring scripts: Azure's init()/run() contract."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from .conftest import ok_json, write_inputs

pytestmark = pytest.mark.slow


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_list_return_one_line_per_item(env, tmp_path):
    data = write_inputs(tmp_path / "in", {f"f{i}.txt": "ok" for i in range(5)})
    env.endpoint()
    env.script(mini_batch_size=2)
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out)))
    assert job["status"] == "Completed"
    assert _lines(out / "predictions.csv") == [f"f{i}.txt,ok" for i in range(5)]
    assert (job["counts"]["items_succeeded"], job["counts"]["items_failed"]) == (5, 0)


def test_dataframe_return_keeps_column_order_without_header(env, tmp_path):
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b, c.txt": "ok"})
    env.endpoint()
    env.script(env={"RETURN": "frame"})
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out)))
    rows = list(csv.reader(io.StringIO((out / "predictions.csv").read_text())))
    assert [r[:2] for r in rows] == [["a.txt", "ok"], ["b, c.txt", "ok"]]  # quoted as CSV needs
    assert all(r[2].isdigit() for r in rows)
    assert job["counts"]["items_succeeded"] == 2


def test_fewer_rows_than_files_count_as_failed_items(env, tmp_path):
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "skip", "c.txt": "skip", "d.txt": "ok"})
    env.endpoint()
    env.script(mini_batch_size=4)
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "few"))
    assert job["status"] == "Completed"
    c = job["counts"]
    assert (c["items_succeeded"], c["items_failed"], c["retries"]) == (2, 2, 0)
    assert _lines(out / "predictions.csv") == ["a.txt,ok", "d.txt,ok"]
    errors = (env.job_dir("few") / "logs" / "user" / "error.txt").read_text()
    assert "returned 2 results for 4 files" in errors


@pytest.mark.parametrize("command, message", [("none", "returned None"), ("raise", "ValueError: cannot score")])
def test_none_or_raising_fails_the_mini_batch_after_retries(env, tmp_path, command, message):
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": command, "c.txt": "ok"})
    env.endpoint()
    env.script(mini_batch_size=1, retry_settings={"max_retries": 2, "timeout": 30})
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "j"))
    assert job["status"] == "Completed"
    c = job["counts"]
    assert (c["items_succeeded"], c["items_failed"], c["mini_batches_failed"], c["retries"]) == (2, 1, 1, 2)
    assert _lines(out / "predictions.csv") == ["a.txt,ok", "c.txt,ok"]
    assert message in job["error"]["message"] or message in job["error"].get("details", "")
    logs = env.job_dir("j") / "logs"
    assert message in (logs / "user" / "error.txt").read_text()
    if command == "raise":
        tracebacks = "".join(p.read_text() for p in (logs / "user" / "error").iterdir())
        assert "Traceback (most recent call last)" in tracebacks
        assert 'score.py", line' in tracebacks


def test_summary_only_writes_no_results_file_but_publishes_script_files(env, tmp_path):
    data = write_inputs(tmp_path / "in", {"a.txt": "write", "b.txt": "write", "c.txt": "write"})
    env.endpoint()
    env.script(output_action="summary_only", mini_batch_size=2)
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out)))
    assert job["status"] == "Completed"
    assert job["output_file"] is None
    assert sorted(os.listdir(out)) == ["a.out", "b.out", "c.out"]
    assert (out / "b.out").read_text() == "scored b.txt\n"


def test_summary_only_refuses_an_output_file_name(env, tmp_path):
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    env.endpoint()
    env.script(output_action="summary_only")
    result = env.invoke("heart", "--input", str(data), "--set", "output_file_name=x.csv")
    assert result.exit_code == 3
    assert "summary_only" in result.stderr


def test_process_environment_as_azure_sets_it(env, tmp_path):
    """AZUREML_MODEL_DIR holds the model folder; AZUREML_BI_OUTPUT_PATH; env vars; --logging_level; code."""
    script = """
import glob
import json
import os
import sys

import helper  # a module beside the scoring script: the code folder is on sys.path


def init():
    global info
    MODEL_DIR = os.environ["AZUREML_MODEL_DIR"]
    info = {
        "model_files": sorted(os.path.basename(p) for p in glob.glob(MODEL_DIR + "/*/*")),
        "model_dirs": len(glob.glob(os.environ["AZUREML_MODEL_DIR"] + "/*/")),
        "bi_output": os.path.isdir(os.environ["AZUREML_BI_OUTPUT_PATH"]),
        "greeting": os.environ.get("GREETING"),
        "argv": sys.argv[1:],
        "cwd_has_script": os.path.isfile("score.py"),
        "helper": helper.VALUE,
    }


def run(mini_batch):
    return [json.dumps(info, sort_keys=True)] * len(mini_batch)
"""
    env.endpoint()
    env.script(source=script, env={"GREETING": "hello"}, logging_level="debug", files={"helper.py": "VALUE = 42\n"})
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out)))
    assert job["status"] == "Completed", job.get("error")

    info = json.loads(_lines(out / "predictions.csv")[0])  # list items: one per line, as given
    assert info == {
        "model_files": ["weights.txt"],
        "model_dirs": 1,
        "bi_output": True,
        "greeting": "hello",
        "argv": ["--logging_level", "DEBUG"],
        "cwd_has_script": True,
        "helper": 42,
    }


def test_a_script_that_relies_on_normal_exit_keeps_its_buffered_output(env, tmp_path):
    """A custom script's process ends normally (atexit handlers run, open files are flushed): only the
    built-in MLflow scorer's workers skip interpreter teardown."""
    script = """
import atexit
import os

log = None


def init():
    global log
    log = open(os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "all.log"), "w", buffering=1 << 20)
    atexit.register(lambda: open(os.path.join(os.environ["AZUREML_BI_OUTPUT_PATH"], "atexit.txt"), "w").write("ran"))


def run(mini_batch):
    for path in mini_batch:
        log.write(os.path.basename(path) + "\\n")  # stays in the buffer until the process exits
    return list(mini_batch)
"""
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok", "c.txt": "ok"})
    env.endpoint()
    env.script(source=script, output_action="summary_only", mini_batch_size=2)
    out = tmp_path / "out"
    job = ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out)))
    assert job["status"] == "Completed"
    assert sorted((out / "all.log").read_text().split()) == ["a.txt", "b.txt", "c.txt"]
    assert (out / "atexit.txt").read_text() == "ran"
