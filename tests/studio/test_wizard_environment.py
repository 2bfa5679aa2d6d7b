"""The wizard's custom-model step picks an environment (a registered one, or a conda file confined like the
wizard's other local paths), and the Create job form picks the environment manager. In process: the app
`batchctl serve` builds, a real session, CSRF, escaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from studio_helpers import ExampleWorkspace, InProcessStudio, check_page, csrf_of

from batchctl import api

SCORE = "def init():\n    pass\n\n\ndef run(mini_batch):\n    return [str(len(mini_batch))]\n"
CONDA = "name: probe\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - pyyaml>=5\n"


@pytest.fixture
def custom(example: ExampleWorkspace) -> Path:
    """A custom model and its code inside the default datastore's folder (a path the server may use)."""
    store = Path(api.get_datastore(example.ws, "workspaceblobstore")["path"])
    folder = store / "wizard"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "w.txt").write_text("w")
    (folder / "code").mkdir()
    (folder / "code" / "score.py").write_text(SCORE)
    (folder / "conda.yml").write_text(CONDA)
    api.create_endpoint(example.ws, name="heart")
    return folder


def post(client: Any, folder: Path, action: str = "create", csrf: str | None = None, **fields: str) -> Any:
    data = {
        "csrf": csrf if csrf is not None else csrf_of(client.get("/studio/create?endpoint=heart").text),
        "action": action, "fixed_endpoint": "heart", "endpoint_mode": "existing", "existing_endpoint": "heart",
        "deployment_name": "custom", "model_kind": "custom", "model_path": str(folder / "model"),
        "code_path": str(folder / "code"), "scoring_script": "score.py", **fields,
    }  # fmt: skip
    return client.post("/studio/create", data=data)


def deployments(example: ExampleWorkspace) -> list[str]:
    return [d["name"] for d in api.list_deployments(example.ws, "heart")]


def test_the_custom_model_step_offers_the_registered_environments_and_creates_with_one(
    studio: InProcessStudio, example: ExampleWorkspace, custom: Path
) -> None:
    api.create_environment(example.ws, name="probe-env", image="python:3.11", conda_file=str(custom / "conda.yml"))
    with studio.session_client() as client:
        page = client.get("/studio/create?endpoint=heart").text
        assert '<option value="azureml:probe-env:1" >probe-env:1</option>' in page
        review = post(client, custom, "review", env_kind="registered", environment="azureml:probe-env:1")
        assert review.status_code == 200 and "environment: azureml:probe-env:1" in review.text
        made = post(client, custom, env_kind="registered", environment="azureml:probe-env:1")
        assert made.status_code == 303, made.text[:500]
    assert api.get_deployment(example.ws, "custom", "heart")["environment"] == "azureml:probe-env:1"


def test_a_conda_file_becomes_the_deployments_inline_environment(
    studio: InProcessStudio, example: ExampleWorkspace, custom: Path
) -> None:
    with studio.session_client() as client:
        review = post(client, custom, "review", env_kind="conda", conda_file=str(custom / "conda.yml"))
        assert review.status_code == 200 and f"conda_file: {custom / 'conda.yml'}" in review.text
        made = post(client, custom, env_kind="conda", conda_file=str(custom / "conda.yml"))
        assert made.status_code == 303, made.text[:500]
    env = api.get_deployment(example.ws, "custom", "heart")["environment"]
    assert env["conda_file"] == str(custom / "conda.yml") and env["image"].startswith("mcr.microsoft.com/azureml/")


def test_the_conda_file_is_confined_like_the_wizards_other_paths(
    studio: InProcessStudio, example: ExampleWorkspace, custom: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside" / "conda.yml"
    outside.parent.mkdir()
    outside.write_text(CONDA)
    (custom / "bad.yml").write_text("dependencies: 3\n")
    refused = {
        str(outside): "is not under a path this server may use",
        str(custom / "missing.yml"): "does not exist or is not a file",
        str(custom / "bad.yml"): "conda_file: dependencies must be a list",
        "conda.yml": "give the absolute path of a conda file on the server",
        "azureml:probe-env:1": "give the absolute path of a conda file on the server",
        "https://example.com/conda.yml": "give the absolute path of a conda file on the server",
    }
    with studio.session_client() as client:
        for value, message in refused.items():
            answer = post(client, custom, env_kind="conda", conda_file=value)
            assert answer.status_code == 400, (value, answer.text[:300])
            assert 'id="e-conda_file"' in answer.text and message in answer.text, value
        # a file outside the allowed roots is not read: whether it exists is not told
        assert "does not exist" not in post(client, custom, env_kind="conda", conda_file=str(outside) + "x").text
        empty = post(client, custom, env_kind="registered", environment="")
        assert empty.status_code == 400 and "choose a registered environment" in empty.text
        tampered = post(client, custom, env_kind="pip", environment="")
        assert (
            tampered.status_code == 400
            and "env_kind: &#39;pip&#39; is not one of none, registered, conda" in tampered.text
        )
    assert deployments(example) == []


def test_the_new_fields_are_escaped_and_need_the_csrf_token_and_a_session(
    studio: InProcessStudio, example: ExampleWorkspace, custom: Path
) -> None:
    script = "/<script>alert(1)</script>/conda.yml"
    with studio.session_client() as client:
        echoed = post(client, custom, env_kind="conda", conda_file=script)
        assert echoed.status_code == 400
        assert "<script>alert(1)" not in echoed.text and "&lt;script&gt;alert(1)" in echoed.text
        for csrf in ("", "forged"):
            forged = post(client, custom, csrf=csrf, env_kind="conda", conda_file=str(custom / "conda.yml"))
            assert forged.status_code == 403 and "CSRF" in forged.text
    with studio.client() as anon:
        data = {"csrf": "x", "action": "create", "model_kind": "custom", "env_kind": "conda",
                "conda_file": str(custom / "conda.yml")}  # fmt: skip
        assert anon.post("/studio/create", data=data).status_code == 401
    assert deployments(example) == []


def test_the_create_job_form_sends_the_environment_manager(
    studio: InProcessStudio, example: ExampleWorkspace, custom: Path
) -> None:
    with studio.session_client() as client:
        assert post(client, custom, env_kind="conda", conda_file=str(custom / "conda.yml")).status_code == 303
        form = client.get("/studio/endpoints/heart/jobs/new").text
        assert '<select id="f-env_manager" name="env_manager"' in form

        def create(manager: str) -> Any:
            data = {"csrf": csrf_of(form), "deployment": "custom", "input_kind": "data",
                    "data_asset": "heart-unlabeled", "env_manager": manager}  # fmt: skip
            return client.post("/studio/endpoints/heart/jobs/new", data=data)

        wrong = create("conda<b>")
        assert wrong.status_code == 400 and 'id="e-env_manager"' in wrong.text
        assert "&#39;conda&lt;b&gt;&#39; is not one of auto, local, uv" in wrong.text
        assert api.list_jobs(example.ws) == []
        made = create("local")
        assert made.status_code == 303, made.text[:500]
    job = api.list_jobs(example.ws)[0]
    assert job["environment"]["manager"] == "local" and job["environment"]["requirements"] == ["pyyaml>=5"]


@pytest.mark.slow
def test_in_the_browser_the_environment_choice_shows_only_its_own_field(
    page: Any, server: Any, example: ExampleWorkspace, custom: Path
) -> None:
    api.create_environment(example.ws, name="probe-env", image="python:3.11", conda_file=str(custom / "conda.yml"))
    page.goto(server.login_url)
    page.goto(f"{server.url}/studio/create?endpoint=heart")
    page.get_by_label("Custom model with a scoring script").check()
    page.get_by_label("Model folder (custom model)").fill(str(custom / "model"))
    page.get_by_label("Code folder", exact=True).fill(str(custom / "code"))
    page.get_by_label("Scoring script path (inside the code folder)").fill("score.py")
    page.get_by_label("Deployment name").fill("custom")
    conda, registered = page.locator("#f-conda_file"), page.locator("#f-environment")
    assert not conda.is_visible() and not registered.is_visible()  # None is the default
    page.locator("#f-env_kind-registered").check()
    assert registered.is_visible() and not conda.is_visible()
    assert registered.locator("option").all_inner_texts() == ["Choose an environment", "probe-env:1"]
    page.locator("#f-env_kind-conda").check()
    assert conda.is_visible() and not registered.is_visible()
    conda.fill(str(custom / "conda.yml"))
    check_page(page, "wizard-environment")
    page.get_by_role("button", name="Review").click()
    assert f"conda_file: {custom / 'conda.yml'}" in page.locator("#deployment-yaml").inner_text()
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"{server.url}/studio/endpoints/heart")
    assert api.get_deployment(example.ws, "custom", "heart")["environment"]["conda_file"] == str(custom / "conda.yml")
