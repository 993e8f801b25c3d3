"""The publishing domain: users, projects with a publication state and a
review, and sessions under projects."""

from __future__ import annotations

import datetime
import typing as t

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import (
    BooleanField, DateField, DateTimeLocalField, IntegerField, SelectField,
    SelectMultipleField, StringField, TextAreaField,
)
from wtforms.validators import (
    DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError,
)

from flask_statemgr import State, StateManager, StateMgr, Transition


class Base(orm.DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
statemgr = StateMgr(db=db)

def utcnow() -> datetime.datetime:
    """Naive UTC, as the columns store it on SQLite and PostgreSQL alike."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# -- forms: what the user must supply for a transition --------------------------


class PublishForm(FlaskForm):
    publish_at = DateTimeLocalField(
        "Publish at (UTC)",
        validators=[DataRequired()],
        description="The project goes live at this time; earlier is immediately.",
    )

    def validate_publish_at(self, field: DateTimeLocalField) -> None:
        # A rule the JSON Schema cannot state: the server is the authority.
        if field.data is not None and field.data > utcnow() + datetime.timedelta(days=365):
            raise ValidationError("Schedule at most a year ahead.")


class WithdrawForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        validators=[DataRequired(), Length(min=10, max=500)],
        description="Shown to readers instead of the project.",
    )


class RejectForm(FlaskForm):
    category = SelectField(
        "Problem", choices=["Content", "Legal", "Style"]
    )
    comment = TextAreaField("Comment", validators=[Optional(), Length(max=500)])
    notify = BooleanField("Notify the owner", default=True)


class ScheduleForm(FlaskForm):
    """Where and when a session takes place: every kind of field the JS
    client renders, with rules it checks in the browser before the server
    checks them again."""

    day = DateField("Day", validators=[DataRequired()])
    room = StringField(
        "Room",
        validators=[DataRequired(), Regexp(r"^[A-Z]-\d{3}$")],
        description="A building letter and a room number, such as B-204.",
    )
    seats = IntegerField("Seats", validators=[InputRequired(), NumberRange(min=1, max=500)])
    kind = SelectField("Format", choices=["Talk", "Workshop", "Panel"], default="Talk")
    tracks = SelectMultipleField(
        "Tracks",
        choices=["Design", "Engineering", "Editorial"],
        validators=[DataRequired()],
        description="Hold Ctrl (⌘ on a Mac) to choose several.",
    )
    recorded = BooleanField("Recorded", default=True)
    notes = TextAreaField("Notes for the speaker", validators=[Optional(), Length(max=300)])


# -- state managers ----------------------------------------------------------------


class ReviewState(StateManager):
    PENDING = State("pending", "Pending")
    APPROVED = State("approved", "Approved")
    REJECTED = State("rejected", "Rejected")

    approve = Transition(PENDING, APPROVED, "Approve", roles={"reviewer"})
    reject = Transition(PENDING, REJECTED, "Reject", roles={"reviewer"}, form=RejectForm)
    resubmit = Transition(REJECTED, PENDING, "Resubmit", roles={"owner", "editor"})


class ProjectState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published", description="Scheduled or live")
    WITHDRAWN = State(3, "Withdrawn")
    DELETED = State(4, "Deleted")
    GONE = State({WITHDRAWN, DELETED}, "Gone")
    LIVE = PUBLISHED.conditional("Live")

    publish = Transition(
        DRAFT, PUBLISHED, "Publish", "Schedule the project for readers",
        roles={"owner", "editor"}, form=PublishForm, requires={"review": ReviewState.APPROVED},
    )
    withdraw = Transition(PUBLISHED, WITHDRAWN, "Withdraw", roles={"owner", "editor"}, form=WithdrawForm)
    redraft = Transition(WITHDRAWN, DRAFT, "Back to draft", roles={"owner", "editor"})
    delete = Transition(
        {DRAFT, PUBLISHED, WITHDRAWN}, DELETED, "Delete", "Delete the project and its sessions",
        roles={"owner"}, cascade={"sessions": "delete"},
    )


class SessionState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    DELETED = State(3, "Deleted")

    publish = Transition(
        DRAFT, PUBLISHED, "Schedule", "Give the session a time and a room, and show it",
        roles={"owner", "editor"}, form=ScheduleForm,
        requires={"project.state": ProjectState.PUBLISHED},
    )
    unpublish = Transition(PUBLISHED, DRAFT, "Unpublish", roles={"owner", "editor"})
    delete = Transition({DRAFT, PUBLISHED}, DELETED, "Delete", roles={"owner"})


# -- models ---------------------------------------------------------------------------


class User(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    #: owner, editor, reviewer or viewer
    role: Mapped[str] = mapped_column(sa.String(20))

    def __str__(self) -> str:
        return self.name


class Project(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    owner: Mapped[User] = orm.relationship()
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    publish_at: Mapped[datetime.datetime | None]
    withdraw_reason: Mapped[str | None] = mapped_column(sa.Text)
    _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    state = ProjectState("_state")
    _review: Mapped[str] = ReviewState.column(default=ReviewState.PENDING)
    review = ReviewState("_review")
    sessions: Mapped[list[Session]] = orm.relationship(
        back_populates="project", order_by="Session.id"
    )

    def __str__(self) -> str:
        return self.title

    def roles_for(self, user: User | None) -> set[str]:
        """The owner of this project is its ``owner``; editors and reviewers
        hold their role on every project."""
        if user is None:
            return set()
        roles = {"viewer"}
        if user.id == self.owner_id:
            roles.add("owner")
        if user.role in ("editor", "reviewer"):
            roles.add(user.role)
        return roles

    @ProjectState.publish.precondition
    def _has_summary(self) -> bool | str:
        return bool(self.summary.strip()) or f"“{self.title}” needs a summary before it is published"

    @ProjectState.publish.execute
    def _schedule(self, data: dict[str, t.Any]) -> None:
        self.publish_at = data["publish_at"]
        self.withdraw_reason = None

    @ProjectState.withdraw.execute
    def _keep_reason(self, data: dict[str, t.Any]) -> None:
        self.withdraw_reason = data["reason"]

    @ProjectState.redraft.execute
    def _unschedule(self, data: dict[str, t.Any]) -> None:
        self.publish_at = None

    @ProjectState.LIVE.validator
    def _is_live(self) -> bool:
        return self.publish_at is not None and self.publish_at <= utcnow()

    @ProjectState.LIVE.expression
    @classmethod
    def _live_clause(cls) -> sa.ColumnElement[bool]:
        return sa.and_(cls.publish_at.is_not(None), cls.publish_at <= utcnow())


class Session(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"))
    project: Mapped[Project] = orm.relationship(back_populates="sessions")
    title: Mapped[str] = mapped_column(sa.String(200))
    # set by scheduling (see ScheduleForm)
    day: Mapped[datetime.date | None]
    room: Mapped[str | None] = mapped_column(sa.String(10))
    seats: Mapped[int | None]
    kind: Mapped[str | None] = mapped_column(sa.String(20))
    tracks: Mapped[str | None] = mapped_column(sa.String(100))
    recorded: Mapped[bool] = mapped_column(default=False)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    _state: Mapped[int] = SessionState.column(default=SessionState.DRAFT)
    state = SessionState("_state")

    def __str__(self) -> str:
        return self.title

    def roles_for(self, user: User | None) -> set[str]:
        return self.project.roles_for(user)

    @SessionState.publish.execute
    def _schedule(self, data: dict[str, t.Any]) -> None:
        self.day = data["day"]
        self.room = data["room"]
        self.seats = data["seats"]
        self.kind = data["kind"]
        self.tracks = ", ".join(data["tracks"])
        self.recorded = data["recorded"]
        self.notes = data["notes"] or None


def can_view_project(project: Project, user: User | None) -> bool:
    """Everyone logged in sees every project; anonymous readers see live
    ones."""
    return user is not None or bool(project.state.LIVE)


def can_view_session(session: Session, user: User | None) -> bool:
    return user is not None or (bool(session.state.PUBLISHED) and bool(session.project.state.LIVE))


statemgr.expose(Project, name="project", can_view=can_view_project)
statemgr.expose(Session, name="session", can_view=can_view_session)
