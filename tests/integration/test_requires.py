"""``requires=``: a transition that depends on another manager, on the same
object or on a related one (DESIGN.md §5)."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from chain_models import (
    HOST,
    OWNER,
    STRANGER,
    Comment,
    Project,
    ProjectState,
    Session,
    SessionState,
    add_project,
)
from sqlalchemy import orm

from flask_statemgr import (
    Reason,
    RequirementsUnmet,
    State,
    StateConflict,
    StateManager,
    Transition,
    query_history,
)


def requires_reasons(bound: t.Any, user: t.Any = None) -> list[Reason]:
    availability = bound.check(user)
    assert not availability.ok
    assert not bound.is_available(user)
    return [r for r in availability.reasons if r.code == "requires"]


def test_plain_state_requirement(chain_db: orm.Session) -> None:
    project = add_project(chain_db)
    assert requires_reasons(project.state.publish) == [Reason("requires", "The review must be approved first")]
    with pytest.raises(RequirementsUnmet) as raised:
        project.state.publish()
    assert raised.value.http_status == 409
    assert raised.value.reasons == [Reason("requires", "The review must be approved first")]
    assert project.state.DRAFT
    assert query_history(chain_db) == []
    assert "publish" not in project.state.transitions()

    project.review.approve()
    assert project.state.publish.check().ok
    assert "publish" in project.state.transitions()
    result = project.state.publish()
    chain_db.commit()
    assert result.target is ProjectState.PUBLISHED
    assert chain_db.scalar(sa.select(Project._state)) == ProjectState.PUBLISHED.value
    assert [r.transition for r in query_history(chain_db)] == ["approve", "publish"]


@pytest.mark.parametrize(
    ("review", "met"),
    [("pending", False), ("approved", True), ("rejected", True), ("locked", False)],
)
def test_group_requirement(chain_db: orm.Session, review: str, met: bool) -> None:
    project = add_project(chain_db, _review=review)
    if met:
        project.state.archive()
        chain_db.commit()
        assert chain_db.scalar(sa.select(Project._state)) == ProjectState.WITHDRAWN.value
    else:
        assert requires_reasons(project.state.archive) == [Reason("requires", "The review must be decided first")]
        with pytest.raises(RequirementsUnmet):
            project.state.archive()
        assert project.state.DRAFT


def test_conditional_requirement(chain_db: orm.Session) -> None:
    project = add_project(chain_db, _state=ProjectState.WITHDRAWN.value, _review="approved")
    # approved, but nobody signed it off: the conditional state does not hold
    assert project.review.APPROVED and not project.review.SIGNED
    assert requires_reasons(project.state.republish) == [Reason("requires", "The review must be signed off first")]
    project.reviewer_id = HOST.id
    assert project.state.republish.is_available()
    project.state.republish()
    chain_db.commit()
    assert chain_db.scalar(sa.select(Project._state)) == ProjectState.PUBLISHED.value

    rejected = add_project(chain_db, _state=ProjectState.WITHDRAWN.value, _review="rejected", reviewer_id=HOST.id)
    # the validator holds, but the base state does not
    assert requires_reasons(rejected.state.republish) == [Reason("requires", "The review must be signed off first")]


def test_state_is_checked_before_requires_and_requires_before_permission(chain_db: orm.Session) -> None:
    project = add_project(chain_db, _state=ProjectState.PUBLISHED.value)
    with pytest.raises(StateConflict) as conflict:
        project.state.publish()
    assert [r.code for r in conflict.value.reasons] == ["state"]

    project = add_project(chain_db, sessions=1, comments=1)
    session = project.sessions[0]
    session.state.archive()
    comment = session.comments[0]
    # a stranger may not delete it either, but the requirement is reported
    with pytest.raises(RequirementsUnmet) as unmet:
        comment.state.delete(STRANGER)
    assert unmet.value.reasons == [Reason("requires", "The session must be active first")]


def test_requirement_on_a_related_object(chain_db: orm.Session) -> None:
    project = add_project(chain_db, sessions=2)
    session = project.sessions[0]
    assert requires_reasons(session.state.publish) == [Reason("requires", "The project must be published first")]
    with pytest.raises(RequirementsUnmet):
        session.state.publish()

    project.review.approve()
    project.state.publish()
    assert session.state.publish.is_available()
    session.state.publish()
    chain_db.commit()
    assert chain_db.scalars(sa.select(Session._state).order_by(Session.id)).all() == [
        SessionState.PUBLISHED.value,
        SessionState.DRAFT.value,
    ]
    # and it reads the related object's current state, not a cached answer
    project.state.withdraw()
    assert not project.sessions[1].state.publish.is_available()


def test_missing_related_object_is_unmet_not_a_crash(chain_db: orm.Session) -> None:
    orphan = Session()
    chain_db.add(orphan)
    chain_db.commit()
    assert orphan.project is None
    assert requires_reasons(orphan.state.publish) == [Reason("requires", "The project must be published first")]
    with pytest.raises(RequirementsUnmet):
        orphan.state.publish()
    assert orphan.state.DRAFT
    # transitions without that requirement are unaffected
    assert set(orphan.state.transitions(OWNER)) == {"archive"}


def test_requirement_of_a_comment_reaches_two_levels(chain_db: orm.Session) -> None:
    project = add_project(chain_db, sessions=1, comments=1)
    comment = chain_db.scalars(sa.select(Comment)).one()
    assert comment.state.delete.is_available(OWNER)
    project.sessions[0].state.archive()
    assert requires_reasons(comment.state.delete, OWNER) == [Reason("requires", "The session must be active first")]


class TicketState(StateManager):
    OPEN = State(1, "Open")
    CLOSED = State(2, "Closed")
    close = Transition(OPEN, CLOSED, "Close", requires={"title": OPEN})


class Ticket:
    """An unmapped object: the engine works on plain attributes too."""

    state = TicketState("_state")

    def __init__(self) -> None:
        self._state = TicketState.OPEN.value
        self.title = "not a manager"


def test_requires_path_that_is_not_a_manager_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'title' on Ticket does not lead to a state manager"):
        Ticket().state.close.check()
