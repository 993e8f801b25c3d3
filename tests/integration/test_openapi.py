"""The OpenAPI document: valid 3.1 (openapi-spec-validator), one typed
operation per exposed transition, and a client generated from it by
openapi-python-client that performs transitions against a live server."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
import typing as t
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from werkzeug.serving import make_server

from flask_statemgr.forms import form_schema


def document(app: t.Any) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], app.test_client().get("/_statemgr/openapi.json").get_json())


def test_document_is_valid_with_an_operation_per_transition(api: t.Any) -> None:
    from api_app import ProjectState

    doc = document(api)
    validate(doc)
    performs = {path: item["post"]["operationId"] for path, item in doc["paths"].items() if "post" in item}
    assert performs == {
        "/objects/project/{ident}/state/publish": "perform_project_state_publish",
        "/objects/project/{ident}/state/withdraw": "perform_project_state_withdraw",
        "/objects/project/{ident}/state/delete": "perform_project_state_delete",
        "/objects/project/{ident}/review/approve": "perform_project_review_approve",
        "/objects/session/{ident}/state/delete": "perform_session_state_delete",
    }
    withdraw = doc["paths"]["/objects/project/{ident}/state/withdraw"]["post"]
    body = withdraw["requestBody"]["content"]["application/json"]["schema"]
    form = form_schema(t.cast(t.Any, ProjectState.withdraw.form))
    assert body["required"] == form["required"] == ["reason"]
    assert body["properties"] == {**form["properties"], "confirm": body["properties"]["confirm"]}
    assert withdraw["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PerformResult"
    }
    assert [p["name"] for p in withdraw["parameters"]] == ["ident", "X-CSRFToken"]
    schema = doc["paths"]["/schema"]["get"]
    assert schema["responses"]["200"]["headers"]["ETag"]["schema"] == {"type": "string"}
    assert [p["name"] for p in schema["parameters"]] == ["If-None-Match"]


def test_csrf_header_is_required_when_csrf_protect_is_active(api: t.Any) -> None:
    from flask_wtf.csrf import CSRFProtect

    CSRFProtect(api)
    withdraw = document(api)["paths"]["/objects/project/{ident}/state/withdraw"]["post"]
    assert withdraw["parameters"][1] == {
        **withdraw["parameters"][1],
        "name": "X-CSRFToken",
        "in": "header",
        "required": True,
    }


def test_responses_match_their_schemas(api: t.Any) -> None:
    """The answers of each operation validate against the document's
    schemas (python-jsonschema, the dialect OpenAPI 3.1 uses)."""
    import jsonschema

    doc = document(api)

    def check(body: t.Any, name: str) -> None:
        jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        ).validate(body)

    client = api.test_client()
    alice = {"X-User": "alice"}
    check(client.get("/_statemgr/schema").get_json(), "StateModel")
    check(client.get("/_statemgr/objects/project/1", headers=alice).get_json(), "Object")
    done = client.post("/_statemgr/objects/project/1/state/publish", headers=alice, json={"note": "n"})
    check(done.get_json(), "PerformResult")
    check(client.get("/_statemgr/objects/project/1/history", headers=alice).get_json(), "History")
    check(client.get("/_statemgr/events?after=0", headers=alice).get_json(), "Events")
    refused = client.post("/_statemgr/objects/project/1/state/publish", headers=alice, json={})
    check(refused.get_json(), "Problem")


@pytest.fixture
def live(api: t.Any) -> t.Iterator[str]:
    """The test app served over HTTP on a free port."""
    server = make_server("127.0.0.1", 0, api, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/_statemgr"
    server.shutdown()
    thread.join()


def generate_client(doc: dict[str, t.Any], directory: Path, package: str) -> t.Any:
    """Generate a client package with openapi-python-client (no formatter
    run afterwards, and any warning about the document fails) and import
    it."""
    spec = directory / "openapi.json"
    spec.write_text(json.dumps(doc))
    config = directory / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(directory / package),
            "--config",
            str(config),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(directory))


def test_generated_client_performs_transitions_with_typed_bodies(
    api: t.Any, live: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    package = f"statemgr_client_{request.node.callspec.id.replace('-', '_')}"
    generate_client(document(api), tmp_path, package)
    client_module = importlib.import_module(f"{package}.client")
    models = importlib.import_module(f"{package}.models")
    publish = importlib.import_module(f"{package}.api.default.perform_project_state_publish")
    withdraw = importlib.import_module(f"{package}.api.default.perform_project_state_withdraw")
    get_object = importlib.import_module(f"{package}.api.default.get_object")
    delete = importlib.import_module(f"{package}.api.default.perform_project_state_delete")

    client = client_module.Client(base_url=live, headers={"X-User": "alice"}, raise_on_unexpected_status=True)
    with client:
        published = publish.sync(
            "1", client=client, body=models.PerformProjectStatePublishJsonBody(note="from a client")
        )
        assert isinstance(published, models.PerformResult)
        assert (published.result.source, published.result.target) == ("DRAFT", "PUBLISHED")
        assert published.result.record.payload.to_dict()["note"] == "from a client"

        # the form's requirements are the body's: reason is a required argument
        with pytest.raises(TypeError, match="reason"):
            models.PerformProjectStateWithdrawJsonBody()  # type: ignore[call-arg]
        short = withdraw.sync("1", client=client, body=models.PerformProjectStateWithdrawJsonBody(reason="short"))
        assert isinstance(short, models.Problem) and short.status == 422
        assert "reason" in short.errors.to_dict()

        done = withdraw.sync(
            "1", client=client, body=models.PerformProjectStateWithdrawJsonBody(reason="no longer current")
        )
        assert isinstance(done, models.PerformResult) and done.result.target == "WITHDRAWN"
        again = withdraw.sync(
            "1", client=client, body=models.PerformProjectStateWithdrawJsonBody(reason="no longer current")
        )
        assert isinstance(again, models.Problem) and again.status == 409
        assert [r.code for r in again.reasons] == ["state"]

        state = get_object.sync("project", "1", client=client)
        assert isinstance(state, models.Object)
        assert state.managers["state"].state == "WITHDRAWN"

        # form-encoded, as a page's form posts it; the cascade asks first
        asked = delete.sync("1", client=client, body=models.PerformProjectStateDeleteDataBody())
        assert isinstance(asked, models.Problem) and asked.status == 409
        assert asked.plan.to_dict() == {"Project": 1, "Session": 2}
        deleted = delete.sync("1", client=client, body=models.PerformProjectStateDeleteDataBody(confirm=True))
        assert isinstance(deleted, models.PerformResult)
        assert (deleted.result.target, deleted.result.steps) == ("DELETED", 3)
