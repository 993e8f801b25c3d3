"""Models and helpers shared by the core's tests (their fixtures,
``core_engine`` and ``core_db``, are in conftest.py).

Projects carry two managers (``state`` and ``review``) and own chapters; the
``Document`` family (an abstract base and two subclasses) and ``Article``
reuse managers to test how hooks are collected per host class.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import typing as t

import sqlalchemy as sa
from apps import User
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import Form, IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from flask_statemgr import State, StateManager, Transition

#: what execute hooks stamp, so tests can compare exactly
STAMP = datetime.datetime(2026, 1, 1, 12, 0)


class Base(orm.DeclarativeBase):
    pass


class HookFailure(Exception):
    """What an execute hook raises when the data asks it to (``fail``)."""


@dataclasses.dataclass(frozen=True)
class AnonymousUser:
    """What Flask-Login's ``current_user`` is before login."""

    is_anonymous: bool = True


ALICE = User(1, "alice", frozenset({"editor", "owner", "reviewer"}))
BOB = User(2, "bob", frozenset({"editor"}))
CAROL = User(3, "carol")


class PublishForm(Form):
    note = StringField("Note", validators=[Optional(), Length(max=20)])
    priority = IntegerField("Priority", validators=[DataRequired(), NumberRange(1, 5)])


class ReviewState(StateManager):
    PENDING = State("pending", "Pending")
    APPROVED = State("approved", "Approved")
    LOCKED = State("locked", "Locked")
    UNLOCKED = PENDING | APPROVED

    approve = Transition(PENDING, APPROVED, "Approve", roles={"reviewer"})
    lock = Transition(UNLOCKED, LOCKED, "Lock")


class ProjectState(StateManager):
    """The design card's example, plus what coaster's suite exercises: a
    group made with ``|``, conditional states with validators given either
    way, and transitions from conditional states."""

    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    WITHDRAWN = State(3, "Withdrawn")
    DELETED = State(4, "Deleted", description="Returns 410", icon="trash")
    GONE = State({WITHDRAWN, DELETED}, "Gone")
    UNPUBLISHED = DRAFT | WITHDRAWN
    #: validator and expression declared on the model
    LIVE = PUBLISHED.conditional("Live")
    #: validator and expression given here
    PINNED = PUBLISHED.conditional(
        "Pinned",
        validator=lambda project: project.pinned,
        expression=lambda cls: cls.pinned.is_(True),
    )

    #: a group with a conditional member: WITHDRAWN, or PUBLISHED and live
    REDRAFTABLE = State({WITHDRAWN, LIVE}, "Redraftable")

    publish = Transition(DRAFT, PUBLISHED, "Publish", roles={"editor"})
    withdraw = Transition(PUBLISHED, WITHDRAWN, "Withdraw", "Take it offline", roles={"editor"})
    unpin = Transition(PINNED, DRAFT, "Unpin and redraft")
    redraft = Transition(REDRAFTABLE, DRAFT, "Redraft")
    archive = Transition({WITHDRAWN, LIVE}, DELETED, "Archive")
    delete = Transition(
        {DRAFT, PUBLISHED, WITHDRAWN},
        DELETED,
        "Delete",
        roles={"owner"},
        cascade={"chapters": "delete"},
    )
    submit = Transition(
        DRAFT,
        PUBLISHED,
        "Submit",
        form=PublishForm,
        requires={"review": ReviewState.APPROVED},
        cascade={"review": "lock"},
        inline_fields=("note",),
    )


class ChapterState(StateManager):
    DRAFT = State(1, "Draft")
    DELETED = State(2, "Deleted")
    #: a chapter no cascade may delete
    LOCKED = State(3, "Locked")
    delete = Transition(DRAFT, DELETED, "Delete", roles={"owner"})


class Project(Base):
    __tablename__ = "core_project"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    owner_id: Mapped[int] = mapped_column(default=1)
    pinned: Mapped[bool] = mapped_column(default=False)
    published_at: Mapped[datetime.datetime | None]
    executed: Mapped[str | None] = mapped_column(sa.String(200))
    _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    state = ProjectState("_state")
    _review: Mapped[str] = ReviewState.column(default=ReviewState.PENDING)
    review = ReviewState(_review)
    chapters: Mapped[list[Chapter]] = orm.relationship(back_populates="project", order_by="Chapter.id")

    def roles_for(self, user: User | None) -> set[str]:
        if user is None or not isinstance(user, User):
            return set()
        roles = set(user.roles - {"owner"})
        if user.id == self.owner_id and "owner" in user.roles:
            roles.add("owner")
        return roles

    @ProjectState.publish.precondition
    def _has_title(self) -> bool | str:
        return bool(self.title) or "A title is required"

    @ProjectState.publish.precondition
    def _not_forbidden(self) -> bool:
        return self.title != "forbidden"

    @ProjectState.publish.execute
    @ProjectState.submit.execute
    def _stamp(self, data: dict[str, t.Any]) -> None:
        self.published_at = STAMP
        self.executed = repr(sorted(data.items()))

    @ProjectState.withdraw.execute
    @ProjectState.delete.execute
    def _fail_on_request(self, data: dict[str, t.Any]) -> None:
        if data.get("fail"):
            self.title = "changed by the hook"
            raise HookFailure(data["fail"])

    @ProjectState.LIVE.validator
    def _is_live(self) -> bool:
        return self.published_at is not None

    @ProjectState.LIVE.expression
    @classmethod
    def _live_clause(cls) -> sa.ColumnElement[bool]:
        return cls.published_at.is_not(None)


class Chapter(Base):
    __tablename__ = "core_chapter"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("core_project.id"))
    project: Mapped[Project] = orm.relationship(back_populates="chapters")
    _state: Mapped[int] = ChapterState.column(default=ChapterState.DRAFT)
    state = ChapterState("_state")

    def roles_for(self, user: User | None) -> set[str]:
        return self.project.roles_for(user)


class Article(Base):
    """Reuses ``ProjectState`` with hooks of its own (and none of
    Project's)."""

    __tablename__ = "core_article"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    published_at: Mapped[datetime.datetime | None]
    pinned: Mapped[bool] = mapped_column(default=False)
    status: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    state = ProjectState("status")

    def roles_for(self, user: User | None) -> set[str]:
        return {"editor", "owner"}

    @ProjectState.publish.execute
    def _log(self, data: dict[str, t.Any]) -> None:
        self.title = "published article"

    @ProjectState.LIVE.validator
    def _never_live(self) -> bool:
        return False

    @ProjectState.LIVE.expression
    @classmethod
    def _never_live_clause(cls) -> sa.ColumnElement[bool]:
        return sa.false()


class DocState(StateManager):
    NEW = State("new", "New")
    DONE = State("done", "Done")
    finish = Transition(NEW, DONE, "Finish")


class Document(Base):
    """An abstract base whose hooks its subclasses inherit."""

    __abstract__ = True
    id: Mapped[int] = mapped_column(primary_key=True)
    notes: Mapped[str] = mapped_column(sa.String(200), default="")
    _state: Mapped[str] = DocState.column(default=DocState.NEW)
    state = DocState("_state")

    @DocState.finish.execute
    def _note_base(self, data: dict[str, t.Any]) -> None:
        self.notes += "base;"


class Memo(Document):
    __tablename__ = "core_memo"


class Letter(Document):
    __tablename__ = "core_letter"

    @DocState.finish.precondition
    def _signed(self) -> bool | str:
        return "signed" in self.notes or "The letter is not signed"

    @DocState.finish.execute
    def _note_letter(self, data: dict[str, t.Any]) -> None:
        self.notes += "letter;"


class Minute(Document):
    """Overrides the base's hook without marking it: no longer a hook."""

    __tablename__ = "core_minute"

    def _note_base(self, data: dict[str, t.Any]) -> None:
        self.notes += "minute;"


class Colour(enum.Enum):
    RED = "r"
    GREEN = "g"
    BLUE = "b"


class ColourState(StateManager, enum=Colour):
    RED = State(Colour.RED, "Red")
    GREEN = State()
    BLUE = State(title="Blue")
    WARM = State({RED}, "Warm")
    paint = Transition(RED, GREEN, "Paint")


class SlotState(StateManager):
    FREE = State(1, "Free")
    TAKEN = State(2, "Taken")

    take = Transition(FREE, TAKEN, "Take")


class Slot(Base):
    """A composite primary key."""

    __tablename__ = "core_slot"
    shelf: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    _state: Mapped[int] = SlotState.column(default=SlotState.FREE)
    state = SlotState("_state")


class Ticket:
    """A plain class, not mapped: performing only changes the attribute."""

    def __init__(self, title: str = "") -> None:
        self.title = title
        self._state = ProjectState.DRAFT.value
        self.published_at: datetime.datetime | None = None
        self.executed: str | None = None
        self.pinned = False

    def roles_for(self, user: User | None) -> set[str]:
        return {"editor"} if user is not None else set()

    state = ProjectState("_state")

    @ProjectState.publish.execute
    def _stamp(self, data: dict[str, t.Any]) -> None:
        self.executed = "ticket"
        if data.get("fail"):
            raise HookFailure(data["fail"])

    @ProjectState.LIVE.validator
    def _is_live(self) -> bool:
        return self.published_at is not None


# -- helpers -------------------------------------------------------------------


def add_project(session: orm.Session, **kwargs: t.Any) -> Project:
    """A committed project (titled, so ``publish``'s preconditions hold)."""
    kwargs.setdefault("title", "Project")
    project = Project(**kwargs)
    session.add(project)
    session.commit()
    return project


def history_rows(engine: sa.Engine) -> list[dict[str, t.Any]]:
    """The history table as a fresh connection sees it."""
    from flask_statemgr.tables import history_table

    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.select(history_table).order_by(history_table.c.id)).mappings()]


def count_statements(engine: sa.Engine, run: t.Callable[[], t.Any]) -> collections.Counter[str]:
    """Statements ``run`` sends, by first keyword."""
    seen: collections.Counter[str] = collections.Counter()

    def listener(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        seen[statement.lstrip().split(None, 1)[0].upper()] += 1

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    return seen
