"""`batchctl environment create|show|list|delete` and deployments that reference a registered environment
(issue 18)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

CONDA = (
    "name: sk\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n"
    "  - pip:\n      - scikit-learn==1.5.0\n      - pandas>=2\n"
)
IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"


@pytest.fixture
def env_file(tmp_path: Path):
    """env_file(**fields) -> environment.yml beside environment/conda.yml (paths relative to the spec)."""
    folder = tmp_path / "envspec"
    (folder / "environment").mkdir(parents=True, exist_ok=True)
    (folder / "environment" / "conda.yml").write_text(CONDA)

    def make(name: str = "sk-env", **fields: object) -> Path:
        data = {
            "$schema": "https://azuremlschemas.azureedge.net/latest/environment.schema.json",
            "name": name,
            "image": IMAGE,
            "conda_file": "environment/conda.yml",
            **fields,
        }
        data = {k: v for k, v in data.items() if v is not None}
        path = folder / f"{name}.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return make


def test_create_copies_the_conda_file_and_records_its_hash_and_pip_requirements(cli, out, env_file, home, registry):
    record = out(cli("environment", "create", "-f", str(env_file())))
    assert (record["name"], record["version"], record["id"]) == ("sk-env", "1", "azureml:sk-env:1")
    assert record["image"] == IMAGE
    copy = Path(record["conda_file"])
    assert copy == home / "environments" / "sk-env" / "1" / "conda.yml"
    assert copy.read_text() == CONDA
    assert record["conda_file_sha256"] == hashlib.sha256(CONDA.encode()).hexdigest()
    assert record["pip_requirements"] == ["scikit-learn==1.5.0", "pandas>=2"]
    assert record["python_version"] == "3.11"
    # the paths inside the workspace are stored relative to its root, and shown absolute
    relative = {"conda_file": "environments/sk-env/1/conda.yml", "environment_dir": "environments/sk-env/1"}
    assert registry.data()["environments"]["sk-env"]["1"] == {**record, **relative}
    # the same definition again: the same version, and the registry is not rewritten
    before = registry.bytes()
    again = out(cli("environment", "create", "-f", str(env_file())))
    assert again == record
    assert registry.bytes() == before


def test_a_changed_conda_file_is_a_new_version_and_versions_are_immutable(cli, out, env_file, tmp_path, registry):
    spec = env_file()
    out(cli("environment", "create", "-f", str(spec)))
    conda = tmp_path / "envspec" / "environment" / "conda.yml"
    conda.write_text(CONDA.replace("pandas>=2", "pandas>=2.1"))
    second = out(cli("environment", "create", "-f", str(spec)))
    assert second["version"] == "2"
    assert second["pip_requirements"] == ["scikit-learn==1.5.0", "pandas>=2.1"]
    assert (registry.path.parent / registry.data()["environments"]["sk-env"]["1"]["conda_file"]).read_text() == CONDA
    before = registry.bytes()
    conda.write_text(CONDA.replace("python=3.11", "python=3.12"))
    clash = cli("environment", "create", "-f", str(spec), "--version", "1")
    assert clash.exit_code == 5
    assert clash.stderr == (
        "Error: environment 'sk-env' version '1' exists with another definition; versions are immutable\n"
        "Hint: omit --version to register a new version\n"
    )
    assert registry.bytes() == before


def test_options_form_inline_conda_and_build_context(cli, out, tmp_path, home, monkeypatch):
    work = tmp_path / "work"
    (work / "ctx").mkdir(parents=True)
    (work / "ctx" / "Dockerfile.cpu").write_text("FROM python:3.11-slim\n")
    (work / "ctx" / "requirements.txt").write_text("scikit-learn\n")
    (work / "conda.yaml").write_text(CONDA)
    monkeypatch.chdir(work)
    by_options = out(
        cli("environment", "create", "--name", "opts", "--image", "python:3.11", "--conda-file", "conda.yaml")
    )
    assert by_options["conda_file_source"] == str(work / "conda.yaml")
    assert Path(by_options["conda_file"]).name == "conda.yaml"
    built = out(
        cli("environment", "create", "--name", "built", "--build-context", "ctx", "--dockerfile-path", "Dockerfile.cpu")
    )
    assert built["build"] == {
        "path": str(home / "environments" / "built" / "1" / "build"),
        "dockerfile_path": "Dockerfile.cpu",
        "source": str(work / "ctx"),
    }
    assert (Path(built["build"]["path"]) / "requirements.txt").read_text() == "scikit-learn\n"
    assert (built["conda_file"], built["pip_requirements"]) == (None, [])
    spec = work / "inline.yml"
    spec.write_text(
        yaml.safe_dump({"name": "inline", "image": "python:3.11", "conda_file": yaml.safe_load(CONDA)}, sort_keys=False)
    )
    inline = out(cli("environment", "create", "-f", str(spec)))
    assert inline["conda_file_source"] == "inline"
    assert yaml.safe_load(Path(inline["conda_file"]).read_text()) == yaml.safe_load(CONDA)
    assert inline["pip_requirements"] == ["scikit-learn==1.5.0", "pandas>=2"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": None, "conda_file": None}, "sk-env.yml: one of image or build is required"),
        ({"build": {"path": "environment"}}, "sk-env.yml: image and build are mutually exclusive"),
        (
            {"image": None, "build": {"path": "environment", "dockerfile_path": "conda.yml"}},
            "sk-env.yml: conda_file needs image (with build, the Dockerfile installs the dependencies)",
        ),
        (
            {"conda_file": "missing.yml"},
            "sk-env.yml: conda_file: '{folder}/missing.yml' does not exist or is not a file",
        ),
        (
            {"image": None, "conda_file": None, "build": {"path": "environment"}},
            "sk-env.yml: build.dockerfile_path: 'Dockerfile' not found in '{folder}/environment'",
        ),
        ({"os_type": "beos"}, "sk-env.yml: os_type: Input should be 'linux' or 'windows'"),
    ],
)
def test_invalid_environments_exit_3_and_write_nothing(cli, env_file, tmp_path, registry, home, fields, message):
    result = cli("environment", "create", "-f", str(env_file(**fields)))
    assert result.exit_code == 3
    assert result.stderr == f"Error: {message.format(folder=tmp_path / 'envspec')}\n"
    assert registry.bytes() is None
    assert not (home / "environments").exists() or not any((home / "environments").rglob("*.yml"))


def test_show_list_and_delete(cli, out, env_file, tmp_path, home):
    out(cli("environment", "create", "-f", str(env_file())))
    (tmp_path / "envspec" / "environment" / "conda.yml").write_text(CONDA + "  - numpy\n")
    out(cli("environment", "create", "-f", str(env_file())))
    out(cli("environment", "create", "-f", str(env_file("other"))))
    assert out(cli("environment", "show", "-n", "sk-env"))["version"] == "2"
    assert out(cli("environment", "show", "-n", "sk-env", "--label", "latest"))["version"] == "2"
    assert out(cli("environment", "show", "-n", "sk-env", "-v", "1"))["version"] == "1"
    assert [(r["name"], r["version"]) for r in out(cli("environment", "list"))] == [("other", "1"), ("sk-env", "2")]
    assert [r["version"] for r in out(cli("environment", "list", "-n", "sk-env"))] == ["1", "2"]
    missing = cli("environment", "show", "-n", "nope")
    assert (missing.exit_code, missing.stderr) == (
        4,
        "Error: environment 'nope' not found\nHint: register it with `batchctl environment create --name nope ...`\n",
    )
    assert out(cli("environment", "delete", "-n", "sk-env", "-v", "1", "--yes")) == {
        "name": "sk-env",
        "versions_deleted": ["1"],
    }
    assert not (home / "environments" / "sk-env" / "1").exists()
    assert (home / "environments" / "sk-env" / "2" / "conda.yml").is_file()


def test_old_registry_without_the_environments_section_loads(cli, out, env_file, home, registry):
    home.mkdir(parents=True)
    old = {
        "schema_version": 1,
        "endpoints": {},
        "deployments": {},
        "models": {},
        "data": {},
        "datastores": {},
        "computes": {},
    }
    (home / "registry.json").write_text(json.dumps(old))
    assert out(cli("environment", "list")) == []
    out(cli("endpoint", "create", "-n", "heart"))
    out(cli("environment", "create", "-f", str(env_file())))
    data = registry.data()
    assert data["schema_version"] == 2  # written back with this version's schema (settings.SCHEMA_VERSION)
    assert list(data["environments"]) == ["sk-env"]
    assert list(data["endpoints"]) == ["heart"]


# deployments that reference an environment


@pytest.fixture
def endpoint(cli, out) -> str:
    out(cli("endpoint", "create", "-n", "heart"))
    return "heart"


def test_deployment_resolves_latest_and_pinned_environment_references(
    cli, out, env_file, endpoint, deployment_file, tmp_path, registry
):
    out(cli("environment", "create", "-f", str(env_file())))
    (tmp_path / "envspec" / "environment" / "conda.yml").write_text(CONDA + "  - numpy\n")
    out(cli("environment", "create", "-f", str(env_file())))
    latest = out(
        cli("deployment", "create", "-f", str(deployment_file("blue", endpoint, environment="azureml:sk-env@latest")))
    )
    assert latest["environment"] == "azureml:sk-env:2"
    pinned = out(
        cli("deployment", "create", "-f", str(deployment_file("green", endpoint, environment="azureml:sk-env:1")))
    )
    assert pinned["environment"] == "azureml:sk-env:1"
    assert registry.data()["deployments"]["heart/green"]["environment"] == "azureml:sk-env:1"
    # in use: refused, nothing removed
    before = registry.bytes()
    used = cli("environment", "delete", "-n", "sk-env", "-v", "1", "--yes")
    assert (used.exit_code, used.stderr) == (
        5,
        "Error: environment 'sk-env' version '1' is used by deployment heart/green\n"
        "Hint: delete or update those deployments first\n",
    )
    assert registry.bytes() == before
    # an update by --set keeps the pinned version
    updated = out(cli("deployment", "update", "-n", "green", "-e", endpoint, "--set", "description=x"))
    assert updated["environment"] == "azureml:sk-env:1"


def test_deployment_with_a_missing_version_of_a_registered_environment_is_not_found(
    cli, out, env_file, endpoint, deployment_file, registry
):
    out(cli("environment", "create", "-f", str(env_file())))
    before = registry.bytes()
    result = cli("deployment", "create", "-f", str(deployment_file("blue", endpoint, environment="azureml:sk-env:7")))
    assert (result.exit_code, result.stderr) == (4, "Error: environment 'sk-env' has no version '7'; versions: 1\n")
    assert registry.bytes() == before


def test_deployment_with_an_unregistered_curated_environment_is_recorded_with_a_warning(
    cli, endpoint, deployment_file, registry
):
    ref = "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest"
    result = cli("deployment", "create", "-f", str(deployment_file("blue", endpoint, environment=ref)))
    assert result.exit_code == 0
    assert result.stderr == (
        "Warning: environment 'AzureML-sklearn-1.0-ubuntu20.04-py38-cpu' is not registered in this workspace; "
        "recorded as given (register it with `batchctl environment create`)\n"
    )
    assert registry.data()["deployments"]["heart/blue"]["environment"] == ref


@pytest.mark.slow
def test_a_job_of_a_deployment_with_a_registered_environment_runs_in_this_interpreter_with_env_manager_local(
    cli, out, env_file, endpoint, deployment_file, tmp_path
):
    out(cli("environment", "create", "-f", str(env_file())))
    out(cli("deployment", "create", "-f", str(deployment_file("blue", endpoint, environment="azureml:sk-env@latest"))))
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("age,chol,thal\n50,200,normal\n70,300,fixed\n")
    result = cli("endpoint", "invoke", "-n", endpoint, "--input", str(data), "--env-manager", "local")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert (record["status"], record["counts"]["items_succeeded"]) == ("Completed", 1)
    env = record["environment"]
    assert (env["manager"], env["used"], env["source"]) == ("local", "local", "environment azureml:sk-env:1")
    assert env["requirements"] == ["pandas>=2", "scikit-learn==1.5.0"]
    assert not (Path(record["log_dir"]).parent.parent.parent / "envs").exists()  # nothing built
    assert Path(record["output_file"]).read_text().count("\n") == 2


def test_a_build_path_that_holds_the_workspace_is_refused_naming_both(cli, tmp_path, home, registry):
    """Issue 23, finding 9: the copy would copy the workspace into itself until "File name too long"."""
    assert tmp_path in home.parents
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    spec = tmp_path / "env.yml"
    spec.write_text(yaml.safe_dump({"name": "loop", "build": {"path": str(tmp_path)}}))
    result = cli("environment", "create", "-f", str(spec))
    assert result.exit_code == 3
    assert result.stderr.splitlines() == [
        f"Error: env.yml: build.path: '{tmp_path}' contains the workspace '{home}', so copying it into the "
        "workspace would copy the workspace into itself",
        "Hint: point the path at a folder that does not hold the workspace, or move the workspace "
        "(--workspace or BATCHCTL_HOME)",
    ]
    assert registry.bytes() is None
    assert not (home / "environments").exists() or not any((home / "environments").iterdir())


def test_symbolic_links_in_a_build_context_are_copied_as_links(cli, out, tmp_path):
    """Issue 23, finding 9: a link that points at /etc is a link in the copy, never /etc's files."""
    import os

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (ctx / "etc").symlink_to("/etc")
    (ctx / "hostname").symlink_to("/etc/hostname")
    (ctx / "same").symlink_to("Dockerfile")
    spec = tmp_path / "env.yml"
    spec.write_text(yaml.safe_dump({"name": "links", "build": {"path": str(ctx)}}))
    record = out(cli("environment", "create", "-f", str(spec)))
    build = Path(record["build"]["path"])
    links = {name: os.readlink(build / name) for name in ("etc", "hostname", "same")}
    assert links == {"etc": "/etc", "hostname": "/etc/hostname", "same": "Dockerfile"}
    real = [os.path.join(d, f) for d, dirs, files in os.walk(build) for f in files + dirs]
    assert sorted(os.path.relpath(p, build) for p in real if not os.path.islink(p)) == ["Dockerfile"]
    # the same links again: the same version (the hash counts what a link says, not what it points at)
    assert out(cli("environment", "create", "-f", str(spec)))["version"] == record["version"]
    (ctx / "same").unlink()
    (ctx / "same").symlink_to("etc")
    assert out(cli("environment", "create", "-f", str(spec)))["version"] == "2"
