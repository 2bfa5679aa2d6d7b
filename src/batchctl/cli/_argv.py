"""Rewrites of the command line that `az` scripts rely on, done before typer parses it."""

from __future__ import annotations

# options that take several `key=value` pairs after one flag, as az's `--set a=1 b=2` does
MULTI_VALUE_FLAGS = ("--set", "--tags")


def expand_multi_values(argv: list[str]) -> list[str]:
    """`--set a=1 b=2 --tags k=v k2=v2` -> `--set a=1 --set b=2 --tags k=v --tags k2=v2`: each extra
    `key=value` token after a multi-value flag's value gets that flag. Other tokens are left alone."""
    out: list[str] = []
    current: str | None = None  # the multi-value flag whose pairs are being read
    expect_value = False
    for index, token in enumerate(argv):
        if token == "--":  # the rest is positional
            return out + argv[index:]
        if token.startswith("-") and len(token) > 1:
            flag = token.split("=", 1)[0]
            current = flag if flag in MULTI_VALUE_FLAGS else None
            expect_value = current is not None and "=" not in token[len(flag) :][:1]
            out.append(token)
            continue
        if current is not None and not expect_value and "=" in token:
            out.extend([current, token])
            continue
        if not expect_value:
            current = None
        expect_value = False
        out.append(token)
    return out
