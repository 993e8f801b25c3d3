"""The Flask layer's one resolver and one perform, as the API, the pages and
the guard use them."""

from __future__ import annotations

import typing as t

import pytest
from api_app import Project, Session, User, db
from flask import Flask

from flask_statemgr import StateMgr
from flask_statemgr.problems import ResourceNotFound


def test_a_refused_page_lists_every_blocker_of_its_cascade(api: Flask) -> None:
    statemgr = api.statemgr  # type: ignore[attr-defined]
    # no one may delete a session: each of project 1's two blocks the cascade
    statemgr.roles_loader(lambda obj, user: set() if isinstance(obj, Session) else obj.roles_for(user))
    client = api.test_client()
    url = "/_statemgr/pages/project/1/state/delete"
    shown = client.get(url, headers={"X-User": "alice"}).get_data(as_text=True)
    refused = client.post(url, headers={"X-User": "alice"}, data={})
    assert refused.status_code == 403
    assert shown.count("<li data-code=") == 2
    assert refused.get_data(as_text=True).count("<li data-code=") == 2


def test_perform_without_commit_waits_for_commit(api: Flask) -> None:
    statemgr = api.statemgr  # type: ignore[attr-defined]
    alice = User(1, "alice", frozenset({"editor", "owner"}))
    statemgr.user_loader(lambda: alice)
    with api.test_request_context():
        bound = statemgr.resolve("project", "1", "state", "publish", alice)
        statemgr.perform(bound, {"note": "x"}, commit=False)
        db.session.rollback()
        assert db.session.get_one(Project, 1).state.DRAFT
        bound = statemgr.resolve("project", "1", "state", "publish", alice)
        statemgr.perform(bound, {"note": "x"}, commit=False)
        statemgr.commit()
        db.session.rollback()
        assert db.session.get_one(Project, 1).state.PUBLISHED


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "1", "state", "publish"), "No model named 'nope'"),
        (("project", "999", "state", "publish"), "No project 999"),
        (("project", "2", "state", "publish"), "No project 2"),  # private: anonymous may not view it
        (("project", "1", "nope", "publish"), "project has no state manager 'nope'"),
        (("project", "1", "state", "nope"), "state has no transition 'nope'"),
    ],
)
def test_resolve_names_what_is_not_found(api: Flask, args: tuple[str, ...], message: str) -> None:
    with api.test_request_context(), pytest.raises(ResourceNotFound, match=message):
        api.statemgr.resolve(*args, None)  # type: ignore[attr-defined]


def test_the_guard_hides_an_object_the_user_may_not_view(api: Flask) -> None:
    statemgr: StateMgr = api.statemgr  # type: ignore[attr-defined]

    @api.post("/guarded/<int:id>")
    @statemgr.guard(Project.state.publish)
    def guarded(obj: t.Any, form: t.Any) -> str:
        return "ran"

    client = api.test_client()
    assert client.post("/guarded/2").status_code == 404
    assert client.post("/guarded/999").status_code == 404
