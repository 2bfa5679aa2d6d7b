"""argparse-style abbreviated long options, as `az` accepts them: `--endpoint` for `--endpoint-name`,
`--f` for `--file`. An unambiguous prefix of a long option of the command being run is expanded before
typer parses the command line; an exact name always wins over a longer one (`--name` vs
`--name-prefix`); a prefix that matches options of several parameters is a usage error (exit 2) that
lists them. Several names of one parameter (`--endpoint` and `--endpoint-name`) are not ambiguous.

Only typer's public API: `typer.main.get_command()` converts the app once, and main() runs that very
command, so the conversion is not paid twice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

HELP = "--help"
# batchctl's own options that a prefix Azure's scripts write would otherwise match (`--f` for `--file` of
# `endpoint invoke` and `job create`): they are written whole, never expanded from a prefix
WHOLE_ONLY = frozenset({"--force-rerun"})


class AmbiguousOption(Exception):
    def __init__(self, prefix: str, candidates: list[str]) -> None:
        super().__init__(f"ambiguous option: {prefix} could match {', '.join(candidates)}")
        self.prefix = prefix
        self.candidates = candidates


def _long_options(params: Iterable[Any]) -> dict[str, Any]:
    """Every long option name of a command (or group) -> its parameter, `--help` included."""
    names: dict[str, Any] = {HELP: HELP}
    for param in params:
        if getattr(param, "param_type_name", None) != "option":
            continue
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("--"):
                names[name] = param
    return names


def _short_options(params: Iterable[Any]) -> dict[str, Any]:
    return {
        name: param
        for param in params
        if getattr(param, "param_type_name", None) == "option"
        for name in [*param.opts, *param.secondary_opts]
        if name.startswith("-") and not name.startswith("--")
    }


def _takes_value(param: Any) -> bool:
    return param != HELP and not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def expand_option(token: str, options: dict[str, Any]) -> tuple[str, Any]:
    """`--endp=x` -> (`--endpoint-name=x`, its parameter); an unknown option comes back as it is, for
    typer to report; an ambiguous prefix raises AmbiguousOption."""
    name, eq, value = token.partition("=")
    if name in options:
        return token, options[name]
    matches = [option for option in options if option.startswith(name) and option not in WHOLE_ONLY]
    params = {id(options[m]): options[m] for m in matches}
    if not matches:
        return token, None
    if len(params) > 1:
        raise AmbiguousOption(name, sorted(matches))
    # one parameter, perhaps under several names: the shortest is its main name (--endpoint, not --endpoint-name)
    chosen = min(matches, key=lambda m: (len(m), m))
    return chosen + eq + value, options[chosen]


def expand_args(command: Any, args: list[str]) -> list[str]:
    """The command line with every abbreviated long option written in full, for `command` (a converted
    typer app: a group whose sub-commands are walked as the words of the command line name them)."""
    out: list[str] = []
    current = command
    longs = _long_options(current.params)
    shorts = _short_options(current.params)
    position = 0
    while position < len(args):
        token = args[position]
        position += 1
        if token == "--":
            out.extend(args[position - 1 :])
            break
        if token.startswith("--"):
            token, param = expand_option(token, longs)
            out.append(token)
            if param is not None and "=" not in token and _takes_value(param) and position < len(args):
                out.append(args[position])
                position += 1
            continue
        if token.startswith("-") and len(token) > 1:
            out.append(token)
            param = shorts.get(token)
            if param is not None and _takes_value(param) and position < len(args):
                out.append(args[position])
                position += 1
            continue
        out.append(token)
        sub = getattr(current, "commands", {}).get(token)
        if sub is not None:
            current = sub
            longs = _long_options(current.params)
            shorts = _short_options(current.params)
    return out


def convert(app: Any) -> Any:
    """The click command typer builds for `app` (typer's documented `typer.main.get_command`)."""
    import typer.main

    return typer.main.get_command(app)


def run(app: Any, argv: list[str], prog_name: str) -> Any:
    """Convert `app` once, expand abbreviated options in `argv`, and run it (what `app(...)` does)."""
    from batchctl.cli._argv import expand_multi_values

    command = convert(app)
    try:
        args = expand_multi_values(expand_args(command, argv))
    except AmbiguousOption as exc:
        from batchctl.cli import _console

        _console.error_line(str(exc), "write more of the option's name")
        raise SystemExit(2) from None
    return command(args=args, prog_name=prog_name)
