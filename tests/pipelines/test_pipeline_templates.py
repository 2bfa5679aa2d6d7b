"""specs/bindings.py, golden: what a command renders to for every template form, and which bindings a
value holds. Pure text, no workspace."""

from __future__ import annotations

import pytest

from batchctl.specs.bindings import BindingError, ParentRef, command_refs, literal_text, parse_parent_ref, render

PREP = (
    "python prep.py\n"
    "--data_path ${{inputs.data}}\n"
    "$[[--transformations_path ${{inputs.transformations}}]]\n"
    "$[[--categorical_encoding ${{inputs.categorical_encoding}}]]\n"
    "--prepared_data_path ${{outputs.prepared_data}}"
)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"data": "/in", "transformations": "/t", "categorical_encoding": "onehot"},
            "python prep.py\n--data_path /in\n--transformations_path /t\n--categorical_encoding onehot\n"
            "--prepared_data_path /out",
        ),
        (
            {"data": "/in", "transformations": None, "categorical_encoding": "ordinal"},
            "python prep.py\n--data_path /in\n--categorical_encoding ordinal\n--prepared_data_path /out",
        ),
        (
            {"data": "/in", "transformations": None, "categorical_encoding": None},
            "python prep.py\n--data_path /in\n--prepared_data_path /out",
        ),
    ],
    ids=["every-optional-set", "one-unset", "both-unset"],
)
def test_optional_blocks_are_kept_when_set_and_dropped_when_unset(values, expected):
    assert render(PREP, values, {"prepared_data": "/out"}) == expected


def test_a_folded_command_renders_with_single_spaces_where_blocks_were_dropped():
    folded = "python a.py --x ${{inputs.x}} $[[--y ${{inputs.y}}]] $[[--z ${{inputs.z}}]] --o ${{outputs.o}}"
    assert render(folded, {"x": "1", "y": None, "z": None}, {"o": "/o"}) == "python a.py --x 1 --o /o"
    assert render("$[[--y ${{inputs.y}}]] run", {"y": None}, {}) == "run"
    assert render("run $[[--y ${{inputs.y}}]]", {"y": None}, {}) == "run"


def test_substituted_values_are_never_reformatted():
    assert render("echo ${{inputs.s}}", {"s": "two  spaces\tand tab"}, {}) == "echo two  spaces\tand tab"


def test_a_block_naming_two_inputs_is_dropped_when_either_is_unset():
    template = "go $[[--pair ${{inputs.a}}:${{inputs.b}}]]"
    assert render(template, {"a": "1", "b": "2"}, {}) == "go --pair 1:2"
    assert render(template, {"a": "1", "b": None}, {}) == "go"


def test_a_block_naming_no_input_is_kept_as_text():
    """Azure's training example writes `$[[inputs.registered_model_name]]` (no ${{ }}): nothing in it can be
    unset, so its text stays, brackets removed."""
    assert render("--name $[[inputs.n]]", {"n": None}, {}) == "--name inputs.n"


def test_an_unset_input_outside_a_block_is_an_error_naming_it():
    with pytest.raises(BindingError, match=r"^inputs\.data: is unset, and the command uses it outside"):
        render(PREP, {"data": None, "transformations": None, "categorical_encoding": None}, {"prepared_data": "/o"})


def test_an_output_the_mapping_lacks_is_an_error_naming_it():
    with pytest.raises(BindingError, match=r"^outputs\.prepared_data: not an output"):
        render(PREP, {"data": "/in", "transformations": None, "categorical_encoding": None}, {})


def test_whitespace_inside_a_reference_is_allowed_as_azure_allows_it():
    assert render("a ${{ inputs.x }} ${{outputs.o }}", {"x": "1"}, {"o": "/o"}) == "a 1 /o"


def test_command_refs_names_the_inputs_outside_every_block():
    refs = command_refs(PREP)
    assert refs.inputs == {"data", "transformations", "categorical_encoding"}
    assert refs.outputs == {"prepared_data"}
    assert refs.required_inputs == {"data"}


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("echo ${{parent.inputs.x}}", r"is not a reference a command can hold"),
        ("echo ${{inputs.x.y}}", r"is not a reference a command can hold"),
        ("echo $[[--x ${{inputs.x}}", r"not closed"),
    ],
)
def test_command_refs_refuses_what_a_command_cannot_hold(command, message):
    with pytest.raises(BindingError, match=message):
        command_refs(command)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${{parent.inputs.input_data}}", ParentRef("input", "input_data")),
        (" ${{ parent.inputs.score_mode }} ", ParentRef("input", "score_mode")),
        (
            "${{parent.jobs.preprocess_job.outputs.prepared_data}}",
            ParentRef("step_output", "prepared_data", "preprocess_job"),
        ),
        ("${{parent.outputs.scores}}", ParentRef("output", "scores")),
        ("append", None),
        ("data/unlabeled", None),
        (0.3, None),
        (False, None),
    ],
)
def test_parse_parent_ref_reads_every_binding_form_and_leaves_literals(value, expected):
    assert parse_parent_ref(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("prefix-${{parent.inputs.x}}", "must be the whole value"),
        ("${{parent.inputs.a}}${{parent.inputs.b}}", "must be the whole value"),
        ("${{parent.jobs.a.inputs.b}}", "not a binding batchctl knows"),
        ("${{inputs.x}}", "not a binding batchctl knows"),
    ],
)
def test_parse_parent_ref_refuses_mixed_text_and_unknown_forms(value, message):
    with pytest.raises(BindingError, match=message):
        parse_parent_ref(value)


@pytest.mark.parametrize(("value", "text"), [(True, "True"), (False, "False"), (3, "3"), (0.3, "0.3"), ("x", "x")])
def test_literals_reach_the_command_line_as_azure_writes_them(value, text):
    assert literal_text(value) == text
