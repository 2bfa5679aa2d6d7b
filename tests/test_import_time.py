"""Fast start: the CLI imports no heavy library until a command needs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("mlflow", "pandas", "pyarrow", "fsspec", "ray", "adlfs", "numpy", "sklearn")

PROBE = """
import json, sys
{imports}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


def _loaded(imports: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports)], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_cli_pulls_no_heavy_library():
    loaded = _loaded("import batchctl.cli")
    assert "batchctl" in loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_control_plane_modules_pull_no_heavy_library():
    loaded = _loaded(
        "import batchctl.api, batchctl.cli.endpoint, batchctl.cli.deployment, batchctl.cli.model, "
        "batchctl.cli.data, batchctl.cli.datastore, batchctl.cli.compute"
    )
    assert sorted(loaded & set(HEAVY)) == []


def test_endpoint_list_pulls_no_heavy_library(tmp_path):
    probe = (
        "import sys\n"
        "from batchctl.cli import app\n"
        f"sys.argv = ['batchctl', '--workspace', {str(tmp_path)!r}, 'endpoint', 'list']\n"
        "try:\n    app(prog_name='batchctl')\nexcept SystemExit:\n    pass\n"
    )
    loaded = _loaded(probe)
    assert sorted(loaded & set(HEAVY)) == []


def test_help_through_the_real_entry_point():
    # tests/conftest.py's run_batchctl is `python -m batchctl` (`from conftest import` is ambiguous: every
    # conftest.py in the tree is the module `conftest`)
    result = subprocess.run([sys.executable, "-m", "batchctl", "--help"], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert "Usage: batchctl" in result.stdout
    for group in ("endpoint", "deployment", "model", "data", "datastore", "compute"):
        assert f" {group} " in result.stdout


def _modules_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code + "\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_endpoint_list_through_main_does_not_import_importlib_metadata(tmp_path):
    """pydantic's plugin loader imports importlib.metadata (a few % of the start-up) even with plugins
    disabled; the CLI puts a stand-in first."""
    probe = (
        "import json, sys\n"
        "from batchctl.cli import main\n"
        f"sys.argv = ['batchctl', '--workspace', {str(tmp_path)!r}, 'endpoint', 'list']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    loaded = _modules_after(probe)
    assert "typer" in loaded and "pydantic" in loaded
    assert "importlib.metadata" not in loaded


def test_the_stand_in_hands_over_to_pydantics_loader_once_plugins_are_enabled():
    """With plugins enabled again, the stand-in imports the real loader, which answers from then on."""
    import os

    probe = (
        "import json, os, sys\n"
        "from batchctl.cli import _defer_pydantic_plugin_loader\n"
        "os.environ['PYDANTIC_DISABLE_PLUGINS'] = '1'\n"
        "_defer_pydantic_plugin_loader()\n"
        "from pydantic import TypeAdapter\n"
        "assert TypeAdapter(int).validate_python('3') == 3\n"
        "assert 'importlib.metadata' not in sys.modules\n"
        "del os.environ['PYDANTIC_DISABLE_PLUGINS']\n"
        "from pydantic.plugin._loader import get_plugins\n"
        "found = list(get_plugins())\n"
        "import pydantic.plugin._loader as real\n"
        "assert real.__file__ and real._plugins is not None, 'the real loader ran'\n"
        "assert TypeAdapter(int).validate_python('4') == 4\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    loaded = _modules_after(probe, env)
    assert "importlib.metadata" in loaded


def test_asking_whether_an_invocation_goes_to_a_pipeline_imports_no_pipeline_code(tmp_path):
    """Every `endpoint invoke` asks; the answer is the registry's, not the pipelines package's (importing
    it was a third of a model job's CLI start-up before its runner: docs/benchmarks.md, Scale)."""
    probe = (
        "import json, sys\n"
        "from batchctl import api\n"
        "from batchctl.workspace import Workspace\n"
        f"assert api.is_pipeline_deployment(Workspace.open({str(tmp_path)!r}), 'nowhere', None) is False\n"
        "assert api.is_pipeline_deployment(Workspace.open(" + repr(str(tmp_path)) + "), None, None) is False\n"
    )
    loaded = _modules_after(probe)
    assert "batchctl.resources.deployments" in loaded
    assert not [m for m in loaded if m.startswith("batchctl.jobs.pipelines")]


@pytest.mark.parametrize("command", [["job", "list"], ["job", "show", "-n", "nothing"]])
def test_job_list_and_show_import_no_runner_and_no_submit(tmp_path, command):
    """`job list` and `job show` (CI scripts poll them) read records: the runner, the submit path and the
    typed request are imported by the commands that start jobs, not by these (0.47 -> 0.40 CPU-s a
    call when this was made lazy: docs/benchmarks.md, Start-up)."""
    probe = (
        "import json, sys\n"
        "from batchctl.cli import main\n"
        f"sys.argv = ['batchctl', '--workspace', {str(tmp_path)!r}, *{command!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    loaded = _modules_after(probe)
    assert "batchctl.jobs.commands" in loaded, "the probe ran the job command"
    heavy = {"batchctl.jobs.runner", "batchctl.jobs.submit", "batchctl.execution.base"}
    assert not heavy & set(loaded), sorted(heavy & set(loaded))
