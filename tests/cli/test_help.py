"""`--help` of every command and group: flags read as flags (no `<bool>`), and the help ends with one
example, a command line of the README's tour that parses as that very command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from testkit import batchctl_command

README = Path(__file__).resolve().parents[2] / "README.md"


def tour() -> str:
    text = README.read_text()
    start = text.index("## A tour")
    return text[start : text.index("\n## ", start + 1)]


def commands(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = [(path, node)]
    for name, sub in (getattr(node, "commands", None) or {}).items():
        out += commands(sub, (*path, name))
    return out


ALL = commands(batchctl_command())


def test_every_command_and_group_has_an_example_and_no_example_is_left_over():
    from batchctl.cli._examples import EXAMPLES

    paths = {" ".join(p) for p, _ in ALL}
    assert {"", "job", "job show", "endpoint invoke", "environment delete", "serve"} <= paths
    assert paths == set(EXAMPLES)


@pytest.mark.parametrize(("path", "node"), ALL, ids=[" ".join(p) or "batchctl" for p, _ in ALL])
def test_help_reads_flags_as_flags_and_ends_with_an_example_from_the_tour(cli, path, node):
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "<bool>" not in text
    assert "--help  " in text or "--help\n" in text
    lines = [line for line in text.rstrip("\n").splitlines()]
    assert lines[-3:-1] == ["  Example:", ""], lines[-4:]
    example = lines[-1].strip()
    words = shlex.split(example)
    assert words[: 1 + len(path)] == ["batchctl", *path] or not path, example
    assert example in tour(), example
    # the example parses as its command: every option exists and takes what it is given
    from batchctl.cli._argv import expand_multi_values

    args = expand_multi_values(words[1:])
    target = node if path else batchctl_command()
    own = args[len(path) :] if path else args
    if getattr(target, "commands", None) is None:
        context = target.make_context(" ".join(["batchctl", *path]), list(own), resilient_parsing=False)
        context.close()


def test_a_flag_and_an_option_that_takes_values(cli):
    text = cli("endpoint", "invoke", "--help").stdout
    assert re.search(r"^  --no-wait +Hand the job", text, re.MULTILINE), text
    assert re.search(r"^  --set KEY=VALUE +Override a field", text, re.MULTILINE), text
    assert re.search(r"^  -n, --name <str> +Endpoint name\.", text, re.MULTILINE), text


EXAMPLE_DIR = README.parent / "examples" / "endpoints" / "batch"
MADE_BY_THE_TOUR = {
    "./model": "python train_model.py",  # trained first, in the tour's first block
    "blobds.yml": "cat > blobds.yml <<",  # written by the README's Azure Blob block
    "job.yml": "# job.yml: batchctl job create -f job.yml",  # the README's invocation file, shown whole
}


@pytest.mark.parametrize(("path", "node"), ALL, ids=[" ".join(p) or "batchctl" for p, _ in ALL])
def test_every_file_an_example_names_is_in_the_bundled_example(path, node):
    """The examples are run from examples/endpoints/batch, as the tour is: a file one names is there (or
    made by the tour), so `--help`'s example works when pasted. (The data asset's YAML moved out of
    data/ and `data create`'s example still named data/heart-unlabeled.yml.)"""
    from batchctl.cli._examples import EXAMPLES

    words = shlex.split(EXAMPLES[" ".join(path)])
    for option, value in zip(words, words[1:], strict=False):
        if option not in ("-f", "--file", "--path", "-p", "--conda-file"):
            continue
        if value in MADE_BY_THE_TOUR:
            assert MADE_BY_THE_TOUR[value] in README.read_text(), value
            continue
        assert (EXAMPLE_DIR / value).exists(), f"{' '.join(words)}: {value} is not in {EXAMPLE_DIR}"
