"""The templating of Azure's component YAML (pure text, no workspace):

- in a command component's `command`: `${{inputs.x}}`, `${{outputs.y}}`, and `$[[ ... ]]` optional blocks,
  dropped when an input they name is unset;
- in a pipeline's `jobs.<step>.inputs/outputs`: `${{parent.inputs.x}}`, `${{parent.jobs.<step>.outputs.<o>}}`
  and `${{parent.outputs.y}}` (a whole value, or the `path:` of a mapping).

A `$[[ ... ]]` block that names no input (`$[[inputs.x]]` without the `${{ }}`, as one of Azure's examples
writes) is kept as text, brackets removed: it names nothing that could be unset."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
INPUT_RE = re.compile(r"\$\{\{\s*inputs\.(" + _NAME + r")\s*\}\}")
OUTPUT_RE = re.compile(r"\$\{\{\s*outputs\.(" + _NAME + r")\s*\}\}")
ANY_EXPR_RE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
BLOCK_RE = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
_PARENT_INPUT = re.compile(r"^parent\.inputs\.(" + _NAME + r")$")
_PARENT_OUTPUT = re.compile(r"^parent\.outputs\.(" + _NAME + r")$")
_PARENT_STEP_OUTPUT = re.compile(r"^parent\.jobs\.(" + _NAME + r")\.outputs\.(" + _NAME + r")$")
_WHOLE = re.compile(r"^\s*\$\{\{(.*?)\}\}\s*$", re.DOTALL)


_DROPPED = "\x00"


class BindingError(ValueError):
    """A template or binding that cannot be read; the caller names the file and field."""


@dataclass(frozen=True)
class CommandRefs:
    """What a command template names."""

    inputs: frozenset[str]  # every input named anywhere
    outputs: frozenset[str]
    required_inputs: frozenset[str]  # inputs named outside every $[[ ]] block


def command_refs(command: str) -> CommandRefs:
    """The inputs and outputs a command names; an expression other than inputs.x / outputs.y is an error."""
    for match in ANY_EXPR_RE.finditer(command):
        body = match.group(1).strip()
        if not (re.fullmatch(r"inputs\." + _NAME, body) or re.fullmatch(r"outputs\." + _NAME, body)):
            raise BindingError(
                f"'${{{{{body}}}}}' is not a reference a command can hold (use ${{{{inputs.<name>}}}} or "
                "${{outputs.<name>}})"
            )
    if "$[[" in BLOCK_RE.sub("", command):
        raise BindingError("a '$[[' block is not closed with ']]'")
    outside = BLOCK_RE.sub("", command)
    return CommandRefs(
        inputs=frozenset(INPUT_RE.findall(command)),
        outputs=frozenset(OUTPUT_RE.findall(command)),
        required_inputs=frozenset(INPUT_RE.findall(outside)),
    )


def render(command: str, values: Mapping[str, str | None], outputs: Mapping[str, str]) -> str:
    """`command` with its references replaced. `values`: input name -> its text, None when unset; a
    `$[[ ... ]]` block naming an unset input is dropped; an unset input outside a block, or an input or
    output missing from the mappings, is a BindingError naming it."""

    def block(match: re.Match[str]) -> str:
        body = match.group(1)
        if any(values.get(name) is None for name in INPUT_RE.findall(body)):
            return _DROPPED
        return body

    # a dropped block takes the whitespace around it along, leaving one separator between its neighbours
    # (a newline if the whitespace held one), so `a $[[--x ${{inputs.x}}]] b` renders `a b`; the
    # substituted values are never touched
    text = BLOCK_RE.sub(block, command)
    run = r"\s*\x00(?:\s*\x00)*\s*"
    text = re.sub(f"^{run}|{run}$", "", text)
    text = re.sub(run, lambda m: "\n" if "\n" in m.group(0) else " ", text)

    def one_input(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise BindingError(f"inputs.{name}: not an input of this component")
        value = values[name]
        if value is None:
            raise BindingError(f"inputs.{name}: is unset, and the command uses it outside a $[[ ]] block")
        return value

    def one_output(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in outputs:
            raise BindingError(f"outputs.{name}: not an output of this component")
        return outputs[name]

    text = INPUT_RE.sub(one_input, text)
    return OUTPUT_RE.sub(one_output, text)


@dataclass(frozen=True)
class ParentRef:
    """A `${{parent...}}` binding: kind is "input", "output" or "step_output"."""

    kind: str
    name: str  # the parent input / parent output / the step's output name
    step: str | None = None


def parse_parent_ref(value: object) -> ParentRef | None:
    """The binding a whole value holds, None for a value that holds none (a literal); a value mixing text and
    `${{ }}`, or an expression of another form, is a BindingError."""
    if not isinstance(value, str) or "${{" not in value:
        return None
    whole = _WHOLE.match(value)
    if whole is None or "${{" in whole.group(1):
        raise BindingError(f"'{value}': a binding must be the whole value, such as ${{{{parent.inputs.<name>}}}}")
    body = whole.group(1).strip()
    if m := _PARENT_INPUT.match(body):
        return ParentRef("input", m.group(1))
    if m := _PARENT_OUTPUT.match(body):
        return ParentRef("output", m.group(1))
    if m := _PARENT_STEP_OUTPUT.match(body):
        return ParentRef("step_output", m.group(2), m.group(1))
    raise BindingError(
        f"'{value}': not a binding batchctl knows (${{{{parent.inputs.<x>}}}}, "
        "${{parent.jobs.<step>.outputs.<o>}} or ${{parent.outputs.<y>}})"
    )


def literal_text(value: object) -> str:
    """How a literal reaches a command line: booleans as Azure writes them (True/False)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)
