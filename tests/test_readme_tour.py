"""README's tour, run as written (issue 28, item 1): the bash blocks of "A tour" are pasted, in order, into
one bash shell, in a copy of the repository's example and a new workspace, with this interpreter's
batchctl and python first on PATH. A command whose comment says `exits N` must exit N; every other
command must exit 0 (`set -e`). Then what the tour says it leaves behind is checked."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOUR = "## A tour: the Azure ML Studio workflow, step by step, with batchctl"
EXPECTED_EXIT = re.compile(r"\s+#\s*exits (\d+)\b.*$")


def tour_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert TOUR in text, f"README.md has no section {TOUR!r}"
    section = re.split(r"\n##+ ", text.split(TOUR, 1)[1], maxsplit=1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)


def rest_block() -> str:
    """The first bash block of "Endpoints over REST": a server started, a job POSTed, the server stopped."""
    section = README.read_text(encoding="utf-8").split("## Endpoints over REST", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)[0]


def as_script(blocks: list[str]) -> str:
    """The blocks as one bash script: continuation lines joined, and a command whose comment says
    `exits N` run so that any other exit code stops the script."""
    lines = ["set -euo pipefail"]
    for block in blocks:
        for command in block.replace("\\\n", " ").splitlines():
            expected = EXPECTED_EXIT.search(command)
            if expected is None:
                lines.append(command)
                continue
            code, bare = expected.group(1), command[: expected.start()]
            lines.append(
                f'rc=0; {bare} || rc=$?; [ "$rc" = {code} ] || '
                f'{{ echo "expected exit {code}, got $rc: {bare.replace(chr(34), "")}" >&2; exit 99; }}'
            )
    return "\n".join(lines) + "\n"


def test_the_tour_is_in_blocks_a_person_can_paste():
    blocks = tour_blocks()
    assert len(blocks) >= 10
    assert blocks[0].startswith("cd examples/endpoints/batch\npython train_model.py")
    # the model is trained before it is registered, the data asset registered before it is used
    script = "".join(blocks)
    assert script.index("train_model.py") < script.index("model create")
    assert script.index("data create -f heart-unlabeled.yml") < script.index("azureml:heart-unlabeled@latest")


@pytest.mark.slow
@pytest.mark.mlflow
@pytest.mark.timeout(400)
def test_the_tour_runs_as_written(tmp_path):
    repo = tmp_path / "repo"
    example = repo / "examples" / "endpoints" / "batch"
    ignore = shutil.ignore_patterns("model", ".workspace", "__pycache__", "broken", "scores", "named-outputs")
    shutil.copytree(ROOT / "examples" / "endpoints" / "batch", example, ignore=ignore)
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "batchctl").is_file() and (bin_dir / "python").exists()
    home = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BATCHCTL_"))}
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "BATCHCTL_HOME": str(home), "BATCHCTL_NO_SERVER": "1"})
    script = tmp_path / "tour.sh"
    # the tour, then the REST example (issue 28, item 3), which starts `batchctl serve` and stops it
    script.write_text(as_script([*tour_blocks(), rest_block()]))
    bash = subprocess.Popen(
        ["bash", str(script)], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = bash.communicate(timeout=380)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(bash.pid, signal.SIGKILL)  # a server the script left behind, if it failed midway
    proc = subprocess.CompletedProcess(bash.args, bash.returncode, stdout, stderr)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # the job on the data asset scored the four CSV files, and `job download` wrote them here
    scored = (example / "named-outputs" / "score" / "predictions.csv").read_text().splitlines()
    assert len(scored) == 160 and {r.rsplit(",", 1)[1] for r in scored} == {
        f"heart-unlabeled-{i}.csv" for i in range(4)
    }
    assert len((example / "scores" / "run-1" / "scores.csv").read_text().splitlines()) == 160
    jobs = json.loads(
        subprocess.run(
            ["batchctl", "job", "list", "-o", "json"], cwd=repo, env=env, capture_output=True, text=True, timeout=60
        ).stdout
    )
    assert len(jobs) == 4 and {j["status"] for j in jobs} == {"Completed"}
    assert [j["counts"]["files"] for j in jobs] == [4, 4, 4, 4]
    rest = jobs[0]  # newest first: the job the REST POST started, on the folder ./data
    assert rest["inputs"]["input_data"]["path"] == str(example / "data") and rest["counts"]["items_failed"] == 0
    tagged = [j for j in jobs if j.get("tags") == {"team": "risk", "ticket": "42"}]
    assert len(tagged) == 1 and tagged[0]["counts"]["items_failed"] == 0
    resumed = [j for j in jobs if j["attempts"] == 2]
    assert len(resumed) == 1 and resumed[0]["history"][0]["status"] == "Failed"
    # what the commented commands print
    assert "Completed\n" in proc.stdout
    assert "Model is missing inputs ['thal']" in proc.stdout
    assert not (home / "server.json").exists()  # the server was stopped by the block's `kill %1`
