"""A NUL character in any value or key of a spec is refused by the one validation every spec goes through."""

from __future__ import annotations

import pytest

from batchctl.errors import SpecError
from batchctl.specs import load as spec_load


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"name": "d", "type": "local", "path": "\x00"}, "path"),
        ({"name": "d", "type": "local", "path": "ok", "tags": {"k": "a\x00b"}}, "tags.k"),
        ({"name": "d", "type": "local", "path": "ok", "tags": {"k\x00": "v"}}, "tags.k\x00"),
    ],
)
def test_a_nul_character_anywhere_in_a_spec_is_one_line_naming_its_key(data: dict, where: str) -> None:
    # found by tests/hardening/test_spec_fuzz.py: a local datastore's path "\0" was "unexpected ValueError:
    # embedded null byte" (exit 1)
    from batchctl.specs.assets import DatastoreSpec

    with pytest.raises(SpecError) as info:
        spec_load.validate_data(DatastoreSpec, data, "d.yml")
    assert info.value.message == f"d.yml: {where}: contains a NUL character (\\0), which no name or path can hold"
