"""Reading the YAML file itself: only plain YAML mappings, every problem on one line."""

from __future__ import annotations

import pytest

from batchctl.errors import SpecError
from batchctl.specs.endpoint import EndpointSpec
from batchctl.specs.load import load_spec


def _error(path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec("endpoint", EndpointSpec, path)
    return info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "ep.yml: the file is empty; expected a mapping of fields"),
        ("- a\n- b\n", "ep.yml: expected a mapping of fields at the top level, got a list"),
        ("just text\n", "ep.yml: expected a mapping of fields at the top level, got a string"),
        (
            "name: [unclosed\n",
            "ep.yml: invalid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "name: !!python/object/apply:os.system ['true']\n",
            "ep.yml: invalid YAML at line 1: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system' (only plain YAML is accepted)",
        ),
    ],
)
def test_bad_yaml(tmp_path, text, message):
    path = tmp_path / "ep.yml"
    path.write_text(text)
    assert _error(path) == message


def test_missing_file(tmp_path):
    assert _error(tmp_path / "nope.yml") == f"{tmp_path / 'nope.yml'}: file not found"


def test_folder_instead_of_file(tmp_path):
    assert _error(tmp_path) == f"{tmp_path}: is a folder, not a YAML file"


def test_not_utf8(tmp_path):
    path = tmp_path / "ep.yml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert _error(path) == "ep.yml: not UTF-8 text"
