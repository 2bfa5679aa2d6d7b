"""The article, replayed in a real browser (Debian's chromium through Playwright) against a real
`batchctl serve`: each step asserts what the page shows and the registry state through `batchctl.api`."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from studio_helpers import ExampleWorkspace, StudioServer, check_page

from batchctl import api

pytestmark = pytest.mark.slow
EP = "heart-classifier"
EVIL = "Heart classifier <script>window.__pwned = 1</script>"


def _median_get_ms(client: Any, path: str, runs: int = 5) -> float:
    client.get(path)  # warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
    return statistics.median(times)


def test_the_article_end_to_end(page: Any, server: StudioServer, example: ExampleWorkspace, tmp_path: Path) -> None:
    ws = example.ws
    # sign in with the one-time URL `batchctl serve` printed
    page.goto(server.login_url)
    assert page.url.endswith("/studio/endpoints")
    page.get_by_role("heading", name="Endpoints").wait_for(state="visible")
    assert page.get_by_role("heading", name="Endpoints").is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "batchctl_studio")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # 1. Endpoints > Batch endpoints > + Create: the wizard, MLflow model, new endpoint
    page.get_by_role("link", name="+ Create").click()
    check_page(page, "wizard")
    page.get_by_label("Registered model").select_option("azureml:heart-classifier:1")
    page.get_by_label("New", exact=True).check()
    page.get_by_label("Endpoint name (new)").fill(EP)
    page.get_by_label("Endpoint description (new)").fill(EVIL)
    page.get_by_label("Deployment name").fill("classifier-mlflow")
    page.get_by_label("Max concurrency per instance").fill("2")
    page.get_by_label("Mini-batch size").fill("2")
    page.get_by_label("Timeout (seconds)").fill("300")
    page.get_by_role("button", name="Review").click()
    check_page(page, "review")
    deployment_yaml = page.locator("#deployment-yaml").inner_text()
    assert "name: classifier-mlflow" in deployment_yaml and "endpoint_name: heart-classifier" in deployment_yaml
    assert "model: azureml:heart-classifier:1" in deployment_yaml and "mini_batch_size: 2" in deployment_yaml
    assert "timeout: 300" in deployment_yaml
    assert f"name: {EP}" in page.locator("#endpoint-yaml").inner_text()
    assert api.list_endpoints(ws) == []  # Review creates nothing
    page.get_by_role("button", name="Create", exact=True).click()

    # 2. the endpoint's Details
    assert page.url.endswith(f"/studio/endpoints/{EP}")
    check_page(page, "endpoint-details")
    assert page.locator("#default-deployment").inner_text() == "classifier-mlflow"
    assert page.locator("#description").inner_text() == EVIL  # shown as text...
    assert page.evaluate("() => window.__pwned") is None  # ...never run
    assert "aad_token" in page.locator("#details").inner_text()
    assert f"/endpoints/{EP}/jobs" in page.locator("#details").inner_text()  # the scoring URI on this server
    endpoint = api.get_endpoint(ws, EP)
    assert endpoint["defaults"]["deployment_name"] == "classifier-mlflow" and endpoint["description"] == EVIL
    dep = api.get_deployment(ws, "classifier-mlflow", EP)
    assert dep["settings"]["mini_batch_size"] == 2 and dep["settings"]["max_concurrency_per_instance"] == 2
    assert dep["settings"]["retry_settings"]["timeout"] == 300 and dep["model"] == "azureml:heart-classifier:1"

    # 3. + Create job: overridden settings, a registered dataset
    page.get_by_role("link", name="+ Create job").click()
    assert page.get_by_label("Deployment", exact=True).input_value() == "classifier-mlflow"  # the default
    page.get_by_text("Override deployment settings").click()
    page.get_by_label("Mini-batch size").fill("1")
    page.get_by_label("Error threshold").fill("5")
    page.get_by_label("Retries (max_retries)").fill("1")
    page.get_by_label("Output file name").fill("scores.csv")
    page.get_by_label("Registered dataset").check()
    page.get_by_label("Dataset", exact=True).select_option("heart-unlabeled")
    page.get_by_label("Dataset version").select_option("1")
    check_page(page, "create-job")
    page.get_by_role("button", name="Create", exact=True).click()
    assert "/studio/jobs/" in page.url
    name = page.url.rsplit("/", 1)[1]
    job = api.get_job(ws, name)
    assert job["settings"]["mini_batch_size"] == 1 and job["settings"]["error_threshold"] == 5
    assert job["settings"]["retry_settings"]["max_retries"] == 1
    assert job["settings"]["output_file_name"] == "scores.csv"
    assert job["inputs"]["input_data"]["path"].startswith("azureml:heart-unlabeled:1")

    # 4. the Runs tab updates itself until the job is Completed (no reload: the marker survives)
    page.goto(f"{server.url}/studio/endpoints/{EP}?tab=runs")
    page.evaluate("() => { window.__same_page = true; }")
    row = page.locator(f'#runs tr[data-job="{name}"]')
    row.get_by_text("Completed").wait_for(timeout=180_000)
    assert page.evaluate("() => window.__same_page") is True
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == name and cells[1] == "classifier-mlflow" and cells[5] == "3" and cells[6] == "0"
    check_page(page, "runs")
    assert api.get_job(ws, name)["status"] == "Completed"

    # 5. the job page: counts, settings, logs, Download (that job's own results)
    row.get_by_role("link", name=name).click()
    assert page.locator("#job-status").inner_text() == "Completed"
    assert page.locator("#job-progress").get_attribute("aria-valuenow") == "100"
    assert page.locator('[data-count="items_succeeded"]').inner_text() == "3"
    assert page.locator("#s-mini_batch_size").inner_text() == "1"
    page.get_by_role("link", name="master_role.txt").click()
    assert "sys/master_role.txt" in page.get_by_role("heading", level=3).inner_text()
    assert page.locator("#log-text").inner_text().strip()
    check_page(page, "job")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download").click()
    saved = tmp_path / "downloaded.csv"
    info.value.save_as(saved)
    assert info.value.suggested_filename == "scores.csv"
    assert saved.read_bytes() == Path(api.get_job(ws, name)["output_file"]).read_bytes()
    assert len(saved.read_text().splitlines()) == 24

    # every page loads in < 200 ms: httpx on loopback with this session's cookie, warm server, median of 5
    import httpx

    with httpx.Client(base_url=server.url, cookies={"batchctl_studio": cookie["value"]}, timeout=30) as client:
        pages = [
            "/studio/endpoints", "/studio/models", f"/studio/endpoints/{EP}", f"/studio/endpoints/{EP}?tab=runs",
            f"/studio/endpoints/{EP}/deployments/classifier-mlflow", "/studio/create",
            f"/studio/endpoints/{EP}/jobs/new", f"/studio/jobs/{name}", "/studio/jobs", "/studio/data",
        ]  # fmt: skip
        timings = {path: _median_get_ms(client, path) for path in pages}
    print("page load medians (ms):", {k: round(v, 1) for k, v in timings.items()})
    assert max(timings.values()) < 200, timings

    # 6. Models > Deploy to batch endpoint > Existing: a second deployment
    page.get_by_role("link", name="Models").click()
    check_page(page, "models")
    page.get_by_role("link", name="Deploy heart-classifier version 1 to batch endpoint").click()
    assert page.get_by_label("Registered model").input_value() == "azureml:heart-classifier:1"
    page.get_by_label("Existing", exact=True).check()
    page.get_by_label("Existing endpoint").select_option(EP)
    page.get_by_label("Make it the default deployment").uncheck()
    page.get_by_label("Deployment name").fill("classifier-v2")
    page.get_by_label("Mini-batch size").fill("5")
    page.get_by_role("button", name="Review").click()
    assert page.locator("#endpoint-yaml").count() == 0  # an existing endpoint: only the deployment
    page.get_by_role("button", name="Create", exact=True).click()
    assert page.url.endswith(f"/studio/endpoints/{EP}")
    assert [d["name"] for d in api.list_deployments(ws, EP)] == ["classifier-mlflow", "classifier-v2"]
    assert api.get_endpoint(ws, EP)["defaults"]["deployment_name"] == "classifier-mlflow"
    page.locator("#deployment-classifier-v2").wait_for(state="visible")  # the URL changes before the page is drawn
    assert page.locator("#deployment-classifier-v2").is_visible()

    # 7. Update default deployment, with the keyboard only
    page.get_by_label("Default deployment", exact=True).focus()
    page.keyboard.press("ArrowDown")
    check_page(page, "update-default")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Update"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/studio/endpoints/{EP}")
    page.locator("#default-deployment").get_by_text("classifier-v2").wait_for()
    assert api.get_endpoint(ws, EP)["defaults"]["deployment_name"] == "classifier-v2"

    # 8. delete the old deployment, then the endpoint (the confirmation says its deployments go too)
    page.get_by_role("link", name="classifier-mlflow", exact=True).click()
    check_page(page, "deployment")
    page.get_by_role("button", name="Delete deployment").click()
    assert page.url.endswith(f"/studio/endpoints/{EP}")
    assert [d["name"] for d in api.list_deployments(ws, EP)] == ["classifier-v2"]
    page.get_by_role("link", name="Delete").click()
    warning = page.get_by_role("alert").inner_text()
    assert "also deletes all its deployments" in warning and "classifier-v2" in warning
    check_page(page, "delete-endpoint")
    page.get_by_role("button", name="Delete").click()
    assert page.url.endswith("/studio/endpoints")
    assert "No batch endpoint yet" in page.locator("main").inner_text()
    assert api.list_endpoints(ws) == []
    assert api.get_job(ws, name)["status"] == "Completed"  # its jobs stay
    page.goto(f"{server.url}/studio/endpoints")
    check_page(page, "endpoints")
