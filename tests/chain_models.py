"""Models for the ``requires`` and ``cascade`` tests and the chain benchmark.

A project has two managers (``state`` and ``review``), sessions under it and
comments under each session. Deleting a project locks its review (another
manager on the same object) and deletes its sessions, which delete their
comments.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

import sqlalchemy as sa
from apps import make_engine
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from flask_statemgr import State, StateManager, Transition

#: what the execute hooks stamp, fixed (and naive, as SQLite keeps no time
#: zone) so tests can compare it
DELETED_AT = datetime.datetime(2026, 1, 1)


class Base(orm.DeclarativeBase):
    pass


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    roles: frozenset[str] = frozenset()


OWNER = User(1)
STRANGER = User(2)
HOST = User(3)


class BookingError(Exception):
    """A room booking refused to be cancelled (an execute hook failing)."""


class ReviewState(StateManager):
    PENDING = State("pending", "Pending")
    APPROVED = State("approved", "Approved")
    REJECTED = State("rejected", "Rejected")
    LOCKED = State("locked", "Locked")
    DECIDED = State({APPROVED, REJECTED}, "Decided")
    SIGNED = APPROVED.conditional("Signed off")

    approve = Transition(PENDING, APPROVED, "Approve")
    reject = Transition(PENDING, REJECTED, "Reject")
    lock = Transition({PENDING, APPROVED, REJECTED}, LOCKED, "Lock")


class ProjectState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    WITHDRAWN = State(3, "Withdrawn")
    DELETED = State(4, "Deleted")

    publish = Transition(DRAFT, PUBLISHED, "Publish", requires={"review": ReviewState.APPROVED})
    archive = Transition(DRAFT, WITHDRAWN, "Archive", requires={"review": ReviewState.DECIDED})
    withdraw = Transition(PUBLISHED, WITHDRAWN, "Withdraw")
    republish = Transition(WITHDRAWN, PUBLISHED, "Republish", requires={"review": ReviewState.SIGNED})
    delete = Transition(
        {DRAFT, PUBLISHED, WITHDRAWN},
        DELETED,
        "Delete",
        roles={"owner"},
        cascade={"review": "lock", "sessions": "delete"},
    )


class SessionState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    ARCHIVED = State(3, "Archived")
    DELETED = State(4, "Deleted")
    ACTIVE = State({DRAFT, PUBLISHED}, "Active")

    publish = Transition(DRAFT, PUBLISHED, "Publish", requires={"project.state": ProjectState.PUBLISHED})
    archive = Transition(ACTIVE, ARCHIVED, "Archive")
    delete = Transition(
        {DRAFT, PUBLISHED, ARCHIVED},
        DELETED,
        "Delete",
        roles={"owner"},
        cascade={"comments": "delete"},
    )


class CommentState(StateManager):
    VISIBLE = State(1, "Visible")
    DELETED = State(2, "Deleted")
    #: kept for moderation: not deletable
    HIDDEN = State(3, "Hidden")

    # comments of an archived session are frozen
    delete = Transition(VISIBLE, DELETED, "Delete", roles={"owner"}, requires={"session.state": SessionState.ACTIVE})


class Project(Base):
    __tablename__ = "chain_project"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100), default="")
    owner_id: Mapped[int] = mapped_column(default=OWNER.id)
    reviewer_id: Mapped[int | None]
    _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
    state = ProjectState("_state")
    _review: Mapped[str] = ReviewState.column(default=ReviewState.PENDING)
    review = ReviewState("_review")
    sessions: Mapped[list[Session]] = orm.relationship(back_populates="project", order_by="Session.id")

    def roles_for(self, user: User | None) -> set[str]:
        if user is None:
            return set()
        return set(user.roles) | ({"owner"} if user.id == self.owner_id else set())

    @ReviewState.SIGNED.validator
    def _signed_off(self) -> bool:
        return self.reviewer_id is not None


class Session(Base):
    __tablename__ = "chain_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(sa.ForeignKey("chain_project.id"), index=True)
    project: Mapped[Project | None] = orm.relationship(back_populates="sessions")
    #: a session hosted by someone else belongs to that host, not the project owner
    host_id: Mapped[int | None]
    booking: Mapped[str] = mapped_column(sa.String(20), default="")
    deleted_at: Mapped[datetime.datetime | None]
    _state: Mapped[int] = SessionState.column(default=SessionState.DRAFT)
    state = SessionState("_state")
    comments: Mapped[list[Comment]] = orm.relationship(back_populates="session", order_by="Comment.id")

    def roles_for(self, user: User | None) -> set[str]:
        if user is None:
            return set()
        if self.host_id is not None:
            return set(user.roles) | ({"owner"} if user.id == self.host_id else set())
        return self.project.roles_for(user) if self.project is not None else set(user.roles)

    @SessionState.delete.execute
    def _cancel_booking(self, data: dict[str, t.Any]) -> None:
        if self.booking == "non-refundable":
            raise BookingError(f"Session {self.id}: the room booking cannot be cancelled")
        self.booking = ""
        self.deleted_at = DELETED_AT


class Comment(Base):
    __tablename__ = "chain_comment"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(sa.ForeignKey("chain_session.id"), index=True)
    session: Mapped[Session] = orm.relationship(back_populates="comments")
    pinned: Mapped[bool] = mapped_column(default=False)
    _state: Mapped[int] = CommentState.column(default=CommentState.VISIBLE)
    state = CommentState("_state")

    def roles_for(self, user: User | None) -> set[str]:
        return self.session.roles_for(user)

    @CommentState.delete.precondition
    def _not_pinned(self) -> bool | str:
        return not self.pinned or "Pinned comments cannot be deleted"


def create_database(url: str, **engine_options: t.Any) -> sa.Engine:
    """An engine configured for the engine's guarantees, with the tables
    created."""
    engine = make_engine(url, **engine_options)
    Base.metadata.create_all(engine)
    return engine


def drop_database(engine: sa.Engine) -> None:
    Base.metadata.drop_all(engine)
    engine.dispose()


def add_project(session: orm.Session, sessions: int = 0, comments: int = 0, **columns: t.Any) -> Project:
    """A project owned by :data:`OWNER` with ``sessions`` sessions of
    ``comments`` comments each, inserted in bulk and committed."""
    project = Project(**columns)
    session.add(project)
    session.flush()
    if sessions:
        session.execute(sa.insert(Session), [{"project_id": project.id} for _ in range(sessions)])
    if comments:
        ids = session.scalars(sa.select(Session.id).where(Session.project_id == project.id)).all()
        session.execute(sa.insert(Comment), [{"session_id": i} for i in ids for _ in range(comments)])
    session.commit()
    return project
