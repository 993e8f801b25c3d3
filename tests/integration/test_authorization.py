"""Authorization through the JSON API and the default pages, with three
users across two documents each (the ``secured`` fixture): what a user may
not view is a 404 exactly like a missing object, what the page would not
offer is refused when called directly, a cascade is checked for the acting
user at every step, and events never name what the user may not view."""

from __future__ import annotations

import typing as t

import pytest
from feed import settled
from reliability_app import Document, Folder, db

API = "/_statemgr/objects"
Snapshot = t.Callable[[t.Any], dict[str, t.Any]]

#: (model, id) each user may view; everything else is hidden from them
VISIBLE = {
    "alice": {("folder", 1), ("document", 1), ("document", 2)},
    "bob": {
        ("folder", 1),
        ("document", 1),
        ("document", 2),
        ("folder", 2),
        ("document", 3),
        ("document", 4),
        ("document", 6),
    },
    "carol": {
        ("folder", 1),
        ("document", 1),
        ("document", 2),
        ("document", 4),
        ("folder", 3),
        ("document", 5),
        ("document", 6),
    },
    "": {("folder", 1), ("document", 1), ("document", 2)},
}
OBJECTS = [("folder", i) for i in (1, 2, 3)] + [("document", i) for i in range(1, 7)]


def as_(user: str) -> dict[str, str]:
    return {"X-User": user} if user else {}


def answer(client: t.Any, user: str, method: str, path: str) -> tuple[int, dict[str, str], str]:
    response = client.open(path, method=method, headers=as_(user), json={})
    assert response.mimetype == "application/problem+json"
    return response.status_code, dict(response.headers), response.get_data(as_text=True)


def missing_twin(client: t.Any, user: str, method: str, path: str, ident: int) -> tuple[int, dict[str, str], str]:
    """The answer for an id of the same length that does not exist, with the
    id put back: what a hidden object's answer must equal."""
    status, headers, body = answer(client, user, method, path.replace(f"/{ident}", "/9", 1))
    return (
        status,
        headers,
        body.replace("No folder 9", f"No folder {ident}").replace("No document 9", f"No document {ident}"),
    )


@pytest.mark.parametrize("user", sorted(VISIBLE))
def test_hidden_objects_are_indistinguishable_from_missing_ones(
    secured: t.Callable[..., t.Any], snapshot: Snapshot, user: str
) -> None:
    app = secured()
    client = app.test_client()
    before = snapshot(app)
    for model, ident in OBJECTS:
        manager_transition = "state/lock" if model == "folder" else "state/archive"
        paths = [
            ("GET", f"{API}/{model}/{ident}"),
            ("GET", f"{API}/{model}/{ident}/history"),
            ("POST", f"{API}/{model}/{ident}/{manager_transition}"),
        ]
        for method, path in paths:
            if (model, ident) in VISIBLE[user]:
                if method == "GET":
                    # history is for signed-in users only (can_view_history)
                    ok = 401 if path.endswith("/history") and not user else 200
                    assert client.get(path, headers=as_(user)).status_code == ok
                continue
            seen = answer(client, user, method, path)
            assert seen[0] == 404, (user, path)
            assert seen == missing_twin(client, user, method, path, ident)
    assert snapshot(app) == before


def test_hidden_objects_are_404_on_the_default_pages(secured: t.Callable[..., t.Any], snapshot: Snapshot) -> None:
    app = secured()
    client = app.test_client()
    before = snapshot(app)
    for method in ("GET", "POST"):
        hidden = client.open("/_statemgr/pages/document/3/state/archive", method=method, headers=as_("alice"))
        missing = client.open("/_statemgr/pages/document/987654/state/archive", method=method, headers=as_("alice"))
        assert hidden.status_code == missing.status_code == 404
        assert hidden.data == missing.data
    assert snapshot(app) == before


# What the UI hides: (user, path, body, status). The object answer marks each
# of these unavailable with that status; calling the API anyway is refused.
HIDDEN_TRANSITIONS = [
    ("", "document/1/state/archive", {}, 401),  # anonymous
    ("carol", "document/1/state/archive", {}, 403),  # not the author
    ("alice", "document/4/state/submit", {"summary": "x"}, 404),  # may not even view it
    ("carol", "folder/1/state/lock", {}, 403),  # not the owner
    ("bob", "folder/1/state/archive", {"confirm": True}, 403),
]


@pytest.mark.parametrize(("user", "path", "body", "status"), HIDDEN_TRANSITIONS)
def test_transitions_the_ui_hides_are_refused_when_called(
    secured: t.Callable[..., t.Any], snapshot: Snapshot, user: str, path: str, body: dict[str, t.Any], status: int
) -> None:
    app = secured()
    client = app.test_client()
    model, ident, manager, transition = path.split("/")
    shown = client.get(f"{API}/{model}/{ident}", headers=as_(user))
    if status != 404:
        entry = shown.get_json()["managers"][manager]["transitions"][transition]
        assert entry["available"] is False and entry["status"] == status
        assert entry["reasons"][0]["code"] == "permission"
    before = snapshot(app)
    response = client.post(f"{API}/{path}", headers=as_(user), json=body)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    page = client.post(f"/_statemgr/pages/{path}", headers=as_(user), data=body)
    assert page.status_code == status
    assert snapshot(app) == before


def test_own_work_cannot_be_published_by_its_reviewer_author(
    secured: t.Callable[..., t.Any], snapshot: Snapshot
) -> None:
    app = secured()
    client = app.test_client()
    assert client.post(f"{API}/document/1/state/submit", headers=as_("alice"), json={}).status_code == 200
    before = snapshot(app)
    # alice reviews, but a permission hook refuses her own document
    response = client.post(f"{API}/document/1/state/publish", headers=as_("alice"), json={})
    assert response.status_code == 403
    assert snapshot(app) == before
    assert client.post(f"{API}/document/1/state/publish", headers=as_("bob"), json={}).status_code == 200


def test_a_cascade_cannot_reach_what_the_user_may_not_change(
    secured: t.Callable[..., t.Any], snapshot: Snapshot
) -> None:
    app = secured()
    client = app.test_client()
    # bob owns folder 2, but document 4 in it is carol's: archiving the folder
    # would archive it, so the whole chain is refused for bob
    shown = client.get(f"{API}/folder/2", headers=as_("bob")).get_json()
    archive = shown["managers"]["state"]["transitions"]["archive"]
    assert archive["available"] is False
    assert [r["code"] for r in archive["reasons"]] == ["cascade"]
    assert "changes" not in archive
    before = snapshot(app)
    for body in ({}, {"confirm": True}):
        response = client.post(f"{API}/folder/2/state/archive", headers=as_("bob"), json=body)
        assert response.status_code == 403
        reasons = response.get_json()["reasons"]
        assert [r["code"] for r in reasons] == ["cascade"]
        assert reasons[0]["message"].startswith("Document 4:")
    page = client.post("/_statemgr/pages/folder/2/state/archive", headers=as_("bob"))
    assert page.status_code == 403
    assert snapshot(app) == before
    with app.app_context():
        assert db.session.get_one(Folder, 2).state.OPEN
        assert all(d.state.DRAFT for d in db.session.get_one(Folder, 2).documents)
    # alice's own folder, all of whose documents are hers, archives whole
    done = client.post(f"{API}/folder/1/state/archive", headers=as_("alice"), json={"confirm": True})
    assert done.status_code == 200
    assert done.get_json()["result"]["steps"] == 3


def test_events_never_name_hidden_objects(secured: t.Callable[..., t.Any]) -> None:
    app = secured()
    client = app.test_client()
    start = client.get("/_statemgr/events").get_json()["cursor"]
    performed = [
        ("alice", "document/1/state/archive"),
        ("bob", "document/3/state/archive"),  # private folder 2
        ("carol", "document/4/state/archive"),  # private folder 2, carol's own
        ("carol", "folder/3/state/lock"),  # private
        ("bob", "document/6/state/archive"),  # private folder 3, bob's own
        ("carol", "document/5/state/archive"),  # private folder 3; the last record
    ]
    for user, path in performed:
        assert client.post(f"{API}/{path}", headers=as_(user), json={}).status_code == 200, path
    for user, visible in VISIBLE.items():
        seen = []
        cursor = start
        pages = 0
        while True:
            # one record a page, so pages made only of hidden records occur
            page = settled(client, f"/_statemgr/events?after={cursor}&limit=1", as_(user))
            if page["cursor"] == cursor:
                break
            pages += 1  # the cursor moves past hidden records too
            seen += [(e["model"], int(e["object_id"])) for e in page["events"]]
            cursor = page["cursor"]
        expected = [(p.split("/")[0], int(p.split("/")[1])) for _, p in performed]
        assert seen == [o for o in expected if o in visible], user
        assert pages == len(performed)
        # one big page says the same
        whole = settled(client, f"/_statemgr/events?after={start}", as_(user))
        assert [(e["model"], int(e["object_id"])) for e in whole["events"]] == seen
        assert whole["cursor"] == cursor


def test_history_of_a_hidden_object_is_404_even_with_records(secured: t.Callable[..., t.Any]) -> None:
    app = secured()
    client = app.test_client()
    response = client.post(f"{API}/document/5/state/submit", headers=as_("carol"), json={"summary": "secret plan"})
    assert response.status_code == 200
    assert client.get(f"{API}/document/5/history", headers=as_("carol")).get_json()["records"]
    for user in ("alice", ""):
        hidden = client.get(f"{API}/document/5/history", headers=as_(user))
        assert hidden.status_code == 404
        assert b"secret" not in hidden.data
    with app.app_context():
        assert db.session.get_one(Document, 5).state.REVIEW
