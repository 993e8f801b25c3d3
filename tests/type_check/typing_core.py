"""Typed use of the core, checked by mypy (``tests/test_typing.py`` and CI).

``assert_type`` fails the check when mypy infers anything else, so this file
pins what the class and instance forms of states and transitions are.
"""

from __future__ import annotations

import datetime
import typing as t
from typing import assert_type

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from flask_statemgr import (
    Availability,
    BoundTransition,
    Plan,
    Reason,
    State,
    StateCheck,
    StateManager,
    Transition,
    TransitionError,
    TransitionRecord,
    TransitionResult,
    transition_after,
)


class ProjectState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    WITHDRAWN = State(3, "Withdrawn")
    GONE = State({WITHDRAWN}, "Gone")
    UNPUBLISHED = DRAFT | WITHDRAWN
    LIVE = PUBLISHED.conditional("Live")

    publish = Transition(DRAFT, PUBLISHED, "Publish", roles={"editor"})
    withdraw = Transition(PUBLISHED, WITHDRAWN, "Withdraw")


class Base(orm.DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "project"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(default="")
    published_at: Mapped[datetime.datetime | None]
    _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    state = ProjectState("_state")

    @ProjectState.publish.precondition
    def _has_title(self) -> bool | str:
        return bool(self.title) or "A title is required"

    @ProjectState.publish.execute
    def _stamp(self, data: dict[str, t.Any]) -> None:
        self.published_at = data.get("at")

    @ProjectState.LIVE.validator
    def _is_live(self) -> bool:
        return self.published_at is not None

    @ProjectState.LIVE.expression
    @classmethod
    def _live_clause(cls) -> sa.ColumnElement[bool]:
        return cls.published_at.is_not(None)


@ProjectState.publish.permission
def may_publish(obj: t.Any, user: t.Any) -> bool:
    return user is not None


def on_publish(sender: Transition, **kwargs: t.Any) -> None:
    pass


transition_after.connect(on_publish, sender=ProjectState.publish)


# -- the manager class ---------------------------------------------------------------

assert_type(ProjectState.DRAFT, State)
assert_type(ProjectState.GONE, State)
assert_type(ProjectState.LIVE, State)
assert_type(ProjectState.DRAFT.name, str)
assert_type(ProjectState.DRAFT.is_group, bool)
assert_type(ProjectState.publish, Transition)
assert_type(ProjectState.publish.sources, frozenset[State])
assert_type(ProjectState.publish.target, State)
assert_type(ProjectState.publish.roles, frozenset[str] | None)
assert_type(ProjectState.states(), dict[str, State])
assert_type(ProjectState.transitions(), dict[str, Transition])


# -- an instance ----------------------------------------------------------------------


def instance_access(project: Project, user: object) -> None:
    assert_type(project.state, ProjectState)
    # marked hooks stay ordinary methods
    assert_type(project._has_title(), bool | str)
    assert_type(project.state.DRAFT, StateCheck)
    assert_type(project.state.LIVE, StateCheck)
    if project.state.DRAFT and not project.state.GONE:
        pass
    assert_type(bool(project.state.UNPUBLISHED), bool)
    assert_type(project.state.value, t.Any)
    assert_type(project.state.current, State)
    assert_type(project.state.title, str)
    assert_type(project.state.publish, BoundTransition)
    assert_type(project.state.publish.is_available(user), bool)
    availability = project.state.publish.check(user)
    assert_type(availability, Availability)
    assert_type(availability.ok, bool)
    assert_type(availability.reasons, list[Reason])
    assert_type(availability.reasons[0].code, str)
    assert_type(project.state.publish.plan(user), Plan)
    result = project.state.publish(user, data={"at": None})
    assert_type(result, TransitionResult)
    assert_type(result.source, State)
    assert_type(result.record, TransitionRecord | None)
    assert_type(project.state.transitions(user), dict[str, BoundTransition])
    assert_type(project.state.transitions(), dict[str, BoundTransition])
    assert_type(project.state.history(), list[TransitionRecord])
    try:
        project.state.withdraw(user)
    except TransitionError as e:
        assert_type(e.http_status, int)
        assert_type(e.reasons, list[Reason])


# -- the model class: SQL ----------------------------------------------------------------


def class_access(session: orm.Session) -> None:
    assert_type(Project.state, ProjectState)
    assert_type(Project.state.publish, BoundTransition)
    query = sa.select(Project).where(Project.state.DRAFT)
    assert_type(query, sa.Select[Project])
    session.scalars(sa.select(Project).where(Project.state.GONE, ~Project.state.LIVE)).all()
    session.scalars(sa.select(Project.id).where(sa.or_(Project.state.DRAFT, Project.state.LIVE)))
