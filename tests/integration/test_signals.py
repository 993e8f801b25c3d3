"""The blinker signals sent around a perform: senders, keyword arguments,
order, and what a raising receiver does."""

from __future__ import annotations

import logging
import typing as t

import pytest
import sqlalchemy as sa
from core_models import (
    ALICE,
    BOB,
    CAROL,
    Chapter,
    ChapterState,
    Project,
    ProjectState,
    add_project,
    history_rows,
)
from sqlalchemy import orm

import flask_statemgr
from flask_statemgr import (
    PermissionDenied,
    PreconditionFailed,
    RequirementsUnmet,
    StateConflict,
    TransitionError,
    ValidationFailed,
    transition_after,
    transition_before,
    transition_failed,
    transition_refused,
)
from flask_statemgr.signals import namespace


class Recorder:
    """A receiver keeping what it got, and an event log shared with hooks."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.calls: list[dict[str, t.Any]] = []

    def __call__(self, sender: t.Any, **kwargs: t.Any) -> None:
        self.calls.append({"sender": sender, **kwargs})
        self.log.append(f"{self.name}:{sender.name}")


def test_signals_are_in_the_extensions_namespace() -> None:
    assert transition_before is namespace.signal("transition-before")
    assert transition_after is namespace.signal("transition-after")
    assert transition_failed is namespace.signal("transition-failed")
    assert transition_refused is namespace.signal("transition-refused")
    assert flask_statemgr.transition_after is transition_after
    assert flask_statemgr.transition_refused is transition_refused


def test_before_and_after_with_sender(core_db: orm.Session) -> None:
    project = add_project(core_db)
    log: list[str] = []
    before, after, other = Recorder("before", log), Recorder("after", log), Recorder("other", log)
    with (
        transition_before.connected_to(before, sender=ProjectState.publish),
        transition_after.connected_to(after, sender=ProjectState.publish),
        transition_after.connected_to(other, sender=ProjectState.withdraw),
    ):
        project.state.publish(BOB, data={"k": "v"})
    assert log == ["before:publish", "after:publish"]
    assert other.calls == []
    expected = {
        "sender": ProjectState.publish,
        "obj": project,
        "user": BOB,
        "data": {"k": "v"},
        "source": ProjectState.DRAFT,
        "target": ProjectState.PUBLISHED,
    }
    assert before.calls == [expected]
    assert after.calls == [expected]


def test_connect_with_sender_keeps_working(core_db: orm.Session) -> None:
    # the design's own spelling: connect(f, sender=ProjectState.publish)
    project = add_project(core_db)
    seen: list[t.Any] = []

    def receiver(sender: t.Any, **kwargs: t.Any) -> None:
        seen.append((sender, kwargs["obj"], kwargs["target"]))

    transition_after.connect(receiver, sender=ProjectState.publish)
    try:
        project.state.publish(BOB)
        project.state.withdraw(BOB)
    finally:
        transition_after.disconnect(receiver, sender=ProjectState.publish)
    assert seen == [(ProjectState.publish, project, ProjectState.PUBLISHED)]


def test_before_runs_before_the_execute_hooks(core_db: orm.Session) -> None:
    project = add_project(core_db)
    seen: list[t.Any] = []

    def before(sender: t.Any, **kwargs: t.Any) -> None:
        # inside the savepoint, before the hooks and the state change
        seen.append((kwargs["obj"].published_at, kwargs["obj"]._state))

    def after(sender: t.Any, **kwargs: t.Any) -> None:
        seen.append((kwargs["obj"].published_at is not None, kwargs["obj"]._state))

    with transition_before.connected_to(before), transition_after.connected_to(after):
        project.state.publish(BOB)
    assert seen == [(None, 1), (True, 2)]


def test_cascade_sends_for_every_step(core_db: orm.Session) -> None:
    project = add_project(core_db)
    project.chapters = [Chapter(), Chapter()]
    core_db.commit()
    log: list[str] = []
    before, after = Recorder("before", log), Recorder("after", log)
    chapter_after = Recorder("chapter", log)
    with (
        transition_before.connected_to(before),
        transition_after.connected_to(after),
        transition_after.connected_to(chapter_after, sender=ChapterState.delete),
    ):
        project.state.delete(ALICE)
    assert [c["obj"] for c in before.calls] == [project, *project.chapters]
    assert [c["obj"] for c in after.calls] == [project, *project.chapters]
    assert [c["obj"] for c in chapter_after.calls] == project.chapters
    assert all(c["source"] is ChapterState.DRAFT for c in chapter_after.calls)
    # every step's before comes before any after
    assert log.index("after:delete") > max(i for i, e in enumerate(log) if e.startswith("before"))


def test_failed_is_sent_when_the_perform_raises(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db)
    log: list[str] = []
    failed, after = Recorder("failed", log), Recorder("after", log)

    def refuse(sender: t.Any, **kwargs: t.Any) -> None:
        raise RuntimeError("refused by a receiver")

    with (
        transition_before.connected_to(refuse, sender=ProjectState.publish),
        transition_failed.connected_to(failed),
        transition_after.connected_to(after),
    ):
        with pytest.raises(RuntimeError, match="refused by a receiver"):
            project.state.publish(BOB, data={"k": 1})
    assert after.calls == []
    (call,) = failed.calls
    exception = call.pop("exception")
    assert isinstance(exception, RuntimeError)
    assert call == {
        "sender": ProjectState.publish,
        "obj": project,
        "user": BOB,
        "data": {"k": 1},
        "source": ProjectState.DRAFT,
        "target": ProjectState.PUBLISHED,
    }
    # a raising before-receiver aborts the transition
    core_db.commit()
    assert project.state.DRAFT and history_rows(core_engine) == []


def test_failed_is_sent_for_a_lost_race(core_engine: sa.Engine) -> None:
    with orm.Session(core_engine, expire_on_commit=False) as session:
        project = add_project(session)
        with orm.Session(core_engine) as elsewhere:
            elsewhere.get_one(Project, project.id).state.publish(BOB)
            elsewhere.commit()
        failed = Recorder("failed", [])
        with transition_failed.connected_to(failed):
            with pytest.raises(StateConflict) as info:
                project.state.delete(ALICE)
        (call,) = failed.calls
        assert call["exception"] is info.value
        assert call["sender"] is ProjectState.delete


def test_refused_checks_send_nothing(core_db: orm.Session) -> None:
    project = add_project(core_db)
    log: list[str] = []
    receivers = [Recorder(name, log) for name in ("before", "after", "failed")]
    with (
        transition_before.connected_to(receivers[0]),
        transition_after.connected_to(receivers[1]),
        transition_failed.connected_to(receivers[2]),
    ):
        with pytest.raises(PermissionDenied):
            project.state.delete(BOB)
    # nothing was attempted, so nothing failed
    assert log == []


def test_raising_after_receiver_is_logged(
    core_engine: sa.Engine, core_db: orm.Session, caplog: pytest.LogCaptureFixture
) -> None:
    project = add_project(core_db)
    later = Recorder("later", [])

    def broken(sender: t.Any, **kwargs: t.Any) -> None:
        raise ValueError("receiver bug")

    with (
        caplog.at_level(logging.ERROR, logger="flask_statemgr"),
        transition_after.connected_to(broken),
        transition_after.connected_to(later),
    ):
        result = project.state.publish(BOB)
    # the transition stands, and the other receivers still ran
    assert result.target is ProjectState.PUBLISHED and project.state.PUBLISHED
    assert len(later.calls) == 1
    (record,) = [r for r in caplog.records if r.name == "flask_statemgr"]
    assert "transition-after" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    core_db.commit()
    assert [r["transition"] for r in history_rows(core_engine)] == ["publish"]


#: (project attributes, transition, user, data) refused at each stage 1 to 5
REFUSALS = {
    "state": ({"_state": 2}, "publish", BOB, None, StateConflict),
    "requires": ({}, "submit", BOB, {"priority": 1}, RequirementsUnmet),
    "permission": ({}, "publish", CAROL, {"k": "v"}, PermissionDenied),
    "precondition": ({"title": ""}, "publish", BOB, None, PreconditionFailed),
    "form": ({"_review": "approved"}, "submit", BOB, {"priority": 9}, ValidationFailed),
}


@pytest.mark.parametrize("stage", list(REFUSALS))
def test_refused_is_sent_for_every_refusing_stage(core_engine: sa.Engine, core_db: orm.Session, stage: str) -> None:
    attributes, name, user, data, error_class = REFUSALS[stage]
    project = add_project(core_db, **attributes)
    bound = getattr(project.state, name)
    refused, others = Recorder("refused", []), Recorder("other", [])
    with (
        transition_refused.connected_to(refused, sender=getattr(ProjectState, name)),
        transition_before.connected_to(others),
        transition_failed.connected_to(others),
    ):
        # asking is no attempt
        bound.check(user)
        bound.is_available(user)
        bound.plan(user)
        assert refused.calls == []
        with pytest.raises(error_class) as info:
            bound(user, data=data)
    assert refused.calls == [
        {"sender": getattr(ProjectState, name), "obj": project, "user": user, "data": data, "error": info.value}
    ]
    assert others.calls == []
    core_db.commit()
    assert history_rows(core_engine) == []


def test_refused_is_not_sent_for_a_perform_that_runs(core_db: orm.Session) -> None:
    project = add_project(core_db)
    refused = Recorder("refused", [])
    with transition_refused.connected_to(refused):
        project.state.publish(BOB)
    assert refused.calls == []


def test_a_raising_refused_receiver_leaves_the_refusal(core_db: orm.Session, caplog: pytest.LogCaptureFixture) -> None:
    project = add_project(core_db)

    def broken(sender: t.Any, **kwargs: t.Any) -> None:
        raise ValueError("receiver bug")

    with caplog.at_level(logging.ERROR, logger="flask_statemgr"), transition_refused.connected_to(broken):
        with pytest.raises(PermissionDenied):
            project.state.publish(CAROL)
    (record,) = [r for r in caplog.records if r.name == "flask_statemgr"]
    assert "transition-refused" in record.getMessage()


def test_refused_is_sent_through_the_api(coaster_api: t.Any) -> None:
    from coaster_app import Post, ReviewState

    refused = Recorder("refused", [])
    client = coaster_api.test_client()
    with transition_refused.connected_to(refused):
        response = client.post(
            "/_statemgr/objects/post/1/review/submit", json={"why": "direct"}, headers={"X-User": "rita"}
        )
        # and a page's POST
        page = client.post("/_statemgr/pages/post/1/state/publish", data={}, headers={"X-User": "rita"})
    assert response.status_code == 403
    first = refused.calls[0]
    error = first.pop("error")
    assert isinstance(error, TransitionError) and error.http_status == 403
    assert first["sender"] is ReviewState.submit and isinstance(first["obj"], Post) and first["obj"].id == 1
    # refused before the body is read (the user decides): its data is unknown
    assert first["user"].name == "rita" and first["data"] is None
    assert page.status_code == 403
    assert [c["sender"].name for c in refused.calls] == ["submit", "publish"]
