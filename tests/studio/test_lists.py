"""The Studio's lists and choices in Debian's chromium against one real `batchctl serve` (module-scoped: one
server and one workspace for the whole file): `show --web`'s one-time login link (issue 28 item 17), lists
newest first (20), every model version and the wizard's mismatch at Review (21), radio choices that show only
the chosen option's fields with JavaScript off (22), the progress bar of a Failed job and paths that wrap at
their separators (23), and the Jobs and Data pages (24).

The workspace: the example's model `heart-classifier` (versions 1 and 2), a registered `weights` model that is
not an MLflow model, the data asset `heart-unlabeled` (versions 1 and 2), endpoints `heart` and `other`, and
three jobs made here before the server starts, oldest first: a Completed one on `other`, a Failed one on
`heart` with no item succeeded (its CSV files lack the model's columns; the first failure stops it), and one on
`heart` canceled while Queued."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from studio_helpers import ExampleWorkspace, StudioServer, check_page, heart_folder

from batchctl import api

pytestmark = pytest.mark.slow
EVIL = '<img src=x onerror="window.__pwned = 1">'
JOB_SECONDS = 300


class Site:
    def __init__(self, root: Path, model: Path) -> None:
        example = ExampleWorkspace(root / "ws", model)
        self.root, self.ws = example.root, example.ws
        ws = self.ws
        retrained = shutil.copytree(model, root / "model-v2")  # other files: a new version, not the same one
        (retrained / "notes.txt").write_text("version 2\n")
        assert api.create_model(ws, name="heart-classifier", type="mlflow_model", path=str(retrained))["version"] == "2"
        weights = root / "weights"
        weights.mkdir()
        (weights / "weights.txt").write_text("w=1\n")
        api.create_model(ws, name="weights", type="custom_model", path=str(weights))
        api.create_data(
            ws, name="heart-unlabeled", type="uri_folder", path=str(heart_folder(root / "heart-v2", files=2)),
            description=EVIL,
        )  # fmt: skip
        for endpoint in ("heart", "other"):
            api.create_endpoint(ws, name=endpoint)
            spec = root / f"{endpoint}.yml"
            spec.write_text(
                json.dumps(
                    {"name": "blue", "endpoint_name": endpoint, "model": "azureml:heart-classifier:1",
                     "settings": {"mini_batch_size": 1, "retry_settings": {"max_retries": 0}}}
                )
            )  # fmt: skip
            api.create_deployment(ws, str(spec))
        # a folder whose files lack the model's columns: every item scored fails
        bad = root / "bad"
        bad.mkdir()
        for i in range(2):
            (bad / f"bad-{i}.csv").write_text("foo,bar\n1,2\n")
        self.completed = self.run(endpoint="other", input="azureml:heart-unlabeled:1")
        self.failed = self.run(endpoint="heart", input=str(bad), overrides=api.RunOverrides(error_threshold=0))
        self.canceled = api.submit_job(ws, api.JobRequest(endpoint="heart", input="azureml:heart-unlabeled:2"))["name"]
        assert api.cancel_job(ws, self.canceled)["status"] == "Canceled"
        assert api.get_job(ws, self.completed)["status"] == "Completed"
        failed = api.get_job(ws, self.failed)
        assert failed["status"] == "Failed" and failed["counts"]["items_succeeded"] == 0, failed["counts"]
        assert failed["counts"]["items_failed"] > 0, failed["counts"]

    def run(self, **options: Any) -> str:
        name = api.submit_job(self.ws, api.JobRequest(**options))["name"]
        api.run_job(self.ws, name)
        time.sleep(0.01)  # distinct creation times
        return name


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, heart_model: Path) -> Site:
    return Site(tmp_path_factory.mktemp("studio-lists"), heart_model)


@pytest.fixture(scope="module")
def served(site: Site) -> Iterator[StudioServer]:
    started = StudioServer(site)  # type: ignore[arg-type]  # it needs .root only
    yield started
    started.kill()


@pytest.fixture
def signed_in(browser: Any, site: Site, served: StudioServer) -> Iterator[Any]:
    """A tab signed in with a fresh one-time link."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto(fresh_login(served, site, "/studio/endpoints"))
    yield tab
    context.close()


def fresh_login(served: StudioServer, site: Site, page: str) -> str:
    """A one-time login link to `page`, asked for as `show --web` does (a token minted from the key)."""
    from batchctl.server.auth import load_key, mint

    token = mint(load_key(site.ws, create=False), 60)["accessToken"]
    response = httpx.post(
        f"{served.url}/studio/login-url", json={"page": page}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()["url"]


# ------------------------------------------------------------------------------------ 17: show --web


def test_show_web_gives_a_one_time_link_that_lands_on_the_page(browser: Any, site: Site, served: StudioServer) -> None:
    env = {**os.environ, "BATCHCTL_HOME": str(site.root), "BROWSER": "", "DISPLAY": "", "WAYLAND_DISPLAY": ""}
    shown = subprocess.run(
        [sys.executable, "-m", "batchctl", "job", "show", "-n", site.failed, "--web", "--query", "status", "-o", "tsv"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert (shown.returncode, shown.stdout) == (0, "Failed\n"), shown.stderr
    prefix = "No browser could be started; open "
    assert shown.stderr.startswith(prefix) and shown.stderr.count("\n") == 1, shown.stderr
    link = shown.stderr[len(prefix) :].strip()
    assert link.startswith(f"{served.url}/studio/login?token="), link

    first = browser.new_context()
    tab = first.new_page()
    tab.goto(link)
    assert tab.url == f"{served.url}/studio/jobs/{site.failed}"  # signed in, on the page asked for
    assert tab.locator("#job-status").inner_text() == "Failed"
    first.close()

    again = browser.new_context()  # another browser given the same link: refused
    tab = again.new_page()
    tab.goto(link)
    assert tab.url == f"{served.url}/studio/login-needed?expired=1"
    assert "used already or has expired" in tab.get_by_role("alert").inner_text()
    assert not [c for c in again.cookies() if c["name"] == "batchctl_studio"]
    again.close()

    # the server lands a link only on its own Studio pages, and gives one only to the key's holder
    from batchctl.server.auth import load_key, mint

    token = mint(load_key(site.ws, create=False), 60)["accessToken"]
    for page in ("https://example.com/", "//example.com/studio/", "/studio/login?token=x", "/docs"):
        refused = httpx.post(
            f"{served.url}/studio/login-url", json={"page": page}, headers={"Authorization": f"Bearer {token}"}
        )
        assert refused.status_code == 400, (page, refused.text)
    assert httpx.post(f"{served.url}/studio/login-url", json={"page": "/studio/jobs"}).status_code == 401


# ------------------------------------------------------------------------------------ 22 and 21: no JavaScript


def visible(tab: Any, field: str) -> bool:
    return tab.locator(f"#f-{field}").is_visible()


def test_choices_show_only_their_fields_and_submit_without_javascript(
    browser: Any, site: Site, served: StudioServer
) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto(fresh_login(served, site, "/studio/endpoints/heart/jobs/new"))
    assert tab.url.endswith("/studio/endpoints/heart/jobs/new")

    # Create job: only the chosen input's fields show; the arrow keys choose, Tab reaches the fields
    assert visible(tab, "data_asset") and visible(tab, "data_version")
    assert not visible(tab, "datastore") and not visible(tab, "datastore_path")
    assert not visible(tab, "public_path")
    tab.get_by_label("Registered dataset").focus()
    tab.keyboard.press("ArrowRight")
    assert visible(tab, "datastore")
    assert tab.get_by_role("radio", name="Datastore").is_checked()
    assert not visible(tab, "data_asset") and not visible(tab, "public_path")
    check_page(tab, "create-job-datastore")
    tab.keyboard.press("Tab")
    assert tab.evaluate("() => document.activeElement.id") == "f-datastore"
    tab.keyboard.press("ArrowDown")  # "workspaceblobstore", the only datastore
    tab.keyboard.press("Tab")
    assert tab.evaluate("() => document.activeElement.id") == "f-datastore_path"
    store = Path(api.get_datastore(site.ws, "workspaceblobstore")["path"])
    heart_folder(store / "incoming", files=2)
    tab.keyboard.type("incoming")
    tab.get_by_role("button", name="Create", exact=True).click()  # a plain form POST: no script runs
    assert "/studio/jobs/" in tab.url, tab.locator("main").inner_text()
    name = tab.url.rsplit("/", 1)[1]
    job = api.get_job(site.ws, name)
    assert job["inputs"]["input_data"]["path"] == "azureml://datastores/workspaceblobstore/paths/incoming"
    deadline = time.monotonic() + JOB_SECONDS  # let it end: the other tests read a quiet workspace
    while api.get_job(site.ws, name)["status"] not in ("Completed", "Failed", "Canceled"):
        assert time.monotonic() < deadline, f"job {name} did not end"
        time.sleep(0.5)
    assert api.get_job(site.ws, name)["status"] == "Completed"

    # the wizard: every version of every model; Custom and Existing show their own fields only
    tab.goto(f"{served.url}/studio/create")
    options = tab.get_by_label("Registered model").locator("option").all_inner_texts()
    assert "heart-classifier:1 (mlflow_model)" in options and "heart-classifier:2 (mlflow_model)" in options
    assert "weights:1 (custom_model)" in options
    assert visible(tab, "endpoint_name") and not visible(tab, "existing_endpoint")
    assert not visible(tab, "code_path") and not visible(tab, "scoring_script")
    tab.get_by_label("Custom model with a scoring script").check()
    assert visible(tab, "code_path") and not visible(tab, "model")
    tab.get_by_label("Registered MLflow model").check()
    tab.get_by_label("Existing", exact=True).check()
    assert visible(tab, "existing_endpoint") and not visible(tab, "endpoint_name")

    # a model that is not an MLflow model, with no scoring script: said at Review, beside the model
    tab.get_by_label("Registered model").select_option("azureml:weights:1")
    tab.get_by_label("Existing endpoint").select_option("heart")
    tab.get_by_label("Deployment name").fill("old-version")
    tab.get_by_role("button", name="Review").click()
    assert tab.get_by_role("heading", name="Review").count() == 0
    assert "is not an MLflow model" in tab.locator("#e-model").inner_text()
    assert visible(tab, "model")  # the message is beside a field that shows
    # an older version of the MLflow model: Review, then Create
    tab.get_by_label("Registered model").select_option("azureml:heart-classifier:1")
    tab.get_by_role("button", name="Review").click()
    assert "model: azureml:heart-classifier:1" in tab.locator("#deployment-yaml").inner_text()
    tab.get_by_role("button", name="Create", exact=True).click()
    assert tab.url.endswith("/studio/endpoints/heart")
    assert api.get_deployment(site.ws, "old-version", "heart")["model"] == "azureml:heart-classifier:1"
    assert [d["name"] for d in api.list_deployments(site.ws, "heart")] == ["blue", "old-version"]
    context.close()


# ------------------------------------------------------------------------------------ 24 and 20: lists


def test_jobs_page_lists_every_job_newest_first_and_filters(signed_in: Any, site: Site, served: StudioServer) -> None:
    tab = signed_in
    newest_first = api.list_jobs(site.ws)
    assert [j["name"] for j in newest_first[-3:]] == [site.canceled, site.failed, site.completed]
    names = [j["name"] for j in newest_first]

    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    assert tab.url == f"{served.url}/studio/jobs"
    assert tab.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)") == names
    created = tab.locator("#jobs tbody tr td:nth-child(5)").all_inner_texts()
    assert created == sorted(created, reverse=True)
    check_page(tab, "jobs")

    tab.get_by_label("Status").select_option("Failed")
    tab.get_by_role("button", name="Filter").click()
    assert tab.url == f"{served.url}/studio/jobs?status=Failed&endpoint="
    failed = [j["name"] for j in newest_first if j["status"] == "Failed"]
    assert tab.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)") == failed
    assert site.failed in failed
    tab.get_by_label("Status").select_option("")
    tab.get_by_label("Endpoint").select_option("other")
    tab.get_by_role("button", name="Filter").click()
    assert tab.locator("#jobs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)") == [site.completed]
    tab.get_by_label("Status").select_option("Failed")
    tab.get_by_role("button", name="Filter").click()
    assert tab.locator("#no-jobs").inner_text() == "No job matches these filters."

    # the endpoint's Runs tab (and its live refresh) and the Endpoints page's Last job: the newest
    heart = [j["name"] for j in newest_first if j["endpoint_name"] == "heart"]
    assert heart[-2:] == [site.canceled, site.failed]  # and any the Create job test ran, newer
    tab.goto(f"{served.url}/studio/endpoints/heart?tab=runs")
    rows = tab.locator("#runs tbody tr")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == heart
    tab.evaluate("() => { for (const tr of document.querySelectorAll('#runs tbody tr')) tr.dataset.stale = '1'; }")
    tab.wait_for_function("() => !document.querySelector('#runs tbody tr[data-stale]')")  # redrawn from runs.json
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == heart
    tab.get_by_role("link", name="Endpoints").first.click()
    last = tab.locator("tr", has=tab.get_by_role("link", name="heart", exact=True)).locator("td:nth-child(5) a")
    assert last.inner_text() == heart[0]


def test_data_page_lists_every_version_and_the_datastores(signed_in: Any, site: Site, served: StudioServer) -> None:
    tab = signed_in
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Data").click()
    assert tab.url == f"{served.url}/studio/data"
    assets = tab.locator("#data-assets tbody tr").evaluate_all("rows => rows.map(r => r.dataset.asset)")
    assert assets == ["heart-unlabeled:2", "heart-unlabeled:1"]
    row = tab.locator('#data-assets tr[data-asset="heart-unlabeled:2"]')
    assert row.locator("td").nth(4).inner_text() == EVIL  # shown as text...
    assert tab.evaluate("() => window.__pwned") is None  # ...never run
    stores = tab.locator("#datastores tbody tr").evaluate_all("rows => rows.map(r => r.dataset.datastore)")
    assert stores == ["workspaceblobstore"]
    path = api.get_datastore(site.ws, "workspaceblobstore")["path"]
    assert tab.locator('#datastores tr[data-datastore="workspaceblobstore"] td.path').inner_text() == path
    check_page(tab, "data")
    # the Models page too lists every version, each with its own Deploy
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    for version in ("1", "2"):
        deploy = tab.get_by_role("link", name=f"Deploy heart-classifier version {version} to batch endpoint")
        assert deploy.get_attribute("href") == f"/studio/create?model=azureml%3Aheart-classifier%3A{version}"


# ------------------------------------------------------------------------------------ 23: the job page

BAR = """() => { const p = document.getElementById('job-progress').getBoundingClientRect().width;
  const w = s => document.querySelector('#job-progress .bar.' + s).getBoundingClientRect().width / p;
  const c = s => getComputedStyle(document.querySelector('#job-progress .bar.' + s)).backgroundColor;
  return {ok: w('ok'), failed: w('failed'), okColor: c('ok'), failedColor: c('failed')}; }"""

# where each line of an element's text starts: the character before each break
BREAKS = """el => { const text = el.firstChild ? el.textContent : ''; const walker = document.createTreeWalker(el,
  NodeFilter.SHOW_TEXT); const chars = []; let node;
  while ((node = walker.nextNode())) for (let i = 0; i < node.length; i++) chars.push([node, i]);
  const range = document.createRange(); let top = null; const before = [];
  chars.forEach(([n, i], k) => { range.setStart(n, i); range.setEnd(n, i + 1);
    const r = range.getClientRects()[0]; if (!r) return;
    if (top !== null && r.top > top + 2) before.push(k ? chars[k - 1][0].data[chars[k - 1][1]] : '');
    top = r.top; });
  return {text, before}; }"""


def test_a_failed_job_shows_a_red_bar_and_paths_wrap_at_separators(
    signed_in: Any, site: Site, served: StudioServer
) -> None:
    tab = signed_in
    tab.goto(f"{served.url}/studio/jobs/{site.failed}")
    bar = tab.evaluate(BAR)
    assert bar["ok"] == 0 and bar["failed"] > 0, bar  # every item failed: red, nothing blue
    assert bar["failedColor"] == "rgb(164, 38, 44)", bar
    counts = api.get_job(site.ws, site.failed)["counts"]
    assert (
        tab.locator("#job-progress-text").inner_text().startswith(f"0 items succeeded, {counts['items_failed']} failed")
    )
    tab.goto(f"{served.url}/studio/jobs/{site.completed}")
    bar = tab.evaluate(BAR)
    assert bar["ok"] > 0.99 and bar["failed"] == 0 and bar["okColor"] == "rgb(16, 124, 16)", bar

    # a narrow window: the long paths wrap, and only after a separator
    tab.set_viewport_size({"width": 640, "height": 800})
    wrapped = 0
    for cell in tab.locator("#io dd.path").all():
        found = cell.evaluate(BREAKS)
        assert all(char in "/\\?&" for char in found["before"]), found
        wrapped += len(found["before"])
    assert wrapped > 0  # the results file's path is longer than the column: it did wrap
    check_page(tab)


def test_the_bar_splits_the_ended_share_by_items() -> None:
    from batchctl.server.studio.pages import _progress

    def bar(status: str, **counts: int) -> tuple[int, int, int, str]:
        shown = _progress({"status": status, "counts": counts})
        return shown["done"], shown["ok"], shown["failed"], shown["text"]

    running = {"mini_batches": 4, "mini_batches_completed": 1, "mini_batches_failed": 1}
    assert bar("Running", **running, items_succeeded=1, items_failed=1) == (
        50, 25, 25, "1 item succeeded, 1 failed; 2 of 4 mini-batches ended",
    )  # fmt: skip
    # every mini-batch ended in failure: a full bar, all of it red
    assert bar("Failed", mini_batches=2, mini_batches_failed=2, items_failed=2)[:3] == (100, 0, 100)
    # failed before any mini-batch (an init() failure): an empty bar, nothing green
    assert bar("Failed")[:3] == (0, 0, 0)
    assert bar("Completed", mini_batches=3, mini_batches_completed=3, items_succeeded=2, items_failed=1)[:3] == (
        100, 67, 33,
    )  # fmt: skip
