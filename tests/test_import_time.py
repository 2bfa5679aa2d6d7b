"""Fast start: the CLI imports no heavy library until a command needs it."""

from __future__ import annotations

import json
import subprocess
import sys

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
