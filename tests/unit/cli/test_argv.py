"""az-style multi-value flags: each extra `key=value` after --set/--tags gets its flag."""

from __future__ import annotations

import pytest

from batchctl.cli._argv import expand_multi_values


@pytest.mark.parametrize(
    ("argv", "expanded"),
    [
        (["--set", "a=1", "b=2"], ["--set", "a=1", "--set", "b=2"]),
        (
            ["invoke", "--set", "a=1", "b=2", "--tags", "k=v", "k2=v=w", "--input", "d"],
            ["invoke", "--set", "a=1", "--set", "b=2", "--tags", "k=v", "--tags", "k2=v=w", "--input", "d"],
        ),
        (["--set=a=1", "b=2"], ["--set=a=1", "--set", "b=2"]),
        (["--input", "x=y", "z=w"], ["--input", "x=y", "z=w"]),  # other flags keep their one value
        (["--set", "a=1", "positional"], ["--set", "a=1", "positional"]),  # not a pair: left for typer to refuse
        (["--set", "a=1", "--", "--set", "a=1", "b=2"], ["--set", "a=1", "--", "--set", "a=1", "b=2"]),
    ],
)
def test_expand_multi_values(argv: list[str], expanded: list[str]) -> None:
    assert expand_multi_values(argv) == expanded
