"""The batchctl command line. Heavy libraries are imported inside commands, never here."""

from __future__ import annotations

from typing import Annotated

import typer

from batchctl import __version__
from batchctl.cli._common import set_global

_HELP = "Azure ML batch endpoints on any machine: same YAML, same scoring scripts, same CLI verbs."
GROUP_NAMES = (
    "endpoint",
    "deployment",
    "job",
    "model",
    "data",
    "datastore",
    "compute",
    "environment",
    "component",
)
_linked: set[str] = set()


_JOB_COMMANDS = ("invoke", "list-jobs")  # job commands that the endpoint and deployment groups carry too


def group_app(name: str, command: str | None = None) -> typer.Typer:
    """One group's app. Only its module is imported (plus the job commands that `endpoint` and `deployment`
    also carry, unless `command` names another): a command imports and decorates only what it needs,
    which is most of the start-up."""
    import importlib

    app = importlib.import_module(f"batchctl.cli.{name}").app
    wants_job_commands = command is None or command in _JOB_COMMANDS
    if name in ("endpoint", "deployment") and name not in _linked and wants_job_commands:
        from batchctl.cli import job

        if name == "endpoint":
            job.register_invoke(app, ("--name", "-n"))
        job.register_list_jobs(app, name)
        _linked.add(name)
    from batchctl.cli._examples import add_examples

    add_examples(app, name)
    return app


def __getattr__(name: str) -> object:
    # `app` (every group) and `GROUPS` are built on first use, not at import
    if name == "GROUPS":
        return {group: group_app(group) for group in GROUP_NAMES}
    if name == "app":
        globals()["app"] = built = build_app({group: group_app(group) for group in GROUP_NAMES})
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_app(groups: dict[str, typer.Typer]) -> typer.Typer:
    # rich_markup_mode=None: help as click prints it, where a flag reads `--no-wait` (typer's rich panels
    # give every option a type, `--no-wait <bool>`, `--help <bool>` too), and a usage error ends in
    # click's `Error: ...` line (the root's mode is every command's)
    root = typer.Typer(
        name="batchctl",
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_show_locals=False,
        add_completion=True,
        help=_HELP,
    )
    root.callback()(_root)
    for name, group in groups.items():
        root.add_typer(group, name=name)
    from batchctl.cli import serve
    from batchctl.cli._examples import add_examples

    serve.register(root)
    add_examples(root, "")
    return root


def _version(value: bool) -> None:
    if value:
        print(f"batchctl {__version__}")
        raise typer.Exit()


def _root(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", help="Workspace folder (default: $BATCHCTL_HOME or ~/.batchctl)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    set_global(workspace, debug)


def _requested_group(argv: list[str]) -> str | None:
    """The group named on the command line, when it is the first word after the root options."""
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg == "--workspace":
            skip_next = True
        elif arg.startswith("-"):
            continue
        else:
            return arg if arg in GROUP_NAMES else None
    return None


def _requested_command(argv: list[str], group: str) -> str | None:
    """The word after the group (`list` in `endpoint list`), when it is not an option."""
    words = argv[argv.index(group) + 1 :] if group in argv else []
    return words[0] if words and not words[0].startswith("-") else None


def _one_command(group: typer.Typer, command: str | None) -> typer.Typer:
    """The group with only `command` in it, when it has that command: typer converts every command of a
    group to click on each run, and a command's own run needs no other. Otherwise the whole group."""
    chosen = [info for info in group.registered_commands if info.name == command]
    if not chosen:
        return group
    only = typer.Typer()
    only.info = group.info
    only.registered_commands = chosen
    return only


_LOADER = "pydantic.plugin._loader"


def _defer_pydantic_plugin_loader() -> None:
    """pydantic's plugin loader imports `importlib.metadata` when it is imported (about 6 % of
    `batchctl endpoint list`), even when plugins are disabled and it returns at once. Until plugins are
    asked for with plugins enabled, a stand-in answers as the loader does when they are disabled; then
    the real loader is imported and answers from there on."""
    import sys
    import types

    if _LOADER in sys.modules:
        return
    stand_in = types.ModuleType(_LOADER)

    def get_plugins() -> object:
        import os

        if os.getenv("PYDANTIC_DISABLE_PLUGINS") in ("__all__", "1", "true"):
            return ()  # what the real loader returns, before anything else, when plugins are disabled
        import importlib

        if sys.modules.get(_LOADER) is stand_in:
            del sys.modules[_LOADER]
        return importlib.import_module(_LOADER).get_plugins()

    stand_in.__dict__["get_plugins"] = get_plugins  # a module object: its namespace is its __dict__
    sys.modules[_LOADER] = stand_in


def main() -> None:
    import os

    # pydantic (used by typer to coerce options) would scan every installed package's entry points
    # for plugins on first use; batchctl uses none, and the scan is a tenth of the start-up time
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
    import sys

    _defer_pydantic_plugin_loader()

    from batchctl.cli._complete import completion_words, normalize_instruction

    # converting every group to click costs a fifth of the start-up: build only the one asked for
    # (a shell completion request names it in the words typed so far)
    completing = normalize_instruction()
    argv = completion_words() if completing else sys.argv[1:]
    group = _requested_group(argv)
    if group is None:
        target = build_app({name: group_app(name) for name in GROUP_NAMES})
    else:
        # and only the command asked for; a completion may still be typing the command's name
        command = None if completing else _requested_command(argv, group)
        target = build_app({group: _one_command(group_app(group, command), command)})
    if completing:
        target(prog_name="batchctl")
        return
    from batchctl.cli._abbrev import run

    # argparse-style abbreviated long options (`--endpoint` for `--endpoint-name`), as az accepts them,
    # then az-style multi-value flags (`--set a=1 b=2`)
    run(target, sys.argv[1:], prog_name="batchctl")
