"""Secrets in deployment settings: `${env:NAME}` references, resolved when a job starts and never written
to a file, and the test for "this literal value looks like a secret" (the same patterns `errors.redact`
hides in every output). Pure: no I/O; the environment is passed in."""

from __future__ import annotations

import re
from collections.abc import Mapping

from batchctl.errors import BatchctlError, redact

REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_OPENING = "${env:"


def reference_problem(value: str) -> str | None:
    """Why `value` holds a malformed `${env:NAME}` reference, or None."""
    rest = REFERENCE.sub("", value)
    if _OPENING in rest:
        return (
            f"'{value}' has a malformed reference: write ${{env:NAME}} with NAME made of letters, digits "
            "and '_', not starting with a digit"
        )
    return None


def references(value: str) -> list[str]:
    """The environment variable names `value` refers to."""
    return REFERENCE.findall(value)


def looks_secret(value: str) -> bool:
    """A literal that holds an account key, a SAS signature or a connection string with a key."""
    return redact(value) != value


def referenced_values(variables: Mapping[str, str], environ: Mapping[str, str]) -> list[str]:
    """The values that `resolve` puts in for the references of `variables` (the ones set): what is masked."""
    return [environ[name] for value in variables.values() for name in references(value) if name in environ]


def resolve(
    variables: Mapping[str, str], environ: Mapping[str, str], what: str = "environment_variables"
) -> dict[str, str]:
    """`variables` with every `${env:NAME}` replaced by NAME's value in `environ`; a variable that is not
    set is an error naming it and the setting that refers to it."""
    out = {}
    for key, value in variables.items():
        for name in references(value):
            if name not in environ:
                raise BatchctlError(
                    f"{what}.{key} refers to ${{env:{name}}}, but {name} is not set in the job's environment",
                    f"export {name} before invoking the endpoint (the runner reads it when the job starts)",
                )
        out[key] = REFERENCE.sub(lambda m: environ[m.group(1)], value)
    return out
