"""Confinement of the paths a caller outside the workspace names, through every entry point of the server
(REST, the Studio's Create job form), and the request checks around it: the app of `batchctl serve` run
in this process (Starlette's TestClient, the app's own lifespan: its queue and warm pools), so each case
costs a request, not a server start.

The input kinds are enumerated from the code (the form's `forms.INPUT_KINDS`, the REST body's
`JobInputType` values), as the route-auth test enumerates routes: a kind added later is covered."""

from __future__ import annotations

import json
import re
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Workspace, body, heart_folder

from batchctl.server import rest
from batchctl.server.studio import forms

SECRET = "TOP-SECRET-ROW-CONTENT"


class InProcess:
    """The server's app for `ws` with `--allow-path ws.allowed`, a REST client and a Studio session."""

    def __init__(self, ws: Workspace, client: Any, state: Any) -> None:
        self.ws, self.client, self.state = ws, client, state
        from batchctl.server.auth import mint

        self.headers = {"Authorization": f"Bearer {mint(state.key, 600)['accessToken']}"}
        login = client.get(f"/studio/login?token={client.app.state.studio.issue_login()}", follow_redirects=False)
        assert login.status_code == 303, login.text

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=self.headers, **kwargs)

    def csrf(self, path: str = "/studio/endpoints/heart/jobs/new") -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text[:300]
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match
        return match.group(1)

    def create_job(self, **fields: str) -> Any:
        data = {"csrf": self.csrf(), "deployment": "script", **fields}
        return self.client.post("/studio/endpoints/heart/jobs/new", data=data, follow_redirects=False)

    def jobs(self) -> list[str]:
        folder = self.ws.root / "jobs"
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def app(workspace: Workspace) -> Iterator[InProcess]:
    import warnings

    with warnings.catch_warnings():  # starlette asks for `httpx2` instead of httpx; both do the same here
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from batchctl.server.app import create_app
    from batchctl.server.state import ServerSettings, build_state

    settings = ServerSettings(allow_paths=[str(workspace.allowed)], shutdown_timeout=5, idle_timeout=0)
    state = build_state(workspace.ws, settings, "http://testserver")
    with TestClient(create_app(state), base_url="http://testserver") as client:
        yield InProcess(workspace, client, state)


def _outside(tmp: Path) -> Path:
    """A real CSV outside every allowed root whose rows the caller must never see."""
    folder = tmp / "outside"
    folder.mkdir(exist_ok=True)
    secret = folder / "secret.csv"
    secret.write_text(f"age,chol,thal\n{SECRET},1,2\n")
    return secret


def test_every_input_kind_with_a_path_outside_the_roots_is_refused(app: InProcess) -> None:
    secret = _outside(app.ws.tmp)
    form_kinds = [*forms.INPUT_KINDS, "x", "", "PATH"]  # the form's own kinds and values it never sends
    rest_kinds = typing.get_args(rest.JobInput.model_fields["JobInputType"].annotation)
    assert "path" in form_kinds and "UriFile" in rest_kinds  # the enumeration reaches the kinds
    before = app.jobs()
    for kind in form_kinds:
        for input_type in ("uri_file", "uri_folder"):
            for target in (secret, secret.parent):
                response = app.create_job(
                    input_kind=kind,
                    input_type=input_type,
                    public_path=str(target),
                    data_asset=str(target),
                    datastore="workspaceblobstore",
                    datastore_path=str(target),
                )
                where = (kind, input_type, str(target), response.status_code)
                assert response.status_code in (400, 403, 404), where
                assert SECRET not in response.text, where
    # an output path outside the datastore, whatever the input
    escape = app.create_job(
        input_kind="path",
        public_path=str(heart_folder(app.ws.allowed / "in-ok", files=1)),
        output_datastore="workspaceblobstore",
        output_path=f"../../../{secret.parent.name}",
    )
    assert escape.status_code == 400, escape.text[:300]
    unknown = app.create_job(input_kind="x", public_path=str(secret))
    assert "input_kind: &#39;x&#39; is not one of data, datastore, path" in unknown.text
    for kind in rest_kinds:
        for target in (secret, secret.parent):
            response = app.rest("POST", "/endpoints/heart/jobs", json=body(str(target), kind=kind))
            assert SECRET not in response.text, kind
            if (
                kind.lower() == "literal"
            ):  # a value, not a location (pipeline deployments): refused before any path is read
                assert response.status_code == 400 and "Literal input needs Value" in response.text, response.text
                continue
            assert response.status_code == 403, (kind, response.text)
            assert response.json()["error"]["code"] == "Forbidden"
    assert app.jobs() == before  # nothing was queued


def test_a_sibling_that_shares_the_roots_name_is_outside_it(app: InProcess, tmp_path: Path) -> None:
    root = tmp_path / "x" / "allowed"
    evil = tmp_path / "x" / "allowed-evil"
    for folder in (root, evil):
        folder.mkdir(parents=True)
    roots = [str(root)]
    rest.check_path(str(root), roots, "input")
    rest.check_path(str(root / "a.csv"), roots, "input")
    for path in (str(evil), str(evil / "a.csv"), f"{root}-evil/a.csv", f"file://{evil}"):
        with pytest.raises(rest.ForbiddenPathError):
            rest.check_path(path, roots, "input")
    # end to end: the server allows ws.allowed; its sibling ws.allowed-evil holds a good input
    evil_data = heart_folder(Path(f"{app.ws.allowed}-evil") / "data", files=1)
    good_data = heart_folder(app.ws.allowed / "data-prefix", files=1)
    refused = app.rest("POST", "/endpoints/heart/jobs", json=body(str(evil_data)))
    assert refused.status_code == 403, refused.text
    page = app.create_job(input_kind="path", input_type="uri_folder", public_path=str(evil_data))
    assert page.status_code == 400 and "is not under a path this server may use" in page.text
    accepted = app.rest("POST", "/endpoints/heart/jobs", json=body(str(good_data), name="prefix-ok"))
    assert accepted.status_code == 200, accepted.text
    app.rest("POST", "/jobs/prefix-ok/cancel")
    assert app.jobs() == ["prefix-ok"]


LOUD = textwrap.dedent(
    """
    def init():
        pass

    def run(mini_batch):
        for path in mini_batch:
            raise ValueError("cannot parse rows: " + open(path).read())
    """
)


def test_error_messages_are_cut_on_pages_and_in_rest_bodies(app: InProcess) -> None:
    from server_helpers import wait_job

    code = app.ws.tmp / "loud-code"
    code.mkdir()
    (code / "score.py").write_text(LOUD)
    app.ws.deploy(
        {
            "name": "loud",
            "model": {"path": str(app.ws.tmp / "weights"), "type": "custom_model", "name": "weights"},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        },
        {"error_threshold": 0, "retry_settings": {"max_retries": 0, "timeout": 60}},
    )
    data = app.ws.allowed / "loud"
    data.mkdir()
    dump = "".join(f"row {i}: {SECRET}-{i}\n" for i in range(400))  # ~14,000 characters of "data"
    (data / "a.txt").write_text("START-OF-DUMP\n" + dump + "END-OF-DUMP\n")
    started = app.client.post(
        "/endpoints/heart/jobs",
        json=body(str(data), name="loud-job-2"),
        headers={**app.headers, "azureml-model-deployment": "loud"},
    )
    assert started.status_code == 200, started.text

    class Client:
        def get(self, path: str) -> Any:
            return app.rest("GET", path)

    final = wait_job(Client(), "loud-job-2", timeout=240)
    error = final["properties"]["error"]
    assert final["properties"]["status"] == "Failed", error
    texts = [v for v in error.values() if isinstance(v, str)]
    assert texts and all(len(t) <= rest.MAX_ERROR_CHARS + 60 for t in texts), error
    assert any("more characters in the job's logs" in t for t in texts), error
    # the head and the tail are kept (a cause is often at the end: MLflow's schema errors), the middle cut
    cut = next(t for t in texts if "more characters" in t)
    assert "START-OF-DUMP" in cut and "END-OF-DUMP" in cut[-40:] and "row 200:" not in cut, cut
    page = app.client.get("/studio/jobs/loud-job-2")
    assert page.status_code == 200
    assert "row 200:" not in page.text and page.text.count(SECRET) < 60
    assert "END-OF-DUMP" in page.text  # the tail of the failed items' example
    status = app.client.get("/studio/jobs/loud-job-2/status.json").json()
    assert "row 200:" not in str(status)
    # the whole text stays in the job's own files
    failed = (app.ws.root / "jobs" / "loud-job-2" / "failed_items.jsonl").read_text()
    logs = "".join(p.read_text() for p in (app.ws.root / "jobs" / "loud-job-2" / "logs").rglob("*.txt"))
    assert "END-OF-DUMP" in failed + logs


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"miniBatchSize": True}, "miniBatchSize"),
        ({"errorThreshold": False}, "errorThreshold"),
        ({"retrySettings": {"maxRetries": 99999999999999999999}}, "maxRetries"),
        ({"retrySettings": {"maxRetries": True}}, "maxRetries"),
        ({"miniBatchSize": 2**31}, "miniBatchSize"),
        ({"compute": {"instanceCount": 10**6}}, "instanceCount"),
        ({"outputFileName": "invoice\u202ecsv.exe"}, "format character (U+202E)"),
        ({"outputFileName": "a\u200bb.csv"}, "format character (U+200B)"),
    ],
)
def test_booleans_huge_integers_and_format_characters_are_400(
    app: InProcess, extra: dict[str, Any], fragment: str
) -> None:
    data = heart_folder(app.ws.allowed / "data-400", files=1)
    response = app.rest("POST", "/endpoints/heart/jobs", json=body(str(data), **extra))
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]
    assert app.jobs() == []


def test_a_bad_job_name_in_a_studio_url_is_400_or_404(app: InProcess) -> None:
    for path in ("/studio/jobs/%2e%2e/download", "/studio/jobs/a%20b/download", "/studio/jobs/no-such/download"):
        response = app.client.get(path)
        assert response.status_code in (400, 404), (path, response.status_code)


LEAKY = textwrap.dedent(
    """
    import os

    def init():
        print("token " + os.environ["TOKEN"], flush=True)

    def run(mini_batch):
        raise ValueError("rejected by the API with token " + os.environ["TOKEN"])
    """
)


def test_a_server_jobs_secret_is_masked_on_pages_and_in_rest_bodies(app: InProcess, monkeypatch) -> None:
    from server_helpers import wait_job

    secret = "server-side-token-77aa"
    monkeypatch.setenv("SERVER_TOKEN", secret)  # the server's environment: REST jobs read it
    code = app.ws.tmp / "leaky-code"
    code.mkdir()
    (code / "score.py").write_text(LEAKY)
    app.ws.deploy(
        {
            "name": "leaky",
            "model": {"path": str(app.ws.tmp / "weights"), "type": "custom_model", "name": "weights"},
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
        },
        {"environment_variables": {"TOKEN": "${env:SERVER_TOKEN}"}, "retry_settings": {"max_retries": 0}},
    )
    data = app.ws.commands("leaky-in", {"a.txt": "x"})
    started = app.client.post(
        "/endpoints/heart/jobs",
        json=body(str(data), name="leaky-job"),
        headers={**app.headers, "azureml-model-deployment": "leaky"},
    )
    assert started.status_code == 200, started.text

    class Client:
        def get(self, path: str) -> Any:
            return app.rest("GET", path)

    final = wait_job(Client(), "leaky-job", timeout=240)
    assert final["properties"]["status"] == "Failed"
    assert "with token ***" in json.dumps(final)
    texts = [
        json.dumps(final),
        app.client.get("/studio/jobs/leaky-job").text,
        app.client.get("/studio/jobs/leaky-job/status.json").text,
        app.client.get("/studio/jobs/leaky-job/logs/user/stdout/worker-0.txt?raw=1").text,
    ]
    assert "token ***" in texts[-1]
    for text in texts:
        assert secret not in text
    assert [p for p in app.ws.root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == []


def test_a_token_with_the_right_key_and_another_audience_is_401(app: InProcess) -> None:
    import jwt

    from batchctl.server.auth import mint

    claims = jwt.decode(mint(app.state.key, 600)["accessToken"], options={"verify_signature": False})
    good = jwt.encode(claims, app.state.key.secret, algorithm="HS256")
    assert app.client.get("/health", headers={"Authorization": f"Bearer {good}"}).status_code == 200
    for audience in ("batchctl:another-workspace", "batchctl", claims["aud"] + "x"):
        token = jwt.encode({**claims, "aud": audience}, app.state.key.secret, algorithm="HS256")
        for method, path in (("GET", "/health"), ("POST", "/studio/login-url"), ("GET", "/jobs/x")):
            response = app.client.request(method, path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (audience, path, response.text)
            assert response.json()["error"]["message"] == "the token was issued for another workspace"


def test_the_wizards_local_model_and_code_folders_are_confined(app: InProcess) -> None:
    from batchctl import api

    secret = _outside(app.ws.tmp)
    (secret.parent / "score.py").write_text(LOUD)
    inside = app.ws.allowed / "wizard"
    inside.mkdir()
    (inside / "w.txt").write_text("1\n")
    (inside / "score.py").write_text(LOUD)

    def create(name: str, model_path: Path, code_path: Path) -> Any:
        data = {
            "csrf": app.csrf("/studio/create?endpoint=heart"), "action": "create", "endpoint_mode": "existing",
            "existing_endpoint": "heart", "fixed_endpoint": "heart", "deployment_name": name, "model_kind": "custom",
            "model_path": str(model_path), "code_path": str(code_path), "scoring_script": "score.py",
        }  # fmt: skip
        return app.client.post("/studio/create", data=data, follow_redirects=False)

    before = sorted(d["name"] for d in api.list_deployments(app.ws.ws, "heart"))
    models = len(api.list_models(app.ws.ws))
    for model_path, code_path in ((secret.parent, inside), (inside, secret.parent)):
        refused = create("stolen", model_path, code_path)
        assert refused.status_code == 400, refused.text[:300]
        assert "is not under a path this server may use" in refused.text
    assert sorted(d["name"] for d in api.list_deployments(app.ws.ws, "heart")) == before
    assert len(api.list_models(app.ws.ws)) == models  # nothing was copied into the workspace
    made = create("inside", inside, inside)
    assert made.status_code == 303, made.text[:500]
    assert "inside" in [d["name"] for d in api.list_deployments(app.ws.ws, "heart")]
