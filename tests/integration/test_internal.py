"""``internal=True``: the half of a transition that moves two managers at
once is never listed, offered or performable on its own, while the
cascade that causes it still checks its state and preconditions."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from coaster_app import ASKED, EDNA, RITA, Post, PostState, ReviewState, db

from flask_statemgr import PermissionDenied, Reason, StateConflict, TransitionRecord

Client = t.Any


def as_(user: str | None) -> dict[str, str]:
    return {"X-User": user} if user else {}


def _states(post_id: int) -> tuple[int, int]:
    row = db.session.execute(sa.select(Post._state, Post._review).where(Post.id == post_id)).one()
    return row[0], row[1]


def test_declaration_and_introspection() -> None:
    assert ReviewState.submit.internal is True
    assert PostState.publish.internal is False
    # the manager's introspection lists every declaration
    assert list(ReviewState.transitions()) == ["submit", "unsubmit", "review"]
    # what is bound to a model lists what can be offered
    assert list(Post.review.transitions()) == ["review"]


def test_never_listed(coaster_api: t.Any) -> None:
    with coaster_api.test_request_context():
        post = db.session.get(Post, 1)
        assert list(post.state.transitions(EDNA)) == ["publish"]
        # rita holds submit's role, the state fits, the precondition holds
        assert post.review.transitions(RITA) == {}
        pages = coaster_api.extensions["statemgr"].transition_choices(post)
        assert [(c["manager"], c["transition"].name) for c in pages] == [
            ("state", "publish"),
            ("state", "undo"),
            ("review", "review"),
        ]


@pytest.mark.parametrize("user", [None, EDNA, RITA])
def test_performing_directly_is_refused(coaster_api: t.Any, user: t.Any) -> None:
    with coaster_api.app_context():
        post = db.session.get(Post, 1)
        submit = post.review.submit
        assert submit.is_available(user) is False
        availability = submit.check(user)
        expected = [Reason("permission", "Submit for review only happens as a step of another transition")]
        assert availability.reasons == expected
        with pytest.raises(PermissionDenied) as info:
            submit(user)
        # logging in would not help: 403 for anyone
        assert info.value.http_status == 403 and info.value.reasons == expected
        db.session.rollback()
        assert _states(1) == (0, 0)
        assert post.review.history() == []


def test_cascaded_step_skips_its_roles_and_permission_hooks(coaster_api: t.Any) -> None:
    with coaster_api.app_context():
        post = db.session.get(Post, 1)
        # edna is no reviewer, and submit's permission hook answers False
        result = post.state.publish(EDNA)
        db.session.commit()
        assert ASKED == []
        assert [(s.manager, s.transition.name) for s in result.steps] == [("state", "publish"), ("review", "submit")]
        assert _states(1) == (2, 1)
        records = post.review.history()
        assert [(r.transition, r.source, r.target) for r in records] == [("submit", "UNSUBMITTED", "PENDING")]
        assert isinstance(records[0], TransitionRecord)
        # and back, through a conditional source and an internal step without roles
        post.state.undo(EDNA)
        db.session.commit()
        assert _states(1) == (1, 0)


def test_cascaded_step_checks_its_state(coaster_api: t.Any) -> None:
    with coaster_api.app_context():
        post = db.session.get(Post, 1)
        post._review = 2  # already reviewed: submit cannot start from there
        db.session.commit()
        assert not post.state.publish.is_available(EDNA)
        with pytest.raises(StateConflict) as info:
            post.state.publish(EDNA)
        db.session.rollback()
        assert info.value.reasons == [
            Reason("cascade", "Post 1: Submit for review is not possible while review is Reviewed")
        ]
        assert _states(1) == (0, 2)


def test_cascaded_step_checks_its_preconditions(coaster_api: t.Any) -> None:
    with coaster_api.app_context():
        post = db.session.get(Post, 2)
        availability = post.state.publish.check(EDNA)
        assert availability.reasons == [Reason("cascade", "Post 2: A post needs a body before it is reviewed")]
        assert "publish" not in post.state.transitions(EDNA)
        assert _states(2) == (0, 0)


def test_cascaded_step_still_needs_the_cause_permission(coaster_api: t.Any) -> None:
    with coaster_api.app_context():
        post = db.session.get(Post, 1)
        with pytest.raises(PermissionDenied):
            post.state.publish(RITA)
        db.session.rollback()
        assert _states(1) == (0, 0)


def test_api_never_offers_it(coaster_api: t.Any) -> None:
    client: Client = coaster_api.test_client()
    body = client.get("/_statemgr/objects/post/1", headers=as_("rita")).get_json()
    assert list(body["managers"]["review"]["transitions"]) == ["review"]
    assert list(body["managers"]["state"]["transitions"]) == ["publish", "undo"]
    response = client.post("/_statemgr/objects/post/1/review/submit", json={}, headers=as_("rita"))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert [r["code"] for r in response.get_json()["reasons"]] == ["permission"]
    with coaster_api.app_context():
        assert _states(1) == (0, 0)
    # the cause performs it through the API, with no confirmation asked: it
    # moves two managers of one object, not two objects
    response = client.post("/_statemgr/objects/post/1/state/publish", json={}, headers=as_("edna"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["managers"]["review"]["state"] == "PENDING"


def test_schema_marks_it(coaster_api: t.Any) -> None:
    managers = coaster_api.test_client().get("/_statemgr/schema").get_json()["managers"]
    review = managers["ReviewState"]["transitions"]
    assert review["submit"]["internal"] is True
    assert review["review"]["internal"] is False
    assert managers["PostState"]["transitions"]["publish"]["internal"] is False
