"""Environment specs: where they come from, normalised, and their key; pip's index settings handed to uv."""

from __future__ import annotations

import os

import pytest
import yaml

from batchctl.envs import spec
from batchctl.envs.index import index_settings
from batchctl.envs.manage import unsatisfied
from batchctl.errors import EnvironmentBuildError, SpecError

AZURE_CONDA = {
    "name": "mlflow-env",
    "channels": ["conda-forge"],
    "dependencies": [
        "python=3.8.5",
        "pip<=21.3",
        "conda-forge::numpy=1.21",
        {"pip": ["mlflow", "cloudpickle==1.6.0", "scikit-learn==1.1.2", "azureml-defaults", "xgboost==1.3.3"]},
    ],
}


def test_a_conda_file_gives_the_python_request_sorted_requirements_and_notices_for_what_is_skipped():
    s = spec.from_conda(AZURE_CONDA, "env")
    assert s.python == "3.8.5"
    assert s.requirements == ("cloudpickle==1.6.0", "mlflow", "scikit-learn==1.1.2", "xgboost==1.3.3")
    assert [c.line() for c in s.skipped] == [
        "skipped conda-forge::numpy=1.21: conda package (no conda here); list it under pip: to install",
        "skipped azureml-defaults: Azure-only package, it does nothing locally",
    ]


def test_the_key_does_not_depend_on_the_order_or_spelling_of_the_dependencies():
    a = spec.from_requirements(["Scikit_Learn==1.1.2", "pandas<2.1,>=1"], "3.8.5", "a")
    b = spec.from_requirements(["pandas>=1,<2.1", "scikit-learn==1.1.2"], "3.8.10", "b")
    assert a.key == b.key  # same Python minor, same requirements
    c = spec.from_requirements(["pandas>=1,<2.1", "scikit-learn==1.1.3"], "3.8.5", "c")
    assert c.key != a.key
    assert a.with_worker("mlflow").key != a.key


def test_worker_packages_are_added_unless_the_user_names_them():
    s = spec.from_requirements(["pandas<2.1", "mlflow==2.9.2"], None, "m").with_worker("mlflow")
    assert s.worker == ("pyarrow", "fsspec")  # the user's pandas pin wins; mlflow covers mlflow-skinny
    assert spec.from_requirements(["bcprobe"], None, "s").with_worker("script").worker == ()


def test_an_mlflow_model_prefers_python_env_and_requirements_over_conda(tmp_path):
    (tmp_path / "conda.yaml").write_text(yaml.safe_dump(AZURE_CONDA))
    s = spec.from_mlflow_model(tmp_path)
    assert s.source == "model files conda.yaml" and s.python == "3.8.5"
    (tmp_path / "python_env.yaml").write_text(
        "python: 3.10.2\nbuild_dependencies: [pip]\ndependencies: [-r requirements.txt]\n"
    )
    (tmp_path / "requirements.txt").write_text("mlflow==2.9.2\n# a comment\nscikit-learn==1.3.0\n")
    s = spec.from_mlflow_model(tmp_path)
    assert (s.source, s.python, s.requirements) == (
        "model files python_env.yaml + requirements.txt",
        "3.10.2",
        ("mlflow==2.9.2", "scikit-learn==1.3.0"),
    )
    (tmp_path / "bare").mkdir()
    assert spec.from_mlflow_model(tmp_path / "bare") is None


def test_a_bad_requirement_is_one_spec_error():
    with pytest.raises(SpecError) as info:
        spec.from_requirements(["scikit-learn>>1"], None, "x")
    assert info.value.message.startswith("requirement 'scikit-learn>>1' is not a valid requirement")


def test_unsatisfied_checks_versions_against_this_interpreter():
    from importlib.metadata import version

    have = version("pyyaml")
    assert unsatisfied([f"pyyaml=={have}", "PyYAML>=1"]) == []
    assert unsatisfied(["pyyaml<1", "bcprobe"]) == ["pyyaml<1", "bcprobe"]
    assert unsatisfied(['bcprobe; python_version < "3"']) == []  # a marker that does not apply here


def test_pip_settings_are_handed_to_uv(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    cons = tmp_path / "constraints.txt"
    cons.write_text("torch<=2\n")
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\n"
        f"find-links = {wheels}\n"
        "extra-index-url = file:///nonexistent/simple https://mirror.example/simple\n"
        f"constraint = {cons}\n"
        "index-url = https://company.example/simple\n"
    )
    settings = index_settings({"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path)})
    assert settings.args == [
        "--index-url", "https://company.example/simple",
        "--extra-index-url", "https://mirror.example/simple",
        "--index-strategy", "unsafe-best-match",
        "--find-links", str(wheels),
        "--constraint", str(cons),
    ]  # fmt: skip
    assert settings.notes == ["pip's extra-index-url file:///nonexistent/simple does not exist here; left out"]
    # the environment wins over the file, and uv's own index setting over pip's
    env = {"PIP_CONFIG_FILE": str(conf), "PIP_FIND_LINKS": str(tmp_path), "UV_INDEX_URL": "https://uv.example"}
    args = index_settings(env).args
    assert "--index-url" not in args and args[args.index("--find-links") + 1] == str(tmp_path)
    assert index_settings({"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"}).args == ["--no-index"]


def test_ray_workers_get_the_drivers_ray_release_and_the_users_pin_wins_when_it_allows_it():
    base = spec.EnvSpec(source="s", python=None, requirements=("bcprobe==1.0.0",), worker=("pandas",))
    ray = base.with_ray("2.60.0")
    assert (ray.worker, ray.constraints) == (("pandas", "ray==2.60.0"), ())
    assert ray.with_ray("2.60.0") == ray  # idempotent: the same key when the runner lays it on again
    assert ray.key != base.key
    named = spec.EnvSpec(source="s", python=None, requirements=("ray[default]>=2.50",))
    assert (named.with_ray("2.60.0").worker, named.with_ray("2.60.0").constraints) == ((), ("ray==2.60.0",))
    wanted = r"^s requires ray==2\.9\.0, but this job's Ray workers need ray 2\.60\.0"
    with pytest.raises(EnvironmentBuildError, match=wanted):
        spec.EnvSpec(source="s", python=None, requirements=("ray==2.9.0",)).with_ray("2.60.0")


@pytest.mark.parametrize(
    ("address", "here"),
    [
        ("local", True),
        ("auto", True),
        (None, True),
        ("127.0.0.1:6379", True),
        ("localhost:6379", True),
        ("[::1]:6379", True),
        ("198.51.100.7:6379", False),
        ("ray://127.0.0.1:10001", False),
    ],
)
def test_which_ray_addresses_are_on_this_machine(address, here):
    from batchctl.execution.ray import runs_here

    assert runs_here(address) is here
