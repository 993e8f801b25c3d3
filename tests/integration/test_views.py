from __future__ import annotations

import typing as t

from api_app import Project, db
from flask import Flask

from flask_statemgr import StateMgr


def guarded_app(api: Flask) -> Flask:
    """Add guarded views to the test app (before its first request)."""
    statemgr: StateMgr = api.statemgr  # type: ignore[attr-defined]

    @api.route("/projects/<int:id>/publish", methods=["GET", "POST"])
    @statemgr.guard(Project.state.publish)
    def publish_project(obj: Project, form: t.Any) -> str:
        """Publish a project."""
        return f"{obj.id}:{type(form).__name__}:{form.note.data or ''}"

    @api.route("/async/<int:pid>/withdraw")
    @statemgr.guard(Project.state.withdraw, lookup="pid")
    async def withdraw_project(obj: Project, form: t.Any) -> str:
        return f"async {obj.id}"

    return api


def test_guard_keeps_name_and_docstring(api: Flask) -> None:
    guarded_app(api)
    view = api.view_functions["publish_project"]
    assert view.__name__ == "publish_project"
    assert view.__doc__ == "Publish a project."


def test_guard_statuses(api: Flask) -> None:
    client = guarded_app(api).test_client()
    assert client.get("/projects/99/publish", headers={"X-User": "alice"}).status_code == 404
    assert client.get("/projects/1/publish").status_code == 401
    assert client.get("/projects/1/publish", headers={"X-User": "carol"}).status_code == 403
    assert client.get("/projects/2/publish", headers={"X-User": "bob"}).status_code == 409
    ok = client.get("/projects/1/publish", headers={"X-User": "alice"})
    assert ok.status_code == 200
    assert ok.get_data(as_text=True) == "1:PublishForm:"
    posted = client.post("/projects/1/publish", headers={"X-User": "alice"}, data={"note": "hey"})
    assert posted.get_data(as_text=True) == "1:PublishForm:hey"


def test_guard_on_async_view(api: Flask) -> None:
    client = guarded_app(api).test_client()
    assert client.get("/async/1/withdraw", headers={"X-User": "alice"}).status_code == 409
    with api.app_context():
        project = db.session.get(Project, 1)
        project._state = 2
        db.session.commit()
    response = client.get("/async/1/withdraw", headers={"X-User": "alice"})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "async 1"


def test_default_transition_page(api: Flask) -> None:
    client = api.test_client()
    url = "/_statemgr/pages/project/1/state/publish?next=/done"
    page = client.get(url, headers={"X-User": "alice"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Publish</h1>" in html and 'name="note"' in html
    invalid = client.post(url, headers={"X-User": "alice"}, data={"note": "x" * 50})
    assert invalid.status_code == 422
    assert "statemgr-error" in invalid.get_data(as_text=True)
    done = client.post(url, headers={"X-User": "alice"}, data={"note": "ok"})
    assert done.status_code == 302
    assert done.headers["Location"] == "/done"
    with api.app_context():
        assert db.session.get(Project, 1).state.PUBLISHED


def test_default_page_refuses_open_redirect_and_forbidden(api: Flask) -> None:
    client = api.test_client()
    url = "/_statemgr/pages/project/1/review/approve?next=//evil.example/x"
    forbidden = client.get(url, headers={"X-User": "carol"})
    assert forbidden.status_code == 409  # review is already approved
    response = client.post(
        "/_statemgr/pages/project/1/state/withdraw?next=https://evil.example/",
        headers={"X-User": "alice"},
        data={"reason": "long enough reason"},
    )
    assert response.status_code == 409
    assert client.get("/_statemgr/pages/project/2/state/publish").status_code == 404


def test_transition_buttons_macro_escapes(api: Flask) -> None:
    with api.app_context():
        project = db.session.get(Project, 1)
        project.title = "<img src=x onerror=alert(1)>"
        db.session.commit()

    @api.get("/buttons/<int:id>")
    def buttons(id: int) -> str:
        from flask import render_template_string

        return render_template_string(
            '{% from "statemgr/macros.html" import transition_buttons %}{{ obj }}{{ transition_buttons(obj) }}',
            obj=db.session.get(Project, id),
        )

    html = api.test_client().get("/buttons/1", headers={"X-User": "alice"}).get_data(as_text=True)
    assert "<img" not in html and "&lt;img" in html
    assert 'href="/_statemgr/pages/project/1/state/publish' in html
    assert "statemgr-disabled" in html  # withdraw is not available from draft


def test_cli_commands(api: Flask) -> None:
    runner = api.test_cli_runner()
    schema = runner.invoke(args=["statemgr", "schema"])
    assert schema.exit_code == 0 and '"ProjectState"' in schema.output
    mermaid = runner.invoke(args=["statemgr", "graph"])
    assert "ProjectState_DRAFT --> ProjectState_PUBLISHED : Publish [editor]" in mermaid.output
    dot = runner.invoke(args=["statemgr", "graph", "--format", "dot"])
    assert dot.output.startswith("digraph")
    assert (
        '"ProjectState.DELETED" -> "SessionState.DELETED" [label="delete cascades sessions", style=dashed]'
        in dot.output
    )
    assert '"ProjectState.PUBLISHED" -> "ReviewState.APPROVED"' in dot.output
    check = runner.invoke(args=["statemgr", "check"])
    assert check.exit_code == 0, check.output
    client = api.test_client()
    client.post("/_statemgr/objects/project/1/state/publish", headers={"X-User": "alice"}, json={"note": "cli"})
    history = runner.invoke(args=["statemgr", "history", "project", "1"])
    assert "state.publish\tDRAFT -> PUBLISHED\tuser=1" in history.output
    assert '"note": "cli"' in history.output
    assert runner.invoke(args=["statemgr", "history", "nope", "1"]).exit_code != 0
    gc = runner.invoke(args=["statemgr", "gc", "--dry-run"])
    assert gc.exit_code == 0, gc.output
