"""Shell completion (issue 16, item 3): the real entry point with typer's completion variables, for bash,
zsh and fish; names of endpoints, deployments and jobs come from the workspace, without heavy imports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

HEAVY = ("mlflow", "pandas", "pyarrow", "fsspec", "ray", "adlfs", "numpy", "sklearn", "jmespath", "rich")


def _run(*args: str, env: dict[str, str], home: Path | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("_TYPER_COMPLETE", "COMP_", "_BATCHCTL"))}
    full.update(env)
    if home is not None:
        full["HOME"] = str(home)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full, timeout=60)


def complete(shell: str, words: str, *, extra: dict[str, str] | None = None) -> list[str]:
    """What `batchctl <words><TAB>` offers in `shell`, as the installed completion script asks for it."""
    env = {"_BATCHCTL_COMPLETE": f"complete_{shell}", **(extra or {})}
    if shell == "bash":
        cwords = words.split(" ")
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(len(cwords) - 1)}
    else:
        env["_TYPER_COMPLETE_ARGS"] = words
        if shell == "fish":
            env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    proc = _run("-m", "batchctl", env=env)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def build_workspace(root: Path) -> None:
    """Endpoints heart (deployments blue, green) and hearing (gray), and two jobs, nightly-1 and -2."""
    from testkit import Cli

    cli = Cli()
    src = root.parent / "src"
    (src / "model").mkdir(parents=True)
    (src / "model" / "weights.json").write_text("[1]\n")
    (src / "code").mkdir()
    (src / "code" / "score.py").write_text(
        "import os\n\ndef init():\n    pass\n\ndef run(mini_batch):\n    return list(mini_batch)\n"
    )
    ws = ("--workspace", str(root))
    for endpoint in ("heart", "hearing"):
        assert cli(*ws, "endpoint", "create", "-n", endpoint, "-o", "json").exit_code == 0
    for endpoint, name in (("heart", "blue"), ("heart", "green"), ("hearing", "gray")):
        spec = src / f"{endpoint}-{name}.yml"
        spec.write_text(yaml.safe_dump({
            "name": name, "endpoint_name": endpoint, "model": {"path": str(src / "model")},
            "code_configuration": {"code": str(src / "code"), "scoring_script": "score.py"},
        }))  # fmt: skip
        assert cli(*ws, "deployment", "create", "-f", str(spec), "-o", "json").exit_code == 0
    data = src / "data"
    data.mkdir()
    (data / "a.txt").write_text("1\n")
    for job in ("nightly-1", "nightly-2"):
        result = cli(*ws, "endpoint", "invoke", "-n", "heart", "-i", str(data), "--output-path", str(src / job),
                     "--job-name", job, "-o", "json")  # fmt: skip
        assert result.exit_code == 0, result.output


@pytest.fixture
def workspace(workspace_templates: Any) -> Path:
    """A copy of the session's completion workspace (built once: support.workspaces), at BATCHCTL_HOME."""
    return workspace_templates.copy("completion", build_workspace, Path(os.environ["BATCHCTL_HOME"]))


@pytest.mark.parametrize(
    ("instruction", "marker"),
    [
        ("bash_source", "complete -o default -F _batchctl_completion batchctl"),
        ("zsh_source", "compdef _batchctl_completion batchctl"),
        ("fish_source", "complete --command batchctl"),
        ("source_bash", "complete -o default -F _batchctl_completion batchctl"),  # typer's own order
    ],
)
def test_completion_script_for_each_shell(instruction: str, marker: str) -> None:
    proc = _run("-m", "batchctl", env={"_BATCHCTL_COMPLETE": instruction})
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert marker in proc.stdout
    assert "_BATCHCTL_COMPLETE=complete_" in proc.stdout


def test_show_and_install_completion(tmp_path: Path) -> None:
    env = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    shown = _run("-m", "batchctl", "--show-completion", "zsh", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "compdef _batchctl_completion batchctl" in shown.stdout
    installed = _run("-m", "batchctl", "--install-completion", "bash", env=env, home=tmp_path)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "batchctl.sh"
    assert "_BATCHCTL_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    assert "--install-completion" in _run("-m", "batchctl", "--help", env={}).stdout


@pytest.mark.slow
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_names_come_from_the_workspace(workspace: Path, shell: str) -> None:
    def values(words: str) -> set[str]:
        lines = complete(shell, words)
        if shell == "zsh":  # _arguments '*: :(("value":"help"\n"value2"))', or _files when nothing matches
            return {m for line in lines for m in re.findall(r'^(?:_arguments \'\*: :\(\()?"([^"]*)"', line)}
        return {line.split("\t")[0] for line in lines}

    assert "endpoint" in values("batchctl end")
    assert values("batchctl endpoint show -n ") == {"heart", "hearing"}
    assert values("batchctl endpoint show -n hea") == {"heart", "hearing"}
    assert values("batchctl endpoint show --name hearing") == {"hearing"}
    assert values("batchctl deployment show -e heart -n ") == {"blue", "green"}
    assert values("batchctl deployment show --endpoint-name hearing -n ") == {"gray"}
    assert values("batchctl deployment list -e ") == {"heart", "hearing"}
    assert values("batchctl endpoint invoke -n heart -d ") == {"blue", "green"}
    assert values("batchctl job show -n ") == {"nightly-1", "nightly-2"}
    assert values("batchctl job cancel -n nightly-") == {"nightly-1", "nightly-2"}
    assert values("batchctl job list -e ") == {"heart", "hearing"}


@pytest.mark.slow
def test_workspace_option_and_empty_workspace(workspace: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-ws"
    assert complete("bash", f"batchctl --workspace {empty} endpoint show -n ") == []
    assert complete("bash", f"batchctl endpoint show --workspace {empty} -n ") == []
    assert set(complete("bash", f"batchctl --workspace {workspace} endpoint show -n ")) == {"heart", "hearing"}
    # a corrupt registry completes nothing and prints no error into the shell
    other = tmp_path / "bad-ws"
    other.mkdir()
    (other / "registry.json").write_text("{not json")
    assert complete("bash", f"batchctl --workspace {other} endpoint show -n ") == []


@pytest.mark.slow
def test_completion_imports_no_heavy_library_and_no_spec_model(workspace: Path) -> None:
    env = {
        "_BATCHCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": "batchctl deployment show -e heart -n ",
        "COMP_CWORD": "6",
    }
    proc = _run("-X", "importtime", "-m", "batchctl", env=env)
    assert proc.returncode == 0
    assert set(proc.stdout.split()) == {"blue", "green"}
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert {m.split(".")[0] for m in modules} & set(HEAVY) == set()
    assert not any(m.startswith(("batchctl.specs", "batchctl.resources", "batchctl.api")) for m in modules)


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_job_list_status_completes_the_job_states(shell: str) -> None:
    """`job list --status <TAB>` offers the states (it completed file names before)."""
    from batchctl.cli._complete import JOB_STATES
    from batchctl.jobs.model import JobState

    assert JOB_STATES == tuple(state.value for state in JobState)
    assert [line.split("\t")[0] for line in complete(shell, "batchctl job list --status ")] == list(JOB_STATES)
    assert [line.split("\t")[0] for line in complete(shell, "batchctl job list -s F")] == ["Failed"]
    assert [line.split("\t")[0] for line in complete(shell, "batchctl job list --status C")] == [
        "Completed",
        "Canceled",
    ]
