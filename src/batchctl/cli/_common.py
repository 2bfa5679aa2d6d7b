"""One decorator gives every command the common options (output, query, workspace, debug, Azure
compatibility flags), error handling with stable exit codes, and output rendering."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Annotated, Any, cast

import typer

from batchctl.cli import _console

_STATE: dict[str, Any] = {"workspace": None, "debug": False, "output": None, "query": None}

OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", help="Output format: json, yaml, table, tsv (json unless stdout is a terminal)."),
]
QueryOpt = Annotated[str | None, typer.Option("--query", help="JMESPath query applied to the output.")]
WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        help="Workspace folder (default: $BATCHCTL_HOME, else ~/.batchctl).",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]
ResourceGroupOpt = Annotated[
    str | None,
    typer.Option("--resource-group", "-g", help="Accepted for az ml compatibility; ignored.", hidden=True),
]
WorkspaceNameOpt = Annotated[
    str | None,
    typer.Option("--workspace-name", "-w", help="Accepted for az ml compatibility; ignored.", hidden=True),
]
SubscriptionOpt = Annotated[
    str | None, typer.Option("--subscription", help="Accepted for az ml compatibility; ignored.", hidden=True)
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Delete even while a queued or running job uses it (that job will fail).")
]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="Override a field: --set a.b=value (repeatable).")
]

_COMMON: list[tuple[str, Any, Any]] = [
    ("output", OutputOpt, None),
    ("query", QueryOpt, None),
    ("workspace", WorkspaceOpt, None),
    ("debug", DebugOpt, False),
    ("resource_group", ResourceGroupOpt, None),
    ("workspace_name", WorkspaceNameOpt, None),
    ("subscription", SubscriptionOpt, None),
]


def set_global(workspace: str | None, debug: bool) -> None:
    if workspace:
        _STATE["workspace"] = workspace
    if debug:
        _STATE["debug"] = True


def workspace() -> Any:
    from batchctl.workspace import Workspace

    return Workspace.open(_STATE["workspace"])


def debug_on() -> bool:
    from batchctl.settings import debug_enabled

    return bool(_STATE["debug"]) or debug_enabled()


def for_a_person() -> bool:
    """True when the command prints for a person: stdout is a terminal and neither -o nor --query was
    given. Then a job ends in a short summary and `job show` in sections; scripts get the record."""
    return _STATE.get("output") is None and not _STATE.get("query") and _console.stdout_is_terminal()


def report(exc: BaseException, summarized: bool = False) -> int:
    """Print an error as one line (plus a hint) and return its exit code. `summarized`: a job summary on
    the terminal already gave the error and the next commands, so when stderr is that terminal too the
    lines are not repeated."""
    from batchctl.errors import BatchctlError, redact

    if debug_on():
        traceback.print_exception(exc, file=sys.stderr)
    quiet = summarized and _console.stderr_is_terminal() and not debug_on()
    hint: str | None = None
    if isinstance(exc, BatchctlError):
        message, hint, code = exc.message, exc.hint, exc.exit_code
    elif isinstance(exc, _UsageError):
        message, code = str(exc), 2
    elif isinstance(exc, KeyboardInterrupt):
        message, code = "interrupted", 130
    else:
        text = redact(" ".join(str(exc).split()))[:500] or type(exc).__name__
        message, code = f"unexpected {type(exc).__name__}: {text}", 1
        hint = None if debug_on() else "run again with --debug for details"
    if not quiet:
        _console.error_line(message, hint)
    return code


class AlreadySummarized(Exception):
    """`error`, raised after a job summary on the terminal already gave it (see `report`)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _UsageError(Exception):
    """A bad option value found before the command runs: exit 2, as click's own usage errors."""


def _check_output(output: str | None) -> None:
    if output is not None and output.lower() not in _console.FORMATS:
        raise _UsageError(f"--output: '{output}' is not an output format; use json, jsonc, yaml, table, tsv or none")


def command(
    group: typer.Typer,
    name: str,
    columns: Sequence[str] | None = None,
    render: bool = True,
    table_rows: Callable[[Any], Any] | None = None,
    terminal: Callable[[Any], bool] | None = None,
    **kwargs: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `fn` as `group name` with the common options; `fn` returns what is printed. `table_rows`,
    if given, turns the result into the rows of `-o table` (the other formats print the records whole).
    `terminal`, if given, prints the result for a person (see for_a_person) and returns True, or returns
    False to leave it to the default table."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = list(sig.parameters.values())
        extra = [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)
            for n, ann, default in _COMMON
            if n not in sig.parameters
        ]

        @functools.wraps(fn)
        def wrapper(**params: Any) -> None:
            common = {n: params.pop(n) for n, _, _ in _COMMON if n in params and n not in sig.parameters}
            set_global(common.get("workspace"), bool(common.get("debug")))
            _STATE["output"], _STATE["query"] = common.get("output"), common.get("query")
            from batchctl import notices

            def show(data: Any, rows: Callable[[Any], Any] | None) -> bool:
                if terminal is not None and for_a_person() and terminal(data):
                    return True
                _console.render(data, common.get("output"), common.get("query"), columns, rows)
                return False

            previous_sink = notices.set_sink(_console.warning)
            try:
                _check_output(common.get("output"))
                result = fn(**params)
                if render and result is not None:
                    show(result, table_rows)
            except typer.Exit:
                raise
            except (Exception, KeyboardInterrupt) as exc:
                from batchctl.errors import BatchctlError

                summarized = isinstance(exc, AlreadySummarized)
                error = exc.error if isinstance(exc, AlreadySummarized) else exc
                record = error.record if isinstance(error, BatchctlError) else None
                if render and record is not None:
                    summarized = show(record, None)
                code = report(error, summarized)
                raise typer.Exit(code) from None
            finally:
                notices.set_sink(previous_sink)

        signature = sig.replace(parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + extra)
        # typer reads the command's options from `__signature__`, which functools' wrapper type does not declare
        cast(Any, wrapper).__signature__ = signature
        wrapper.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        group.command(name, **kwargs)(wrapper)
        return fn

    return decorate


def confirm(question: str, yes: bool) -> None:
    from batchctl.errors import ConflictError

    if yes:
        return
    if not sys.stdin.isatty() and os.environ.get("BATCHCTL_ASSUME_TTY") != "1":
        try:
            answer = sys.stdin.readline()
        except (OSError, ValueError):
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return
        raise ConflictError(f"{question} Not confirmed.", "pass --yes to confirm without a prompt")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)
