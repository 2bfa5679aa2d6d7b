from __future__ import annotations

import json

import pytest
import yaml

NOT_FOUND = "Error: endpoint 'nope' not found\nHint: create it with `batchctl endpoint create --name nope`\n"


def test_create_by_name(cli, out, registry):
    record = out(cli("endpoint", "create", "-n", "My-EP"))
    assert record["name"] == "my-ep"
    assert record["auth_mode"] == "aad_token"
    assert record["defaults"] == {"deployment_name": None}
    assert record["provisioning_state"] == "Succeeded"
    # the registry holds the record; the URIs are where `batchctl serve` listens, added when it is read
    server_keys = ("scoring_uri", "openapi_uri", "server")
    assert registry.data()["endpoints"]["my-ep"] == {k: v for k, v in record.items() if k not in server_keys}
    assert record["scoring_uri"] == "http://127.0.0.1:8765/endpoints/my-ep/jobs"


def test_create_from_file_with_overrides(cli, out, write_spec):
    spec = write_spec(
        "endpoint.yml",
        {
            "$schema": "https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json",
            "name": "heart-classifier",
            "description": "from file",
        },
    )
    record = out(cli("endpoint", "create", "-f", str(spec), "-n", "other-ep", "--set", "tags.team=ml"))
    assert (record["name"], record["description"], record["tags"]) == (
        "other-ep",
        "from file",
        {"team": "ml"},
    )


def test_create_twice_is_a_no_op(cli, out, registry, write_spec):
    spec = write_spec("endpoint.yml", {"name": "heart-classifier", "description": "d"})
    first = out(cli("endpoint", "create", "-f", str(spec)))
    before = registry.bytes()
    second = out(cli("endpoint", "create", "-f", str(spec)))
    assert second == first
    assert registry.bytes() == before


def test_create_again_with_changes_updates_and_keeps_created_at(cli, out, write_spec):
    first = out(cli("endpoint", "create", "-n", "ep1"))
    second = out(cli("endpoint", "create", "-n", "ep1", "--description", "changed"))
    assert second["description"] == "changed"
    assert second["created_at"] == first["created_at"]


def test_show_list_and_formats(cli, out):
    out(cli("endpoint", "create", "-n", "ep-b"))
    out(cli("endpoint", "create", "-n", "ep-a", "--description", "first"))
    assert out(cli("endpoint", "show", "-n", "EP-A"))["description"] == "first"
    assert [r["name"] for r in out(cli("endpoint", "list"))] == ["ep-a", "ep-b"]
    assert yaml.safe_load(cli("endpoint", "show", "-n", "ep-a", "-o", "yaml").stdout)["name"] == "ep-a"
    assert cli("endpoint", "list", "--query", "[].name", "-o", "tsv").stdout == "ep-a\nep-b\n"
    table = cli("endpoint", "list", "-o", "table").stdout
    assert table.splitlines()[1].split() == [
        "┃",
        "name",
        "┃",
        "default_deployment",
        "┃",
        "provisioning_state",
        "┃",
        "description",
        "┃",
        "updated_at",
        "┃",
    ]
    assert "│ ep-a │" in table.replace("  ", " ").replace("  ", " ")
    assert json.loads(cli("endpoint", "list", "-o", "json", "--query", "[0].description").stdout) == "first"


def test_empty_list(cli):
    result = cli("endpoint", "list")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "[]\n", "")


def test_query_default_deployment_tsv_prints_a_bare_value(cli, out, deployment_file):
    out(cli("endpoint", "create", "-n", "heart-classifier"))
    out(cli("deployment", "create", "-f", str(deployment_file("classifier-mlflow", "heart-classifier"))))
    result = cli("endpoint", "show", "-n", "heart-classifier", "--query", "defaults.deployment_name", "-o", "tsv")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "classifier-mlflow\n", "")


def test_query_null_tsv_prints_nothing(cli, out):
    out(cli("endpoint", "create", "-n", "ep1"))
    result = cli("endpoint", "show", "-n", "ep1", "--query", "defaults.deployment_name", "-o", "tsv")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_invalid_query(cli, out):
    out(cli("endpoint", "create", "-n", "ep1"))
    result = cli("endpoint", "show", "-n", "ep1", "--query", "[[")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: --query: invalid JMESPath expression '[[': ")
    assert result.stderr.count("\n") == 1


def test_update_set(cli, out, registry):
    out(cli("endpoint", "create", "-n", "ep1"))
    record = out(cli("endpoint", "update", "-n", "ep1", "--set", "description=new", "--set", "tags.k=v"))
    assert (record["description"], record["tags"]) == ("new", {"k": "v"})
    assert registry.data()["endpoints"]["ep1"]["description"] == "new"


def test_update_from_file(cli, out, write_spec):
    out(cli("endpoint", "create", "-n", "ep1"))
    spec = write_spec("ep.yml", {"name": "ep1", "description": "via file"})
    assert out(cli("endpoint", "update", "-f", str(spec)))["description"] == "via file"


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (
            ["--set", "auth_mode=key"],
            3,
            "Error: --set: 'auth_mode' cannot be updated; updatable: description, tags, properties, defaults\n",
        ),
        (
            ["--set", "defaults.deployment_name=ghost"],
            4,
            "Error: deployment 'ghost' not found in endpoint 'ep1'; it has no deployments\n",
        ),
        (["--set", "tags=[1]"], 3, "Error: endpoint update: tags: Input should be a valid dictionary\n"),
    ],
)
def test_update_rejections_leave_the_registry(cli, out, registry, args, code, stderr):
    out(cli("endpoint", "create", "-n", "ep1"))
    before = registry.bytes()
    result = cli("endpoint", "update", "-n", "ep1", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", stderr)
    assert registry.bytes() == before


def test_show_missing(cli):
    result = cli("endpoint", "show", "-n", "nope")
    assert (result.exit_code, result.stdout, result.stderr) == (4, "", NOT_FOUND)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        (
            "ab",
            "The name for an endpoint must be at least 3 and at most 32 characters long (inclusive of both limits).",
        ),
        (
            "../../etc",
            "The name for an endpoint must start with an upper- or lowercase letter and only consist of "
            "'-'s and alphanumeric characters.",
        ),
    ],
)
def test_bad_names_everywhere(cli, out, registry, name, rule):
    out(cli("endpoint", "create", "-n", "ep1"))
    before = registry.bytes()
    create = cli("endpoint", "create", "-n", name)
    assert (create.exit_code, create.stderr) == (3, f"Error: endpoint name: {rule}\n")
    for verb in ("show", "delete"):
        result = cli("endpoint", verb, "-n", name, "--yes") if verb == "delete" else cli("endpoint", verb, "-n", name)
        assert (result.exit_code, result.stderr) == (3, f"Error: endpoint name: {rule}\n")
    assert registry.bytes() == before


def test_bad_spec_file_leaves_no_registry(cli, registry, write_spec):
    spec = write_spec("endpoint.yml", {"name": "ep1", "traffic": {"blue": 100}})
    result = cli("endpoint", "create", "-f", str(spec))
    assert (result.exit_code, result.stdout, result.stderr) == (
        3,
        "",
        "Error: endpoint.yml: traffic: unknown field (not part of the schema)\n",
    )
    assert registry.bytes() is None


def test_create_needs_a_file_or_a_name(cli):
    result = cli("endpoint", "create")
    assert (result.exit_code, result.stderr) == (3, "Error: endpoint create needs --file or --name\n")


def test_delete_needs_confirmation(cli, out, registry):
    out(cli("endpoint", "create", "-n", "ep1"))
    before = registry.bytes()
    refused = cli("endpoint", "delete", "-n", "ep1", input="n\n")
    assert (refused.exit_code, refused.stderr) == (
        5,
        "Error: Delete endpoint 'ep1' and all its deployments? Not confirmed.\n"
        "Hint: pass --yes to confirm without a prompt\n",
    )
    assert registry.bytes() == before
    confirmed = cli("endpoint", "delete", "-n", "ep1", input="y\n")
    assert out(confirmed) == {"name": "ep1", "deleted": True, "deployments_deleted": []}
    assert registry.data()["endpoints"] == {}


def test_delete_removes_its_deployments_only(cli, out, registry, deployment_file):
    for ep in ("ep-one", "ep-two"):
        out(cli("endpoint", "create", "-n", ep))
    out(cli("deployment", "create", "-f", str(deployment_file("blue", "ep-one"))))
    out(cli("deployment", "create", "-f", str(deployment_file("green", "ep-one"))))
    out(cli("deployment", "create", "-f", str(deployment_file("blue", "ep-two"))))
    result = out(cli("endpoint", "delete", "-n", "ep-one", "--yes"))
    assert result == {"name": "ep-one", "deleted": True, "deployments_deleted": ["blue", "green"]}
    assert sorted(registry.data()["deployments"]) == ["ep-two/blue"]
    assert list(registry.data()["endpoints"]) == ["ep-two"]


def test_delete_missing(cli):
    """Deleting a missing endpoint does not hint "create it" (issue 28, item 11)."""
    result = cli("endpoint", "delete", "-n", "nope", "--yes")
    assert (result.exit_code, result.stderr) == (
        4,
        "Error: endpoint 'nope' not found; nothing was deleted\nHint: `batchctl endpoint list` shows the endpoints\n",
    )


def test_delete_missing_deployment(cli, out, deployment_file):
    out(cli("endpoint", "create", "-n", "ep-one"))
    out(cli("deployment", "create", "-f", str(deployment_file("blue", "ep-one"))))
    result = cli("deployment", "delete", "-n", "green", "-e", "ep-one", "--yes")
    assert (result.exit_code, result.stderr) == (
        4,
        "Error: deployment 'green' not found in endpoint 'ep-one'; existing: blue; nothing was deleted\n"
        "Hint: `batchctl deployment list -e ep-one` shows what exists\n",
    )
    gone = cli("deployment", "delete", "-n", "green", "-e", "ghost", "--yes")
    assert (gone.exit_code, gone.stderr) == (
        4,
        "Error: endpoint 'ghost' not found; nothing was deleted\nHint: `batchctl endpoint list` shows what exists\n",
    )
