"""Replay of Azure's hello-batch example on a machine whose pip configuration adds a local extra index
(`extra-index-url = file:///opt/pypi/simple`) holding only today's release of a package: pip picks the
best release across all its indexes, so `pip install scikit-learn~=1.5.0` works there; uv, given the same
indexes, stopped at the first one holding the package and the step's environment failed with "only
scikit-learn==1.9.1 is available". Here: two local indexes written by the test, the extra one holding
bcprobe 1.0.0 only, the main one 2.0.0 too."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from envs.wheels import isolate_pip, write_wheel

STEP = """\
import pathlib, sys, bcprobe
pathlib.Path(sys.argv[1], "probe.txt").write_text(bcprobe.probe())
"""


def _index(root: Path, versions: tuple[str, ...]) -> str:
    """A PEP 503 simple index in a folder, as file:///opt/pypi/simple is: simple/<name>/index.html."""
    files = root / "files"
    links = []
    for version in versions:
        wheel = write_wheel(files, "bcprobe", version)
        links.append(f'<a href="../../files/{wheel.name}">{wheel.name}</a>')
    page = root / "simple" / "bcprobe" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    return (root / "simple").as_uri()


@pytest.fixture
def two_indexes(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    main = _index(tmp_path_factory.mktemp("main-index"), ("1.0.0", "2.0.0"))
    extra = _index(tmp_path_factory.mktemp("extra-index"), ("1.0.0",))
    conf = tmp_path_factory.mktemp("pipconf") / "pip.conf"
    conf.write_text(f"[global]\nindex-url = {main}\nextra-index-url = {extra}\n")
    isolate_pip(monkeypatch, tmp_path_factory.mktemp("uv-cache"), pip_config=str(conf))


@pytest.mark.timeout(600)
def test_a_release_only_on_the_main_index_is_found_as_pip_finds_it(cli: Any, tmp_path: Path, two_indexes: None) -> None:
    root = tmp_path / "hello"
    (root / "src").mkdir(parents=True)
    (root / "src" / "step.py").write_text(STEP)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    step = {
        "type": "command",
        "component": {
            "code": "src",
            "environment": {"conda_file": {"dependencies": [f"python={python}", "pip", {"pip": ["bcprobe==2.0.0"]}]}},
            "outputs": {"out": {"type": "uri_folder"}},
            "command": "python step.py ${{outputs.out}}",
        },
        "outputs": {"out": "${{parent.outputs.probe}}"},
    }
    job_file = root / "pipeline-job.yml"
    job_file.write_text(
        yaml.safe_dump({"type": "pipeline", "jobs": {"main_job": step}, "outputs": {"probe": {"type": "uri_folder"}}})
    )
    result = cli("job", "create", "-f", str(job_file), "--query", "name", "-o", "tsv")
    assert result.exit_code == 0, result.stderr
    job = result.stdout.strip()
    (child,) = json.loads(cli("job", "list", "--parent-job-name", job, "-o", "json").stdout)
    assert child["environment"]["used"] == "isolated", child["environment"]
    out = tmp_path / "downloaded"
    assert cli("job", "download", "--name", job, "--output-name", "probe", "--download-path", str(out)).exit_code == 0
    assert next(out.rglob("probe.txt")).read_text() == "bcprobe-2.0.0"
