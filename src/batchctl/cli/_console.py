"""The only place that renders output: JSON, YAML, TSV, rich tables, and error lines."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

FORMATS = ("json", "yaml", "table", "tsv", "jsonc", "none")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _cell(value: Any) -> str:
    """A table cell: a mapping as one `key=value` line per leaf (nested keys dotted), a list as its items
    separated by commas; never a JSON blob."""
    if isinstance(value, dict):
        return "\n".join(f"{key}={leaf}" for key, leaf in _leaves(value, ""))
    if isinstance(value, list):
        return ", ".join(_inline(item) for item in value)
    return _scalar(value)


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{key}={leaf}" for key, leaf in _leaves(value, ""))
    if isinstance(value, list):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    return _scalar(value)


def _leaves(mapping: dict[str, Any], prefix: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.extend(_leaves(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", _inline(value) if not isinstance(value, dict) else ""))
    return out


def _tsv(value: Any) -> str:
    # az's tsv: a scalar alone; a mapping as its scalar values on one line; a list as one line per item
    if isinstance(value, list):
        return "\n".join(_tsv_row(item) for item in value)
    return _tsv_row(value)


def _tsv_row(value: Any) -> str:
    if isinstance(value, dict):
        return "\t".join(_scalar(v) for v in value.values() if not isinstance(v, dict | list))
    if isinstance(value, list):
        return "\t".join(_scalar(v) for v in value)
    return _scalar(value)


def _dig(record: Any, dotted: str) -> Any:
    node = record
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _redacted(value: Any) -> Any:
    """Every string of `value` through errors.redact: a key, SAS or connection string a user wrote into a
    spec (say a deployment's environment_variables) is never printed, in any format."""
    from batchctl.errors import redact

    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def render(
    data: Any,
    output: str | None,
    query: str | None,
    columns: Sequence[str] | None = None,
    table_rows: Callable[[Any], Any] | None = None,
) -> None:
    data = _redacted(data)
    if query:
        import jmespath

        from batchctl.errors import SpecError

        try:
            data = jmespath.search(query, data)
        except jmespath.exceptions.JMESPathError as exc:
            raise SpecError(f"--query: invalid JMESPath expression '{query}': {exc}") from exc
    fmt = (output or ("table" if stdout_is_terminal() else "json")).lower()
    if fmt == "none":
        return
    if fmt in ("json", "jsonc"):
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    elif fmt == "tsv":
        text = _tsv(data)
        sys.stdout.write(text + ("\n" if text or data == "" else ""))
    else:
        if table_rows is not None and not query:
            data = table_rows(data)
        _table(data, columns if not query else None)
    sys.stdout.flush()


def _table(data: Any, columns: Sequence[str] | None) -> None:
    from rich.console import Console
    from rich.table import Table

    # values are data, never rich markup or emoji codes (a model `azureml:heart:1` must not print as a heart)
    plain: dict[str, Any] = {"no_color": "NO_COLOR" in os.environ, "soft_wrap": False, "markup": False, "emoji": False}
    console = Console(**plain)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # piped into a file or another program: rich's fixed 80 columns would cut every value; use what fits
        console = Console(**plain, width=1000)
        fitted = True
    else:
        fitted = False
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        cols = list(columns or (data[0].keys() if data else ["result"]))
        table = Table(show_header=True, header_style="bold")
        for col in cols:
            # fold long values onto more lines: a table never hides part of a name or path behind an ellipsis
            table.add_column(
                col.split(".")[-1] if col != "defaults.deployment_name" else "default_deployment",
                overflow="fold",
            )
        for record in data:
            table.add_row(*(_cell(_dig(record, c)) for c in cols))
        _print_table(console, table, fitted)
    elif isinstance(data, dict):
        table = Table(show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in data.items():
            table.add_row(str(key), _cell(value))
        _print_table(console, table, fitted)
    else:
        console.print(_tsv(data), markup=False, highlight=False)


def _print_table(console: Any, table: Any, fitted: bool) -> None:
    if fitted:
        console.width = max(40, console.measure(table).maximum)
    console.print(table)


def print_lines(lines: Sequence[Sequence[tuple[str, str | None]]]) -> None:
    """Lines of (text, style) segments on stdout, for a person at a terminal: coloured unless NO_COLOR,
    never cut (a long path wraps where the terminal wraps it, so it can still be copied whole)."""
    from rich.console import Console
    from rich.text import Text

    console = Console(no_color="NO_COLOR" in os.environ, soft_wrap=True, markup=False, emoji=False, highlight=False)
    for line in lines:
        text = Text()
        for segment, style in line:
            text.append(segment, style=style or "")
        console.print(text)
    sys.stdout.flush()


def error_line(message: str, hint: str | None = None) -> None:
    from rich.console import Console

    console = Console(stderr=True, no_color="NO_COLOR" in os.environ, soft_wrap=True, highlight=False, emoji=False)
    console.print(f"Error: {message}", style="red", markup=False)
    if hint:
        console.print(f"Hint: {hint}", style="yellow", markup=False)


def warning(message: str) -> None:
    """A notice from the core (batchctl.notices): one `Warning: ...` line on stderr."""
    from batchctl.errors import redact

    sys.stderr.write(f"Warning: {redact(message)}\n")
    sys.stderr.flush()


def notice(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()
