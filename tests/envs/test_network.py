"""Environments built from PyPI (marked `network`: CI reaches the package registries; run them there).

pip's and uv's configuration files are off (tests/envs/conftest.py) and the index is PyPI itself."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.timeout(1200)]

TRAIN = r"""
import json, sys
import numpy as np, pandas as pd
import mlflow.sklearn
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = pd.DataFrame({"age": rng.uniform(30, 80, 60), "chol": rng.uniform(120, 400, 60)})
y = (X["age"] > 55).astype("int64")
model = LogisticRegression().fit(X, y)
mlflow.sklearn.save_model(model, sys.argv[1], serialization_format="cloudpickle")
print(json.dumps({"predictions": model.predict(X).tolist(), "proba": model.predict_proba(X)[:, 1].tolist(),
                  "sklearn": __import__("sklearn").__version__}))
X.to_csv(sys.argv[2], index=False)
"""

# what an Azure user's 2022 model carries: Python 3.8.5, scikit-learn 1.1.2 (no wheel for Python 3.11),
# unpinned mlflow, and Azure-only packages
AZURE_CONDA = {
    "name": "mlflow-env",
    "channels": ["conda-forge"],
    "dependencies": [
        "python=3.8.5",
        "pip<=21.3",
        {"pip": ["mlflow", "cloudpickle==2.2.0", "scikit-learn==1.1.2", "azureml-defaults"]},
    ],
}


@pytest.fixture
def pypi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIP_FIND_LINKS")
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("UV_CACHE_DIR")  # uv's own cache: later runs are fast


def test_a_real_scikit_learn_environment_builds_from_pypi(pypi, tmp_path):
    from batchctl.envs import build, spec

    s = spec.from_requirements(["scikit-learn", "pandas"], None, "network test").with_worker("mlflow")
    built = build.ensure(tmp_path / "envs", s)
    lock = Path(built.lock_file).read_text()
    assert "scikit-learn==" in lock and "mlflow-skinny==" in lock and "pyarrow==" in lock
    out = subprocess.run(
        [built.python, "-I", "-c", "import sklearn, pandas, mlflow; print(sklearn.__version__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"scikit-learn=={out.stdout.strip()}" in lock


def test_an_old_scikit_learn_model_with_azures_conda_file_scores_in_auto_mode(pypi, world, tmp_path):
    from batchctl.envs import build, spec

    trainer = build.ensure(
        tmp_path / "trainer-envs",
        spec.from_requirements(["scikit-learn==1.1.3", "mlflow-skinny==2.0.1", "pandas<2"], None, "trainer"),
    )
    model = tmp_path / "heart-2022"
    data = tmp_path / "heart-data"
    data.mkdir()
    trained = subprocess.run(
        [trainer.python, "-I", "-c", TRAIN, str(model), str(data / "heart.csv")],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ""},
    )  # fmt: skip
    expected = json.loads(trained.stdout.strip().splitlines()[-1])
    assert expected["sklearn"] == "1.1.3"
    # the model's environment as Azure users have it: a conda file only
    for name in ("python_env.yaml", "requirements.txt"):
        (model / name).unlink()
    (model / "conda.yaml").write_text(yaml.safe_dump(AZURE_CONDA))
    world.ok("model", "create", "-n", "heart-2022", "--type", "mlflow_model", "--path", str(model))
    spec_file = tmp_path / "dep.yml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "name": "old",
                "endpoint_name": "probe",
                "model": "azureml:heart-2022@latest",
                "settings": {"mini_batch_size": 1, "output_action": "append_row"},
            }
        )
    )
    world.ok("deployment", "create", "-f", str(spec_file))
    result = world.cli("endpoint", "invoke", "-n", "probe", "-d", "old", "--input", str(data), "-o", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    env = record["environment"]
    assert (record["status"], env["manager"], env["used"]) == ("Completed", "auto", "isolated")
    changes = {(c["kind"], c["requested"], c["used"]) for c in env["skipped"] + env["substitutions"]}
    assert ("skipped", "azureml-defaults", None) in changes
    assert ("relaxed", "scikit-learn==1.1.2", "scikit-learn==1.1.3") in changes
    assert ("python", "python 3.8.5", f"python {env['python']}") in changes
    assert any(kind == "era" for kind, _, _ in changes)
    for line in ("scikit-learn==1.1.2 -> scikit-learn==1.1.3", "python 3.8.5 -> python", "azureml-defaults"):
        assert line in result.stderr or line in json.dumps(env)
    import pandas as pd

    scored = pd.read_csv(record["output_file"], header=None)  # row, prediction, file (Azure's layout)
    assert scored.iloc[:, 1].tolist() == expected["predictions"]
    assert "scikit-learn==1.1.3" in Path(env["lock_file"]).read_text()
    # the direct scikit-learn path (no mlflow import) applies inside the environment too
    from batchctl.envs.build import worker_shim

    probe = (
        f"import sys; sys.path.insert(0, {worker_shim(world.home / 'envs')!r}); "
        f"from batchctl.scoring import sklearn_direct; print(sklearn_direct.load({str(model)!r}) is not None)"
    )
    python = str(Path(env["path"]) / "venv" / "bin" / "python")
    assert subprocess.run([python, "-I", "-c", probe], capture_output=True, text=True).stdout.strip() == "True"
