"""Typed use of the core, checked by mypy and pyright (``tests/system/test_typing.py``).

The model is declared the way the README declares it. ``assert_type`` fails
the check when a checker infers anything else, so this file pins what every
form of DESIGN §3 is; ``mistakes.py`` holds what must be an error.
"""

from __future__ import annotations

import datetime
import typing as t
from typing import assert_type

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import Form, StringField

from flask_statemgr import (
    Availability,
    BoundTransition,
    BulkResult,
    Plan,
    Reason,
    State,
    StateManager,
    StateMgr,
    Transition,
    TransitionError,
    TransitionRecord,
    TransitionResult,
    transition_after,
)


class Base(orm.DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
statemgr = StateMgr(db=db)


class PublishForm(Form):
    note = StringField("Note")


class ProjectState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    WITHDRAWN = State(3, "Withdrawn")
    DELETED = State(4, "Deleted", description="Returns 410")
    GONE = State({WITHDRAWN, DELETED}, "Gone")
    UNPUBLISHED = DRAFT | WITHDRAWN
    LIVE = PUBLISHED.conditional("Live")

    publish = Transition(DRAFT, PUBLISHED, "Publish", roles={"editor"}, form=PublishForm)
    withdraw = Transition(PUBLISHED, WITHDRAWN, "Withdraw", roles={"editor"})
    delete = Transition({DRAFT, PUBLISHED, WITHDRAWN}, DELETED, "Delete", roles={"owner"})


# mypy cannot take a variable (``db.Model``) as a base class; pyright can.
class Project(db.Model):  # type: ignore[name-defined, misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(default="")
    published_at: Mapped[datetime.datetime | None]
    _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    state = ProjectState("_state")

    def roles_for(self, user: object) -> set[str]:
        return {"editor"}

    @ProjectState.publish.precondition
    def _has_title(self) -> bool | str:
        return bool(self.title) or "A title is required"

    @ProjectState.publish.execute
    def _stamp(self, data: dict[str, t.Any]) -> None:
        self.published_at = data.get("publish_at")

    @ProjectState.LIVE.validator
    def _is_live(self) -> bool:
        return self.published_at is not None

    @ProjectState.LIVE.expression
    @classmethod
    def _is_live_clause(cls) -> sa.ColumnElement[bool]:
        return cls.published_at.is_not(None)


class Review(db.Model):  # type: ignore[name-defined, misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    # the mapped column itself in place of its name
    state = ProjectState(_state)


@ProjectState.publish.permission
def may_publish(obj: Project, user: object) -> bool:
    return user is not None


def on_publish(sender: Transition, **kwargs: t.Any) -> None:
    pass


transition_after.connect(on_publish, sender=ProjectState.publish)


# -- the manager class ---------------------------------------------------------------

assert_type(ProjectState.DRAFT, State)
assert_type(ProjectState.GONE, State)
assert_type(ProjectState.LIVE, State)
assert_type(ProjectState.DRAFT.name, str)
assert_type(ProjectState.DRAFT.value, t.Any)
assert_type(ProjectState.DRAFT.title, str)
assert_type(ProjectState.DRAFT.description, str)
assert_type(ProjectState.DRAFT.is_group, bool)
assert_type(ProjectState.DRAFT.is_conditional, bool)
assert_type(ProjectState.DRAFT | ProjectState.WITHDRAWN, State)
assert_type(ProjectState.publish, Transition[PublishForm])
assert_type(ProjectState.withdraw, Transition[t.Any])
assert_type(ProjectState.publish.name, str)
assert_type(ProjectState.publish.sources, frozenset[State])
assert_type(ProjectState.publish.target, State)
assert_type(ProjectState.publish.title, str)
assert_type(ProjectState.publish.roles, frozenset[str] | None)
assert_type(ProjectState.publish.form, type[PublishForm] | None)
assert_type(ProjectState.states(), dict[str, State])
assert_type(ProjectState.transitions(), dict[str, Transition])


# -- an instance ----------------------------------------------------------------------


def is_draft(project: Project) -> bool:
    return project.state.DRAFT


def instance_access(project: Project, user: object) -> None:
    assert_type(project.state, ProjectState)
    # marked hooks stay ordinary methods
    assert_type(project._has_title(), bool | str)
    assert_type(project._is_live(), bool)
    assert_type(Project._is_live_clause(), sa.ColumnElement[bool])
    assert_type(may_publish(project, user), bool)
    assert_type(project.state.DRAFT, bool)
    assert_type(project.state.GONE, bool)
    assert_type(project.state.LIVE, bool)
    assert_type(project.state.UNPUBLISHED, bool)
    assert_type(not project.state.GONE, bool)
    assert_type(project.state.PUBLISHED and project.state.LIVE, bool)
    live: bool = project.state.LIVE
    tests: dict[str, bool] = {"draft": project.state.DRAFT, "live": live}
    if project.state.DRAFT and not tests["live"]:
        pass
    assert_type(project.state.value, t.Any)
    assert_type(project.state.current, State)
    assert_type(project.state.title, str)
    assert_type(project.state.publish, BoundTransition)
    assert_type(project.state.publish.name, str)
    assert_type(project.state.publish.transition, Transition)
    assert_type(project.state.publish.is_available(), bool)
    assert_type(project.state.publish.is_available(user), bool)
    assert_type(project.state.publish.is_available(user=user), bool)
    availability = project.state.publish.check(user=user)
    assert_type(availability, Availability)
    assert_type(availability.ok, bool)
    assert_type(availability.reasons, list[Reason])
    assert_type(availability.reasons[0].code, str)
    assert_type(availability.reasons[0].message, str)
    assert_type(project.state.publish.plan(user), Plan)
    result = project.state.publish(user=user, data={"note": "now"})
    assert_type(result, TransitionResult)
    assert_type(result.source, State)
    assert_type(result.target, State)
    assert_type(result.record, TransitionRecord | None)
    assert_type(result.steps[0].transition, Transition)
    assert_type(project.state.transitions(user), dict[str, BoundTransition])
    assert_type(project.state.transitions(user=user), dict[str, BoundTransition])
    assert_type(project.state.transitions(), dict[str, BoundTransition])
    assert_type(project.state.history(), list[TransitionRecord])
    try:
        project.state.withdraw(user)
    except TransitionError as e:
        assert_type(e.http_status, int)
        assert_type(e.reasons, list[Reason])


# -- the model class: SQL ----------------------------------------------------------------


def class_access(session: orm.Session, review: Review) -> None:
    assert_type(Project.state, type[ProjectState])
    assert_type(Review.state, type[ProjectState])
    assert_type(review.state.DRAFT, bool)
    query = sa.select(Project).where(Project.state.DRAFT)
    assert_type(query, sa.Select[Project])
    assert_type(~Project.state.GONE, sa.ColumnElement[bool])
    assert_type(Project.state.PUBLISHED & Project.state.LIVE, sa.ColumnElement[bool])
    session.scalars(sa.select(Project).where(Project.state.GONE, ~Project.state.LIVE)).all()
    session.scalars(sa.select(Project).where(Project.state.PUBLISHED & Project.state.LIVE))
    session.scalars(sa.select(Project).where(Project.state.DRAFT | Project.state.LIVE))
    session.scalars(sa.select(Project.id).where(sa.or_(Project.state.DRAFT, Project.state.LIVE)))
    session.scalars(sa.select(Project.id).where(sa.and_(Project.state.PUBLISHED, ~Project.state.LIVE)))
    session.scalars(sa.select(Project.id).where(sa.not_(Project.state.GONE)))
    session.execute(sa.update(Project).where(Project.state.DRAFT).values(title="x"))
    session.execute(sa.delete(Project).where(Project.state.GONE | sa.false()))
    session.execute(sa.select(Project.id, Project.state.DRAFT).order_by(Project.state.LIVE))
    session.execute(sa.select(sa.case((Project.state.DRAFT, "draft"), else_="other")))
    session.query(Project).filter(Project.state.LIVE)
    db.session.scalars(db.select(Project).where(Project.state.GONE))
    # many objects at once (DESIGN §5): a list or a select() of the model
    assert_type(Project.state.withdraw.perform_all([Project()], None), BulkResult)
    assert_type(Project.state.withdraw.perform_all(query, data={"reason": "x"}, session=session), BulkResult)
    # the clause's own methods, through the clause
    assert_type(Project.state.DRAFT.__clause_element__().label("draft"), sa.Label[bool])


# -- the extension's view guard ------------------------------------------------------------


@statemgr.guard(Project.state.publish)
def publish_project(obj: Project, form: PublishForm) -> str:
    return form.note.data or ""


@statemgr.guard(Project.state.withdraw, lookup="project_id")
def withdraw_project(obj: Project, form: None, **kwargs: t.Any) -> str:
    return ""


assert_type(publish_project, t.Callable[..., str])
