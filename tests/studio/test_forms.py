"""Form errors in the browser: the CLI's own message next to its field, and an existing output refused on
the Create job form before anything is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from studio_helpers import ExampleWorkspace, StudioServer, check_page

from batchctl import api
from batchctl.errors import SpecError

pytestmark = pytest.mark.slow


def test_a_validation_error_shows_next_to_its_field_with_the_clis_message(
    page: Any, server: StudioServer, example: ExampleWorkspace, tmp_path: Path
) -> None:
    page.goto(server.login_url)
    page.goto(f"{server.url}/studio/create?model=azureml:heart-classifier:1")
    page.get_by_label("Endpoint name (new)").fill("heart")
    page.get_by_label("Deployment name").fill("blue")
    page.get_by_label("Mini-batch size").fill("0")
    page.get_by_role("button", name="Review").click()
    field = page.locator(".field", has=page.get_by_label("Mini-batch size"))
    shown = field.locator(".field-error").inner_text()
    assert page.get_by_label("Mini-batch size").get_attribute("aria-invalid") == "true"
    check_page(page, "wizard-error")
    # the same YAML through the CLI's path gives the same line
    spec = tmp_path / "deployment.yml"
    spec.write_text(
        "name: blue\nendpoint_name: heart\nmodel: azureml:heart-classifier:1\nsettings:\n  mini_batch_size: 0\n"
    )
    api.create_endpoint(example.ws, name="heart")
    with pytest.raises(SpecError) as cli:
        api.create_deployment(example.ws, str(spec))
    assert shown == cli.value.message == "deployment.yml: settings.mini_batch_size: Input should be greater than 0"
    assert api.list_deployments(example.ws, "heart") == []


def test_an_existing_output_is_refused_on_the_form_before_queueing(
    page: Any, server: StudioServer, example: ExampleWorkspace, tmp_path: Path
) -> None:
    api.create_endpoint(example.ws, name="heart")
    spec = tmp_path / "d.yml"
    spec.write_text("name: blue\nendpoint_name: heart\nmodel: azureml:heart-classifier:1\n")
    api.create_deployment(example.ws, str(spec))
    store = Path(api.get_datastore(example.ws, "workspaceblobstore")["path"])
    existing = store / "runs" / "first" / "predictions.csv"
    existing.parent.mkdir(parents=True)
    existing.write_text("0,1,a.csv\n")
    page.goto(server.login_url)
    page.goto(f"{server.url}/studio/endpoints/heart/jobs/new")
    page.get_by_label("Dataset", exact=True).select_option("heart-unlabeled")
    page.get_by_label("Output datastore").select_option("workspaceblobstore")
    page.get_by_label("Output path").fill("runs/first")
    page.get_by_role("button", name="Create", exact=True).click()
    error = page.locator(".field", has=page.get_by_label("Output path")).locator(".field-error").inner_text()
    assert "already exists" in error and "predictions.csv" in error
    assert page.get_by_label("Output path").input_value() == "runs/first"  # the form keeps what was typed
    check_page(page, "create-job-error")
    assert api.list_jobs(example.ws) == []  # nothing queued
    assert existing.read_text() == "0,1,a.csv\n"
