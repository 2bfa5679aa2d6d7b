"""Hostile or malformed YAML through every `create -f` / `update -f` / `invoke -f` command: rejected with
one line (exit 3), nothing executed, nothing written (issue 7, "Bad input")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .hardening_helpers import one_line_error, tree

FILE_COMMANDS = {
    "endpoint": ("endpoint", "create", "-f"),
    "endpoint-update": ("endpoint", "update", "-n", "hard", "-f"),
    "deployment": ("deployment", "create", "-f"),
    "deployment-update": ("deployment", "update", "-f"),
    "model": ("model", "create", "-f"),
    "data": ("data", "create", "-f"),
    "datastore": ("datastore", "create", "-f"),
    "compute": ("compute", "create", "-f"),
    "job-create": ("job", "create", "-f"),
    "invoke": ("endpoint", "invoke", "-n", "hard", "-f"),
}


@pytest.fixture
def ready(bench):
    bench.deploy("hard", "blue")
    return bench


def _payloads(marker: Path) -> dict[str, str]:
    cmd = f"touch {marker}"
    return {
        "apply-os.system": f"name: !!python/object/apply:os.system ['{cmd}']\n",
        "apply-subprocess": f"name: !!python/object/apply:subprocess.call [['sh', '-c', '{cmd}']]\n",
        "new-os.system": f"name: !!python/object/new:os.system ['{cmd}']\n",
        "top-level-apply": f"!!python/object/apply:os.system ['{cmd}']\n",
        "python-name": "name: !!python/name:os.system\n",
        "python-module": "name: !!python/module:os\n",
        "nested-in-settings": (
            "name: blue\nendpoint_name: hard\nsettings:\n"
            f"  environment_variables: !!python/object/apply:os.system ['{cmd}']\n"
        ),
    }


@pytest.mark.parametrize("label", list(_payloads(Path("m"))))
def test_python_tags_are_rejected_and_nothing_runs(cli, ready, tmp_path, label):
    marker = tmp_path / f"EXECUTED-{label}"
    spec = tmp_path / "evil.yml"
    spec.write_text(_payloads(marker)[label])
    before = tree(tmp_path)
    for kind, command in FILE_COMMANDS.items():
        result = cli(*command, str(spec))
        assert result.exit_code == 3, (kind, result.stderr)
        message = one_line_error(result.stderr)
        assert message.startswith("evil.yml: invalid YAML at line "), message
        assert message.endswith("(only plain YAML is accepted)"), message
        assert not marker.exists(), kind
        assert tree(tmp_path) == before, kind


SHAPES = {
    "list": (
        "- name: hard\n- name: other\n",
        "evil.yml: expected a mapping of fields at the top level, got a list",
    ),
    "scalar": ("hard\n", "evil.yml: expected a mapping of fields at the top level, got a string"),
    "number": ("42\n", "evil.yml: expected a mapping of fields at the top level, got a number"),
    "empty": ("", "evil.yml: the file is empty; expected a mapping of fields"),
    "only-comments": ("# nothing here\n", "evil.yml: the file is empty; expected a mapping of fields"),
    "null": ("null\n", "evil.yml: the file is empty; expected a mapping of fields"),
}


@pytest.mark.parametrize("label", list(SHAPES))
def test_yaml_that_is_not_a_mapping_gives_one_clear_line(cli, ready, tmp_path, label):
    text, expected = SHAPES[label]
    spec = tmp_path / "evil.yml"
    spec.write_text(text)
    before = tree(tmp_path)
    for kind, command in FILE_COMMANDS.items():
        result = cli(*command, str(spec))
        assert result.exit_code == 3, (kind, result.stderr)
        assert one_line_error(result.stderr) == expected, kind
        assert tree(tmp_path) == before


def test_a_50_mb_yaml_is_refused_without_being_parsed(cli, ready, tmp_path):
    spec = tmp_path / "evil.yml"
    with open(spec, "w") as handle:
        handle.write("name: hard\ntags:\n")
        line = "  k{}: " + "v" * 80 + "\n"
        for i in range(50 * 1024 * 1024 // len(line)):
            handle.write(line.format(i))
    size = spec.stat().st_size
    assert size > 49 * 1024 * 1024
    before = tree(tmp_path)
    for kind, command in FILE_COMMANDS.items():
        result = cli(*command, str(spec))
        assert result.exit_code == 3, (kind, result.stderr)
        assert one_line_error(result.stderr) == (
            f"evil.yml: file is too large for a spec ({size} bytes; the limit is 1048576)"
        ), kind
        assert tree(tmp_path) == before


# a "billion laughs": a few hundred bytes of YAML whose aliases expand to 10^9 strings
BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def _with_bomb(head: str, tail: str) -> str:
    body = "\n".join("  " + line for line in BOMB.splitlines())
    return f"{head}$schema:\n{body}\n{tail}"  # $schema is accepted and dropped: a place for the anchors


BOMBS = {
    # free-form mappings that are stored as they are: validation and json.dumps would walk 10^9 values
    "compute-identity": ("compute", "name: big\ntype: amlcompute\n", "identity: {k: *i}\n"),
    "datastore-credentials": (
        "datastore",
        "name: blob\ntype: azure_blob\naccount_name: acct\ncontainer_name: box\n",
        "credentials: {k: *i}\n",
    ),
    "deployment-resources": (
        "deployment",
        "name: blue\nendpoint_name: hard\n",
        "resources: {properties: {k: *i}}\n",
    ),
    "endpoint-tags": ("endpoint", "name: hard\n", "tags: {k: *i}\n"),
    "model-top-level": ("model", "name: m\n", "x: *i\n"),
    "invocation": ("job-create", "endpoint: hard\n", "inputs: {x: {type: uri_folder, path: *i}}\n"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("label", list(BOMBS))
def test_a_yaml_alias_bomb_is_refused_at_once(cli, ready, tmp_path, label):
    kind, head, tail = BOMBS[label]
    spec = tmp_path / "evil.yml"
    spec.write_text(_with_bomb(head, tail))
    assert spec.stat().st_size < 2000
    before = tree(tmp_path)
    result = cli(*FILE_COMMANDS[kind], str(spec))
    assert result.exit_code == 3, result.stderr
    assert one_line_error(result.stderr) == (
        "evil.yml: too many values for a spec (more than 100000, counting each use of a YAML alias)"
    )
    assert tree(tmp_path) == before


@pytest.mark.slow  # parsing 120000 values from one --set takes a few seconds
def test_a_huge_set_value_is_refused_the_same_way(cli, ready, tmp_path):
    value = "{" + ", ".join(f"k{i}: [" + ",".join(["x"] * 400) + "]" for i in range(300)) + "}"
    result = cli("endpoint", "create", "-n", "ep2", "--set", f"tags={value}")
    assert result.exit_code == 3
    assert "too many values for a spec" in one_line_error(result.stderr)


def test_anchors_and_aliases_within_reason_still_work(cli, ready, tmp_path):
    spec = tmp_path / "ok.yml"
    spec.write_text("name: ep2\ntags: &t {team: ml, env: dev}\nproperties: *t\n")
    result = cli("endpoint", "create", "-f", str(spec), "-o", "json")
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["tags"] == created["properties"] == {"team": "ml", "env": "dev"}  # the alias resolved
    shown = cli("endpoint", "show", "-n", "ep2", "--query", "properties", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == {"team": "ml", "env": "dev"}
