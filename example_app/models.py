"""The publishing domain: users, projects with a publication state and a
review, and sessions under projects."""

from __future__ import annotations

import datetime
import typing as t

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import FlaskForm
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from flask_statemgr import State, StateManager, StateMgr, Transition


class Base(orm.DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
statemgr = StateMgr(db=db)


def utcnow() -> datetime.datetime:
    """Naive UTC, as the columns store it on SQLite and PostgreSQL alike."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


# -- forms: what the user must supply for a transition --------------------------


class PublishForm(FlaskForm):
    publish_at = DateTimeLocalField(
        _l("Publish at (UTC)"),
        validators=[DataRequired()],
        description=_l("The project goes live at this time; earlier is immediately."),
    )

    def validate_publish_at(self, field: DateTimeLocalField) -> None:
        # A rule the JSON Schema cannot state: the server is the authority.
        if field.data is not None and field.data > utcnow() + datetime.timedelta(days=365):
            raise ValidationError(_l("Schedule at most a year ahead."))


class WithdrawForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason"),
        validators=[DataRequired(), Length(min=10, max=500)],
        description=_l("Shown to readers instead of the project."),
    )


class RejectForm(FlaskForm):
    category = SelectField(
        _l("Problem"), choices=[("Content", _l("Content")), ("Legal", _l("Legal")), ("Style", _l("Style"))]
    )
    comment = TextAreaField(_l("Comment"), validators=[Optional(), Length(max=500)])
    notify = BooleanField(_l("Notify the owner"), default=True)


class ScheduleForm(FlaskForm):
    """Where and when a session takes place: every kind of field the JS
    client renders, with rules it checks in the browser before the server
    checks them again."""

    day = DateField(_l("Day"), validators=[DataRequired()])
    room = StringField(
        _l("Room"),
        validators=[
            DataRequired(),
            Regexp(r"^[A-Z]-\d{3}$", message=_l("Write a capital letter, a hyphen and three digits, such as B-204.")),
        ],
        description=_l("A building letter and a room number, such as B-204."),
    )
    seats = IntegerField(_l("Seats"), validators=[InputRequired(), NumberRange(min=1, max=500)])
    kind = SelectField(
        _l("Format"),
        choices=[("Talk", _l("Talk")), ("Workshop", _l("Workshop")), ("Panel", _l("Panel"))],
        default="Talk",
    )
    tracks = SelectMultipleField(
        _l("Tracks"),
        choices=[("Design", _l("Design")), ("Engineering", _l("Engineering")), ("Editorial", _l("Editorial"))],
        validators=[DataRequired()],
        description=_l("Hold Ctrl (⌘ on a Mac) to choose several."),
    )
    recorded = BooleanField(_l("Recorded"), default=True)
    notes = TextAreaField(_l("Notes for the speaker"), validators=[Optional(), Length(max=300)])


# -- state managers ----------------------------------------------------------------


class ReviewState(StateManager):
    PENDING = State("pending", _l("Pending"))
    APPROVED = State("approved", _l("Approved"))
    REJECTED = State("rejected", _l("Rejected"))

    approve = Transition(PENDING, APPROVED, _l("Approve"), roles={"reviewer"})
    reject = Transition(PENDING, REJECTED, _l("Reject"), roles={"reviewer"}, form=RejectForm)
    resubmit = Transition(REJECTED, PENDING, _l("Resubmit"), roles={"owner", "editor"})


class ProjectState(StateManager):
    DRAFT = State(1, _l("Draft"))
    PUBLISHED = State(2, _l("Published"), description=_l("Scheduled or live"))
    WITHDRAWN = State(3, _l("Withdrawn"))
    DELETED = State(4, _l("Deleted"))
    GONE = State({WITHDRAWN, DELETED}, _l("Gone"))
    LIVE = PUBLISHED.conditional(_l("Live"))

    publish = Transition(
        DRAFT,
        PUBLISHED,
        _l("Publish"),
        _l("Schedule the project for readers"),
        roles={"owner", "editor"},
        form=PublishForm,
        requires={"review": ReviewState.APPROVED},
    )
    withdraw = Transition(PUBLISHED, WITHDRAWN, _l("Withdraw"), roles={"owner", "editor"}, form=WithdrawForm)
    # a draft shows no sessions: the scheduled ones go back to draft with it
    redraft = Transition(
        WITHDRAWN,
        DRAFT,
        _l("Back to draft"),
        roles={"owner", "editor"},
        cascade={"scheduled_sessions": "unpublish"},
    )
    delete = Transition(
        {DRAFT, PUBLISHED, WITHDRAWN},
        DELETED,
        _l("Delete"),
        _l("Delete the project and its sessions"),
        roles={"owner"},
        cascade={"sessions": "delete"},
    )


class SessionState(StateManager):
    DRAFT = State(1, _l("Draft"))
    PUBLISHED = State(2, _l("Published"))
    DELETED = State(3, _l("Deleted"))

    publish = Transition(
        DRAFT,
        PUBLISHED,
        _l("Schedule"),
        _l("Give the session a time and a room, and show it"),
        roles={"owner", "editor"},
        form=ScheduleForm,
        requires={"project.state": ProjectState.PUBLISHED},
    )
    unpublish = Transition(PUBLISHED, DRAFT, _l("Unpublish"), roles={"owner", "editor"})
    delete = Transition({DRAFT, PUBLISHED}, DELETED, _l("Delete"), roles={"owner"})


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
    sessions: Mapped[list[Session]] = orm.relationship(back_populates="project", order_by="Session.id")
    #: the sessions a redraft takes back (a deleted one stays deleted)
    scheduled_sessions: Mapped[list[Session]] = orm.relationship(
        primaryjoin=lambda: sa.and_(Session.project_id == Project.id, Session._state == SessionState.PUBLISHED.value),
        viewonly=True,
        order_by="Session.id",
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
    def _has_summary(self) -> bool | t.Any:
        return bool(self.summary.strip()) or _l("“%(title)s” needs a summary before it is published", title=self.title)

    @ReviewState.approve.precondition
    @ReviewState.reject.precondition
    @ReviewState.resubmit.precondition
    def _not_deleted(self) -> bool | t.Any:
        return not self.state.DELETED or _l("A deleted project is not reviewed")

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
