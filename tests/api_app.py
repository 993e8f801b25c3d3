"""A small app used by the extension's tests: projects with two managers,
sessions under projects, three users."""

from __future__ import annotations

import datetime
import typing as t

import sqlalchemy as sa
from apps import User, database
from flask import Flask, g, request
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import DateTimeLocalField, Form, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from flask_statemgr import State, StateManager, StateMgr, Transition

db = database()
CONFIG: dict[str, t.Any] = {}

ALICE = User(1, "alice", frozenset({"editor", "owner"}))
BOB = User(2, "bob", frozenset({"editor"}))
CAROL = User(3, "carol")
USERS = {u.name: u for u in (ALICE, BOB, CAROL)}


class PublishForm(Form):
    publish_at = DateTimeLocalField("Publish at", validators=[Optional()], format="%Y-%m-%dT%H:%M")
    note = StringField("Note", validators=[Length(max=20)])


class WithdrawForm(Form):
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(min=10, max=500)])


class ReviewState(StateManager):
    PENDING = State("pending", "Pending")
    APPROVED = State("approved", "Approved")
    approve = Transition(PENDING, APPROVED, "Approve", roles={"editor"})


class ProjectState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    WITHDRAWN = State(3, "Withdrawn")
    DELETED = State(4, "Deleted", description="Returns 410")
    GONE = State({WITHDRAWN, DELETED}, "Gone")
    LIVE = PUBLISHED.conditional("Live")

    publish = Transition(
        DRAFT,
        PUBLISHED,
        "Publish",
        roles={"editor"},
        form=PublishForm,
        requires={"review": ReviewState.APPROVED},
    )
    withdraw = Transition(PUBLISHED, WITHDRAWN, "Withdraw", roles={"editor"}, form=WithdrawForm)
    delete = Transition(
        {DRAFT, PUBLISHED, WITHDRAWN},
        DELETED,
        "Delete",
        roles={"owner"},
        cascade={"sessions": "delete"},
    )


class SessionState(StateManager):
    DRAFT = State(1, "Draft")
    DELETED = State(2, "Deleted")
    delete = Transition(DRAFT, DELETED, "Delete", roles={"owner"})


class Project(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "project"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    owner_id: Mapped[int] = mapped_column(default=1)
    private: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[datetime.datetime | None]
    _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    state = ProjectState("_state")
    _review: Mapped[str] = ReviewState.column(default=ReviewState.PENDING)
    review = ReviewState("_review")
    sessions: Mapped[list[Session]] = orm.relationship(back_populates="project", order_by="Session.id")

    def __str__(self) -> str:
        return self.title or f"Project {self.id}"

    def roles_for(self, user: User | None) -> set[str]:
        if user is None:
            return set()
        roles = set(user.roles - {"owner"})
        if user.id == self.owner_id and "owner" in user.roles:
            roles.add("owner")
        return roles

    @ProjectState.publish.precondition
    def _has_title(self) -> bool | str:
        return bool(self.title) or "A title is required"

    @ProjectState.publish.execute
    def _stamp(self, data: dict[str, t.Any]) -> None:
        self.published_at = data.get("publish_at") or datetime.datetime(2026, 1, 1)

    @ProjectState.LIVE.validator
    def _is_live(self) -> bool:
        return self.published_at is not None

    @ProjectState.LIVE.expression
    @classmethod
    def _live_clause(cls) -> sa.ColumnElement[bool]:
        return cls.published_at.is_not(None)


class Session(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "session"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("project.id"))
    project: Mapped[Project] = orm.relationship(back_populates="sessions")
    _state: Mapped[int] = SessionState.column(default=SessionState.DRAFT)
    state = SessionState("_state")

    def roles_for(self, user: User | None) -> set[str]:
        return self.project.roles_for(user)


def setup(app: Flask, statemgr: StateMgr) -> None:
    statemgr.expose(Project, name="project", can_view=lambda obj, user: not obj.private or user is not None)
    statemgr.expose(Session)

    @app.before_request
    def load_user() -> None:
        g.user = USERS.get(request.headers.get("X-User", ""))
