from __future__ import annotations

import json
import typing as t

import pytest
import sqlalchemy as sa
from api_app import ALICE, BOB, CAROL, Project, db
from feed import settled

Client = t.Any


def as_(user: str | None) -> dict[str, str]:
    return {"X-User": user} if user else {}


def test_schema_etag_and_304(api: t.Any) -> None:
    client = api.test_client()
    first = client.get("/_statemgr/schema")
    assert first.status_code == 200
    assert first.mimetype == "application/json"
    tag = first.headers["ETag"].strip('"')
    body = first.get_json()
    assert body["version"] == 1
    publish = body["managers"]["ProjectState"]["transitions"]["publish"]
    assert publish["from"] == ["DRAFT"] and publish["to"] == "PUBLISHED"
    assert publish["roles"] == ["editor"]
    assert publish["requires"] == {"review": "ReviewState.APPROVED"}
    assert publish["form"]["type"] == "object"
    # presentation hints beside the schema, which standard tools take as is
    withdraw = body["managers"]["ProjectState"]["transitions"]["withdraw"]
    assert withdraw["ui"] == {"reason": {"ui:widget": "textarea"}}
    assert list(withdraw).index("ui") == list(withdraw).index("form") + 1
    assert body["managers"]["ProjectState"]["transitions"]["delete"]["ui"] is None
    assert body["managers"]["ProjectState"]["states"]["GONE"] == {
        "kind": "group",
        "title": "Gone",
        "description": "",
        "states": ["WITHDRAWN", "DELETED"],
    }
    assert body["models"]["project"] == {"managers": {"state": "ProjectState", "review": "ReviewState"}}
    again = client.get("/_statemgr/schema", headers={"If-None-Match": f'"{tag}"'})
    assert again.status_code == 304
    assert again.data == b""


@pytest.mark.parametrize(
    "if_none_match, status",
    [
        ('W/"{tag}"', 304),  # what nginx sends back after gzipping
        ('"other", "{tag}"', 304),
        ('"other", W/"{tag}"', 304),
        ("*", 304),
        ('"other"', 200),
        ('W/"other"', 200),
    ],
)
def test_schema_conditional_requests(api: t.Any, if_none_match: str, status: int) -> None:
    client = api.test_client()
    tag = client.get("/_statemgr/schema").headers["ETag"].strip('"')
    response = client.get("/_statemgr/schema", headers={"If-None-Match": if_none_match.format(tag=tag)})
    assert response.status_code == status
    assert response.headers["ETag"] == f'"{tag}"'
    assert response.headers["Cache-Control"] == "no-cache"
    assert (response.data == b"") is (status == 304)


def test_object_state_per_user(api: t.Any) -> None:
    client = api.test_client()
    anon = client.get("/_statemgr/objects/project/1").get_json()
    publish = anon["managers"]["state"]["transitions"]["publish"]
    assert publish["available"] is False and publish["status"] == 401
    alice = client.get("/_statemgr/objects/project/1", headers=as_("alice")).get_json()
    state = alice["managers"]["state"]
    assert state["state"] == "DRAFT" and state["current"] == "DRAFT"
    assert state["states"]["DRAFT"] is True and state["states"]["GONE"] is False
    assert state["transitions"]["publish"]["available"] is True
    assert state["transitions"]["delete"]["changes"] == {"Project": 1, "Session": 2}
    carol = client.get("/_statemgr/objects/project/1", headers=as_("carol")).get_json()
    reasons = carol["managers"]["state"]["transitions"]["publish"]["reasons"]
    assert reasons[0]["code"] == "permission"
    assert carol["managers"]["state"]["transitions"]["publish"]["status"] == 403


def test_private_object_is_404_for_anonymous(api: t.Any) -> None:
    client = api.test_client()
    response = client.get("/_statemgr/objects/project/2")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert "private" not in response.get_data(as_text=True)
    assert client.get("/_statemgr/objects/project/2", headers=as_("carol")).status_code == 200
    assert client.get("/_statemgr/objects/project/2/history").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/_statemgr/objects/nothing/1",
        "/_statemgr/objects/project/999",
        "/_statemgr/objects/project/abc",
        "/_statemgr/objects/project/99999999999999999999999",
        "/_statemgr/objects/project/-1",
    ],
)
def test_unknown_objects_are_404(api: t.Any, path: str) -> None:
    response = api.test_client().get(path)
    assert response.status_code == 404
    problem = response.get_json()
    assert problem["status"] == 404 and problem["type"].startswith("urn:statemgr:problem:")


def perform(client: Client, path: str, user: str | None, body: t.Any = None, **kw: t.Any) -> t.Any:
    return client.post(f"/_statemgr/objects/{path}", headers=as_(user), json=body, **kw)


def test_perform_statuses(api: t.Any) -> None:
    client = api.test_client()
    assert perform(client, "project/1/state/publish", None).status_code == 401
    assert perform(client, "project/1/state/publish", "carol").status_code == 403
    assert perform(client, "project/1/state/withdraw", "alice", {"reason": "x" * 20}).status_code == 409
    assert perform(client, "project/1/state/nothing", "alice").status_code == 404
    assert perform(client, "project/1/nothing/publish", "alice").status_code == 404
    bad = perform(client, "project/1/state/publish", "alice", {"note": "x" * 50})
    assert bad.status_code == 422
    assert bad.mimetype == "application/problem+json"
    assert "note" in bad.get_json()["errors"]
    ok = perform(client, "project/1/state/publish", "alice", {"note": "hi", "publish_at": "2026-05-01T10:00:00Z"})
    assert ok.status_code == 200
    body = ok.get_json()
    assert body["managers"]["state"]["state"] == "PUBLISHED"
    assert body["managers"]["state"]["current"] == "LIVE"
    assert body["result"]["source"] == "DRAFT" and body["result"]["target"] == "PUBLISHED"
    assert body["result"]["record"]["payload"]["note"] == "hi"
    again = perform(client, "project/1/state/publish", "alice")
    assert again.status_code == 409
    assert again.get_json()["reasons"][0]["code"] == "state"


def test_perform_answers_without_reloading(api: t.Any) -> None:
    client = api.test_client()
    with api.app_context():
        engine = db.engine
    sent: list[str] = []

    def log(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        sent.append(" ".join(statement.split()).upper())

    sa.event.listen(engine, "before_cursor_execute", log)
    try:
        ok = perform(client, "project/1/state/publish", "alice", {"note": "hi", "publish_at": "2026-05-01T10:00:00Z"})
    finally:
        sa.event.remove(engine, "before_cursor_execute", log)
    assert ok.status_code == 200
    assert ok.get_json()["managers"]["state"]["state"] == "PUBLISHED"
    # the answer is built from the objects as the transition left them: no
    # read of the project once its state changed
    moved = max(i for i, q in enumerate(sent) if "SET _STATE" in q)
    assert not [q for q in sent[moved + 1 :] if q.startswith("SELECT") and "FROM PROJECT" in q]
    # and it was committed
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT _state FROM project WHERE id = 1")).scalar() == 2


def test_requires_and_precondition_are_409(api: t.Any) -> None:
    client = api.test_client()
    with api.app_context():
        db.session.get(Project, 2)._review = "pending"
        db.session.commit()
    response = perform(client, "project/2/state/publish", "bob")
    assert response.status_code == 409
    assert response.get_json()["reasons"][0]["code"] == "requires"
    with api.app_context():
        db.session.get(Project, 2)._review = "approved"
        db.session.commit()
    response = perform(client, "project/2/state/publish", "bob")
    assert response.status_code == 409
    assert response.get_json()["reasons"] == [{"code": "precondition", "message": "A title is required"}]


def test_cascade_needs_confirmation(api: t.Any) -> None:
    client = api.test_client()
    response = perform(client, "project/1/state/delete", "alice")
    assert response.status_code == 409
    assert response.get_json()["plan"] == {"Project": 1, "Session": 2}
    with api.app_context():
        assert db.session.get(Project, 1).state.DRAFT
    done = perform(client, "project/1/state/delete", "alice", {"confirm": True})
    assert done.status_code == 200
    assert done.get_json()["result"]["steps"] == 3
    with api.app_context():
        project = db.session.get(Project, 1)
        assert project.state.DELETED
        assert all(s.state.DELETED for s in project.sessions)


def test_form_encoded_perform(api: t.Any) -> None:
    client = api.test_client()
    response = client.post(
        "/_statemgr/objects/project/1/state/publish",
        headers=as_("alice"),
        data={"note": "form", "publish_at": "2026-05-01T10:00"},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["result"]["record"]["payload"]["note"] == "form"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"<x/>", "application/xml", 415),
    ],
)
def test_malformed_bodies(api: t.Any, body: bytes, content_type: str, status: int) -> None:
    client = api.test_client()
    response = client.post(
        "/_statemgr/objects/project/1/state/publish",
        headers=as_("alice"),
        data=body,
        content_type=content_type,
    )
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    with api.app_context():
        assert db.session.get(Project, 1).state.DRAFT


def test_history_and_events(api: t.Any) -> None:
    client = api.test_client()
    start = client.get("/_statemgr/events").get_json()
    assert start["events"] == []
    cursor = start["cursor"]
    perform(client, "project/1/state/publish", "alice", {"note": "n"})
    perform(client, "project/2/review/approve", "bob")
    history = client.get("/_statemgr/objects/project/1/history", headers=as_("alice")).get_json()["records"]
    assert [(r["transition"], r["source"], r["target"]) for r in history] == [("publish", "DRAFT", "PUBLISHED")]
    assert history[0]["user_id"] == "1" and history[0]["payload"]["note"] == "n"
    anonymous = settled(client, f"/_statemgr/events?after={cursor}")
    # project 2 is private: anonymous users see only project 1's event
    assert [(e["model"], e["object_id"]) for e in anonymous["events"]] == [("project", "1")]
    assert anonymous["cursor"] != cursor
    carol = settled(client, f"/_statemgr/events?after={cursor}", as_("carol"))
    assert [e["object_id"] for e in carol["events"]] == ["1", "2"]
    assert client.get(f"/_statemgr/events?after={carol['cursor']}").get_json()["events"] == []
    assert client.get("/_statemgr/events?after=x").status_code == 400


def test_csrf_required_when_enabled(make_app: t.Callable[..., t.Any], database_url: str) -> None:
    import api_app
    from flask_wtf.csrf import CSRFProtect, generate_csrf

    app = make_app(api_app, database_url, WTF_CSRF_ENABLED=True)
    CSRFProtect(app)
    app.add_url_rule("/token", "token", generate_csrf)
    with app.app_context():
        db.session.add(Project(title="T", _review="approved"))
        db.session.commit()
    client = app.test_client()
    missing = perform(client, "project/1/state/publish", "alice", {})
    assert missing.status_code == 400
    assert missing.mimetype == "application/problem+json"
    wrong = client.post(
        "/_statemgr/objects/project/1/state/publish",
        headers={**as_("alice"), "X-CSRFToken": "forged"},
        json={},
    )
    assert wrong.status_code == 400
    with app.app_context():
        assert db.session.get(Project, 1).state.DRAFT
    # the token is tied to the client's session
    token = client.get("/token").get_data(as_text=True)
    ok = client.post(
        "/_statemgr/objects/project/1/state/publish",
        headers={**as_("alice"), "X-CSRFToken": token},
        json={},
    )
    assert ok.status_code == 200, ok.get_json()


def test_schema_is_cached_and_stable(api: t.Any) -> None:
    with api.app_context():
        first = api.statemgr.schema()
        assert api.statemgr.schema() is first
    body = api.test_client().get("/_statemgr/schema").data
    assert json.loads(body) == first


def test_object_json_of_a_listing_reads_the_cursor_once(api: t.Any) -> None:
    from flask_statemgr.api import object_json
    from flask_statemgr.events import START

    ext = api.statemgr
    with api.app_context():
        db.session.add_all([Project(title=f"more {i}", owner_id=1) for i in range(8)])
        db.session.commit()
        projects = db.session.scalars(sa.select(Project).order_by(Project.id)).all()
        assert len(projects) == 10
        sent: list[str] = []

        def log(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
            sent.append(" ".join(statement.split()).upper())

        def cursor_reads() -> int:
            return len([q for q in sent if q.startswith("SELECT STATEMGR_HISTORY.XACT, STATEMGR_HISTORY.ID")])

        sa.event.listen(db.engine, "before_cursor_execute", log)
        try:
            bodies = [object_json(ext, ext.exposed["project"], p, None) for p in projects]
            # no query per object for the events cursor
            assert cursor_reads() == 1
            assert {body["cursor"] for body in bodies} == {START}
            # the cursor holds for the transaction: a later transaction
            # reads it again
            projects[2].state.delete(ALICE)
            db.session.commit()
            object_json(ext, ext.exposed["project"], projects[1], None)
            assert cursor_reads() == 2
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", log)


def test_object_json_shares_only_what_the_state_decides(api: t.Any) -> None:
    """One app context answers many objects and users from its shared
    parts; every answer must still be the one each check gives alone."""
    from flask_statemgr.api import object_json
    from flask_statemgr.i18n import text

    ext = api.statemgr
    with api.app_context():
        for i, (state, title) in enumerate([(1, "titled"), (1, ""), (2, "live"), (3, "gone"), (4, "deleted")] * 2):
            db.session.add(Project(title=title, owner_id=1 + i % 2, _state=state))
        db.session.commit()
        projects = db.session.scalars(sa.select(Project).order_by(Project.id)).all()
        answers = {True: 0, False: 0}
        for user in (ALICE, None, BOB, CAROL, ALICE):
            for project in projects:
                body = object_json(ext, ext.exposed["project"], project, user)
                for attr, manager in body["managers"].items():
                    view = getattr(project, attr)
                    assert manager["states"] == {n: bool(getattr(view, n)) for n in type(view).states()}
                    assert manager["current"] == view.current.name
                    for name, entry in manager["transitions"].items():
                        bound = getattr(view, name)
                        alone = bound.check(user)
                        expected = {
                            "title": text(bound.title),
                            "available": alone.ok,
                            "status": alone.error.http_status if alone.error is not None else 200,
                            "reasons": [r.to_dict() for r in alone.reasons],
                            "form": bound.transition.form is not None,
                        }
                        if alone.ok and bound.transition.cascade:
                            expected["changes"] = bound.plan(user).summary()
                        assert entry == expected, (project.id, user, attr, name)
                        answers[alone.ok] += 1
    assert answers[True] > 10 and answers[False] > 50
