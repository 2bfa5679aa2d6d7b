# ruff: noqa: E501 - strategy tables read better one field group per line
"""Hypothesis: any spec dictionary, of any kind, through the real `create -f` command is either accepted
or rejected with one `Error:` line and a stable non-zero exit code; never a traceback, never "unexpected"
(issue 7, "Bad input")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "../x",
            "a/b",
            "azureml:m:1",
            "azureml:m@latest",
            "models:/m/1",
            "local",
            "%2e%2e",
            "x" * 300,
            "file:///etc",
            "az://c/p",
            "-1",
            "0",
            "1",
        ]
    ),
)
ANY = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
NAME = st.one_of(st.sampled_from(["hard", "blue", "m1", "d1", "store1", "cpu1", "job-1"]), ANY)


def _fields(known: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of the known fields (each a plausible or an arbitrary value), sometimes an unknown one."""
    return st.fixed_dictionaries({}, optional={k: st.one_of(v, ANY) for k, v in known.items()} | {"unknown_key": ANY})


SETTINGS = _fields(
    {
        "max_concurrency_per_instance": st.integers(-2, 4),
        "mini_batch_size": st.integers(-2, 20),
        "output_action": st.sampled_from(["append_row", "summary_only", "bogus"]),
        "output_file_name": st.sampled_from(["p.csv", "../p.csv", "a/b.csv", "", "p\x00.csv"]),
        "retry_settings": _fields({"max_retries": st.integers(-1, 5), "timeout": st.integers(-1, 300000)}),
        "error_threshold": st.integers(-3, 5),
        "logging_level": st.sampled_from(["info", "debug", "warning", "loud"]),
        "environment_variables": st.dictionaries(st.text(max_size=5), SCALARS, max_size=2),
    }
)


def _kinds(tmp: Path) -> dict[str, tuple[tuple[str, ...], st.SearchStrategy[dict[str, Any]]]]:
    model, code, data = str(tmp / "weights"), str(tmp / "code"), str(tmp / "in")
    path = st.sampled_from([model, data, code, str(tmp / "missing"), "./rel", "", "azureml:m:1"])
    return {
        "endpoint": (
            ("endpoint", "create"),
            _fields(
                {
                    "name": NAME,
                    "description": st.text(max_size=10),
                    "tags": st.dictionaries(st.text(max_size=4), SCALARS),
                    "properties": ANY,
                    "auth_mode": st.sampled_from(["aad_token", "key"]),
                    "defaults": _fields({"deployment_name": NAME}),
                    "$schema": st.just("https://x/y.json"),
                }
            ),
        ),
        "deployment": (
            ("deployment", "create"),
            _fields(
                {
                    "name": NAME,
                    "endpoint_name": st.sampled_from(["hard", "missing-ep"]),
                    "type": st.sampled_from(["model", "pipeline"]),
                    "model": st.one_of(
                        st.sampled_from(["azureml:weights:1", "azureml:weights@latest", "azureml:nope:3"]),
                        _fields(
                            {
                                "path": path,
                                "type": st.sampled_from(["custom_model", "mlflow_model", "x"]),
                                "name": NAME,
                                "version": SCALARS,
                            }
                        ),
                    ),
                    "code_configuration": _fields(
                        {"code": path, "scoring_script": st.sampled_from(["score.py", "x.py", "../score.py"])}
                    ),
                    "environment": st.one_of(
                        st.just("azureml:env:1"), _fields({"image": st.text(max_size=5), "conda_file": path})
                    ),
                    "compute": st.sampled_from(["local", "azureml:local", "cpu1", "missing"]),
                    "resources": _fields({"instance_count": st.integers(-1, 3)}),
                    "settings": SETTINGS,
                    "mini_batch_size": st.integers(-1, 5),
                    "retry_settings": _fields({"max_retries": st.integers(-1, 5)}),
                }
            ),
        ),
        "model": (
            ("model", "create"),
            _fields(
                {
                    "name": NAME,
                    "version": SCALARS,
                    "type": st.sampled_from(["custom_model", "mlflow_model", "triton"]),
                    "path": path,
                    "description": st.text(max_size=5),
                    "tags": ANY,
                }
            ),
        ),
        "data": (
            ("data", "create"),
            _fields(
                {
                    "name": NAME,
                    "version": SCALARS,
                    "type": st.sampled_from(["uri_file", "uri_folder", "mltable"]),
                    "path": path,
                }
            ),
        ),
        "datastore": (
            ("datastore", "create"),
            _fields(
                {
                    "name": NAME,
                    "type": st.sampled_from(["local", "azure_blob", "azure_data_lake_gen2", "azure_file"]),
                    "path": path,
                    "account_name": st.sampled_from(["acct", "A", "devstoreaccount1"]),
                    "container_name": st.sampled_from(["box", "-x", "ab"]),
                    "filesystem": st.text(max_size=5),
                    "endpoint": st.sampled_from(["core.windows.net", "127.0.0.1:10000", "evil/../x"]),
                    "protocol": st.sampled_from(["https", "http", "ftp"]),
                    "credentials": ANY,
                }
            ),
        ),
        "compute": (
            ("compute", "create"),
            _fields(
                {
                    "name": NAME,
                    "type": st.sampled_from(["local", "ray", "amlcompute", "kubernetes"]),
                    "address": st.sampled_from(["local", "auto", "ray://h:10001", ""]),
                    "max_workers": st.integers(-1, 4),
                    "size": st.text(max_size=5),
                    "min_instances": st.integers(-1, 3),
                    "max_instances": st.integers(-1, 3),
                    "identity": ANY,
                }
            ),
        ),
        "invocation": (
            ("job", "create", "--dry-run"),
            _fields(
                {
                    "endpoint": st.sampled_from(["hard", "missing-ep"]),
                    "deployment": NAME,
                    "name": NAME,
                    "experiment_name": NAME,
                    "inputs": st.dictionaries(
                        st.sampled_from(["x", "y"]),
                        _fields({"type": st.sampled_from(["uri_folder", "uri_file", "mltable"]), "path": path}),
                        max_size=2,
                    ),
                    "outputs": st.dictionaries(
                        st.sampled_from(["score", "other"]),
                        _fields(
                            {
                                "type": st.just("uri_folder"),
                                "path": st.sampled_from([str(tmp / "out"), data, ""]),
                            }
                        ),
                        max_size=2,
                    ),
                    "mini_batch_size": st.integers(-1, 5),
                    "instance_count": st.integers(-1, 3),
                    "error_threshold": st.integers(-2, 3),
                    "output_file_name": st.sampled_from(["p.csv", "../p.csv"]),
                    "retry_settings": _fields({"max_retries": st.integers(-1, 5), "timeout": st.integers(-1, 5)}),
                }
            ),
        ),
    }


def _dump(data: dict[str, Any]) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:  # e.g. a string YAML cannot represent: dump it as JSON (also YAML)
        return json.dumps(data)


@pytest.mark.parametrize("kind", ["endpoint", "deployment", "model", "data", "datastore", "compute", "invocation"])
def test_every_generated_spec_is_accepted_or_rejected_with_one_line(bench, cli, tmp_path, kind):
    bench.deploy("hard", "blue")
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "a.txt").write_text("ok\n")
    command, strategy = _kinds(tmp_path)[kind]
    spec = tmp_path / "fuzz.yml"

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(strategy)
    def check(data: dict[str, Any]) -> None:
        spec.write_text(_dump(data))
        result = cli(*command, "-f", str(spec))  # CliRunner(catch_exceptions=False): a crash fails here
        if result.exit_code == 0:
            return
        lines = result.stderr.splitlines()
        assert result.exit_code in (3, 4, 5, 9), (result.exit_code, result.stderr, data)
        assert lines and lines[0].startswith("Error: ") and not lines[0].startswith("Error: unexpected"), (
            result.stderr,
            data,
        )
        assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("Hint: ")), (result.stderr, data)
        assert "Traceback" not in result.stderr

    check()
