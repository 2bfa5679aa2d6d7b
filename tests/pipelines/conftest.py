"""Pipelines (issue 24, part 1): the fixture trees in the forms of Azure's batch pipeline examples, copied
into the test's folder with their code folders made, and a workspace holding the assets they name."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.models import cached_heart_model

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# the code folder of each component file, and the script its command runs
CODE = {
    "scoring/components/prep": "prep.py",
    "scoring/components/score": "score.py",
    "training/components/prep": "prep.py",
    "training/components/train": "train.py",
    "hello/hello-component": "hello.py",
}


@pytest.fixture
def fx(tmp_path: Path) -> Path:
    """A copy of tests/pipelines/fixtures with every component's `src/` made (a one-line script)."""
    root = tmp_path / "fx"
    shutil.copytree(FIXTURES, root)
    for folder, script in CODE.items():
        src = root / folder / "src"
        src.mkdir(parents=True)
        (src / script).write_text(f'print("{script} ran")\n')
    for example in ("scoring", "training"):
        data = root / example / "data" / "unlabeled"
        data.mkdir(parents=True)
        (data / "heart.csv").write_text("age,sex\n63,1\n")
    return root


@pytest.fixture(scope="session")
def heart_model(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_heart_model(pytestconfig, tmp_path_factory)


@pytest.fixture
def ok(cli: Any) -> Callable[..., Any]:
    """ok(*args): run batchctl in-process, check it exited 0 with nothing on stderr, return its JSON."""

    def run(*args: str) -> Any:
        result = cli(*args, "-o", "json")
        assert (result.exit_code, result.stderr) == (0, ""), result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    return run


@pytest.fixture
def scoring_assets(fx: Path, heart_model: Path, ok: Callable[..., Any], tmp_path: Path) -> Path:
    """What the scoring example registers before its pipeline (as its deploy-and-run.sh does): the
    environment, the MLflow model, the transformations (a custom model: a folder of files), the prep
    component. Returns the example's folder."""
    folder = fx / "scoring"
    transforms = tmp_path / "transformations"
    transforms.mkdir()
    (transforms / "columns.json").write_text('{"categorical": ["thal"]}\n')
    ok("environment", "create", "-f", str(folder / "env" / "heart-env.yml"))
    ok("model", "create", "--name", "heart-classifier", "--type", "mlflow_model", "--path", str(heart_model))
    ok("model", "create", "--name", "heart-transforms", "--type", "custom_model", "--path", str(transforms))
    ok("component", "create", "-f", str(folder / "components" / "prep" / "prep.yml"))
    return folder


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    """write_yaml(name, text): a YAML file under the test's folder (text as written: templates stay)."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write
