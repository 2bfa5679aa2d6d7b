from __future__ import annotations

import pytest

ENDPOINT_LENGTH = (
    "The name for an endpoint must be at least 3 and at most 32 characters long (inclusive of both limits)."
)
ENDPOINT_CHARS = (
    "The name for an endpoint must start with an upper- or lowercase letter and only consist of "
    "'-'s and alphanumeric characters."
)


def test_defaults(load):
    spec = load("endpoint", {"name": "ep1"})
    assert spec.model_dump() == {
        "name": "ep1",
        "description": None,
        "tags": {},
        "properties": {},
        "auth_mode": "aad_token",
        "defaults": {"deployment_name": None},
    }


def test_schema_key_accepted_and_name_lower_cased(load):
    spec = load(
        "endpoint",
        {"$schema": "https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json", "name": "My-EP"},
    )
    assert spec.name == "my-ep"
    assert "$schema" not in spec.model_dump()


def test_tags_values_become_strings(load):
    assert load("endpoint", {"name": "ep1", "tags": {"n": 1, "f": 1.5}}).tags == {"n": "1", "f": "1.5"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ab", ENDPOINT_LENGTH),
        ("e" * 33, ENDPOINT_LENGTH),
        ("1ep", ENDPOINT_CHARS),
        ("ep-", ENDPOINT_CHARS),
        ("ep_1", ENDPOINT_CHARS),
        ("ep/../x", ENDPOINT_CHARS),
    ],
)
def test_bad_names(reject, name, message):
    assert reject("endpoint", {"name": name}) == f"spec.yml: name: {message}"


def test_name_boundaries_accepted(load):
    assert load("endpoint", {"name": "abc"}).name == "abc"
    assert load("endpoint", {"name": "a" * 32}).name == "a" * 32


def test_unknown_key(reject):
    assert reject("endpoint", {"name": "ep1", "traffic": {"a": 1}}) == (
        "spec.yml: traffic: unknown field (not part of the schema)"
    )


def test_auth_mode_only_aad_token(reject):
    assert reject("endpoint", {"name": "ep1", "auth_mode": "key"}) == (
        "spec.yml: auth_mode: Input should be 'aad_token'"
    )


def test_missing_name(reject):
    assert reject("endpoint", {"description": "x"}) == "spec.yml: name: field required"


def test_bad_default_deployment_name(reject):
    assert reject("endpoint", {"name": "ep1", "defaults": {"deployment_name": "_x"}}) == (
        "spec.yml: defaults.deployment_name: name '_x' is invalid: use 1-255 letters, digits, '-' or '_', "
        "starting with a letter or digit"
    )


def test_set_overrides(load):
    spec = load("endpoint", {"name": "ep1"}, ["description=hello", "tags.team=ml", "tags.n=3"])
    assert (spec.description, spec.tags) == ("hello", {"team": "ml", "n": "3"})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("nope", "--set: 'nope' must look like key.path=value"),
        ("=1", "--set: '=1' must look like key.path=value"),
        ("a..b=1", "--set: 'a..b' is not a valid field path"),
        ("name.x=1", "--set: 'name.x': 'name' is not a mapping"),
    ],
)
def test_bad_set(reject, item, message):
    assert reject("endpoint", {"name": "ep1"}, [item]) == message


def test_set_unknown_field_is_rejected_like_the_file(reject):
    assert reject("endpoint", {"name": "ep1"}, ["color=blue"]) == (
        "spec.yml: color: unknown field (not part of the schema)"
    )
