"""Job tags, the lineage manifest, `job verify` and `job rerun` of a whole job."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import pytest

from batchctl.workspace import content_hash

from .conftest import BEHAVIOUR_SCRIPT, ok_json, write_inputs

pytestmark = pytest.mark.slow


def test_tags_from_the_flag_and_the_file_are_shown_and_filter_job_list(env, tmp_path, write_spec):
    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    inv = write_spec(
        "inv.yml", {"endpoint": "heart", "inputs": {"d": {"path": str(data)}}, "tags": {"src": "file", "team": "x"}}
    )
    # az style: several pairs after one flag, --set and --tags mixed
    one = ok_json(
        env.cli(
            "endpoint", "invoke", "-f", str(inv), "--job-name", "one",
            "--set", "error_threshold=5", "mini_batch_size=3", "--tags", "team=risk", "cost=a=b",
        )
    )  # fmt: skip
    assert one["tags"] == {"src": "file", "team": "risk", "cost": "a=b"}
    assert one["settings"]["error_threshold"] == 5 and one["settings"]["mini_batch_size"] == 3
    two = ok_json(env.cli("job", "create", "-f", str(inv), "-n", "two", "--tags", "team=ops"))
    assert two["tags"] == {"src": "file", "team": "ops"}
    assert env.show("one")["tags"]["team"] == "risk"
    names = lambda *a: [j["name"] for j in ok_json(env.cli("job", "list", *a))]  # noqa: E731
    assert names("--tag", "team=risk") == ["one"]
    assert names("--tag", "src=file") == ["two", "one"]  # newest first
    assert names("--tag", "src=file", "--tag", "team=ops") == ["two"]
    assert names("--tag", "team=nobody") == []
    bad = env.cli("job", "list", "--tag", "team")
    assert bad.exit_code == 3 and "key=value" in bad.stderr
    stray = env.cli("endpoint", "invoke", "-n", "heart", "--input", str(data), "--tags", "a=1", "oops")
    assert stray.exit_code == 3 and "unexpected argument" in stray.stderr


def test_the_manifest_names_model_code_input_settings_versions_and_results(env, tmp_path):
    env.endpoint()
    env.script(mini_batch_size=1)
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok", "sub/c.txt": "ok"})
    out = tmp_path / "out"
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "j"))
    lineage = json.loads(env.cli("job", "show", "-n", "j", "--query", "lineage", "-o", "json").stdout)
    record = json.loads((env.job_dir("j") / "job.json").read_text())
    snapshot = record["deployment_snapshot"]
    assert lineage["model"]["ref"] == record["model"] == "azureml:weights:1"
    assert (lineage["model"]["name"], lineage["model"]["version"]) == ("weights", "1")
    assert lineage["model"]["sha256"] == content_hash(Path(snapshot["model_path"]))
    registry = json.loads((env.home / "registry.json").read_text())
    assert lineage["model"]["sha256"] == registry["models"]["weights"]["1"]["content_hash"]
    assert lineage["code"]["sha256"] == content_hash(Path(snapshot["code_dir"]))
    assert lineage["code"]["scoring_script"] == "score.py"
    files = ["a.txt", "b.txt", "sub/c.txt"]
    entries = [[f, (data / f).stat().st_size, (data / f).stat().st_mtime_ns] for f in files]
    digest = hashlib.sha256(b"".join(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in entries))
    assert lineage["input"]["listing_sha256"] == digest.hexdigest()
    assert lineage["input"]["uri"] == str(data) and lineage["input"]["files"] == 3
    assert lineage["settings"] == record["settings"]
    assert lineage["environment"]["python"] == platform.python_version()
    assert set(lineage["environment"]["packages"]) == {"batchctl", "mlflow", "scikit-learn", "pandas"}
    results = out / "predictions.csv"
    assert lineage["output"]["sha256"] == hashlib.sha256(results.read_bytes()).hexdigest()
    assert lineage["output"]["bytes"] == results.stat().st_size
    assert lineage["output"]["uri"] == str(results)


def test_verify_says_which_part_differs(env, tmp_path):
    env.endpoint()
    env.script()
    data = write_inputs(tmp_path / "in", {"a.txt": "ok"})
    out = tmp_path / "out"
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(out), "--job-name", "j"))
    good = env.cli("job", "verify", "-n", "j")
    assert good.exit_code == 0, good.stderr
    assert json.loads(good.stdout)["ok"] is True
    results = out / "predictions.csv"
    original = results.read_bytes()
    results.write_bytes(original + b"tampered\n")
    changed = env.cli("job", "verify", "-n", "j")
    assert changed.exit_code == 10
    report = json.loads(changed.stdout)
    assert report["results"]["match"] is False and report["model"]["match"] is True
    assert changed.stderr.splitlines()[0] == "Error: job 'j': results differ from the lineage manifest"
    model_file = Path(json.loads((env.job_dir("j") / "job.json").read_text())["deployment_snapshot"]["model_path"])
    weights = model_file / "weights.txt"
    weights.write_text("w=2\n")
    both = env.cli("job", "verify", "-n", "j")
    assert both.exit_code == 12
    assert both.stderr.splitlines()[0] == "Error: job 'j': results and model differ from the lineage manifest"
    results.write_bytes(original)
    only_model = env.cli("job", "verify", "-n", "j")
    assert only_model.exit_code == 11
    assert only_model.stderr.splitlines()[0] == "Error: job 'j': model differs from the lineage manifest"
    weights.write_text("w=1\n")
    results.unlink()
    gone = env.cli("job", "verify", "-n", "j")
    assert gone.exit_code == 10 and "no longer exists" in json.loads(gone.stdout)["results"]["error"]
    assert env.cli("job", "verify", "-n", "nope").exit_code == 4
    # a record without a manifest (issue 23, finding 15): the hint says when that happens
    record_path = env.job_dir("j") / "job.json"
    raw = json.loads(record_path.read_text())
    raw.pop("lineage")
    record_path.write_text(json.dumps(raw))
    none = env.cli("job", "verify", "-n", "j")
    assert none.exit_code == 4
    assert none.stderr.splitlines() == [
        "Error: job 'j' has no lineage manifest",
        "Hint: a job gets one when it ends or publishes its results; one whose runner was killed before that "
        "has none (nor has a job run by batchctl 0.1)",
    ]


def test_rerun_uses_the_first_runs_model_and_code_and_warns_when_the_input_changed(env, tmp_path):
    env.endpoint()
    env.script(name="custom")
    data = write_inputs(tmp_path / "in", {"a.txt": "ok", "b.txt": "ok"})
    ok_json(env.invoke("heart", "--input", str(data), "--output-path", str(tmp_path / "o1"), "--job-name", "first"))
    first = json.loads((env.job_dir("first") / "job.json").read_text())
    # the deployment moves on: new code that writes other rows, a new model version
    new_model = tmp_path / "model-v2"
    new_model.mkdir()
    (new_model / "weights.txt").write_text("w=2\n")
    env.script(
        name="custom",
        source=BEHAVIOUR_SCRIPT.replace(
            'return [f"{r[0]},{r[1]}" for r in rows]', 'return [f"v2,{r[0]}" for r in rows]'
        ),
        model={"path": str(new_model), "type": "custom_model", "name": "weights"},
    )
    write_inputs(data, {"c.txt": "ok"})
    (data / "a.txt").write_text("ok \n")
    result = env.cli("job", "rerun", "-n", "first", "--job-name", "again", "--output-path", str(tmp_path / "o2"))
    assert result.exit_code == 0, result.stderr
    assert "input of job 'first' changed since it ran (added: c.txt; changed: a.txt)" in result.stderr
    again = json.loads((env.job_dir("again") / "job.json").read_text())
    assert again["status"] == "Completed" and again["rerun_of"] == "first"
    assert again["model"] == first["model"] == "azureml:weights:1"
    assert again["deployment_snapshot"] == first["deployment_snapshot"]
    assert again["lineage"]["model"]["sha256"] == first["lineage"]["model"]["sha256"]
    assert again["lineage"]["code"]["sha256"] == first["lineage"]["code"]["sha256"]
    assert again["lineage"]["input"]["listing_sha256"] != first["lineage"]["input"]["listing_sha256"]
    rows = (tmp_path / "o2" / "predictions.csv").read_text().splitlines()
    assert rows == ["a.txt,ok", "b.txt,ok", "c.txt,ok"], "the first run's code, over the whole current input"
    unchanged = env.cli("job", "rerun", "-n", "again", "--job-name", "third", "--dry-run")
    assert unchanged.exit_code == 0 and "changed since" not in unchanged.stderr
