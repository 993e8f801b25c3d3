"""An app whose model moves two managers with one transition, the way
coaster's stacked ``@state.transition`` / ``@reviewstate.transition``
decorators do: ``publish`` and ``undo`` cascade to internal transitions of
``review`` on the same object."""

from __future__ import annotations

import datetime
import typing as t

import sqlalchemy as sa
from apps import User, database
from flask import Flask, g, render_template_string, request
from sqlalchemy.orm import Mapped, mapped_column

from flask_statemgr import State, StateManager, StateMgr, Transition

db = database()
CONFIG: dict[str, t.Any] = {}

#: an editor who is no reviewer: the internal halves' roles are not hers
EDNA = User(1, "edna", frozenset({"editor"}))
RITA = User(2, "rita", frozenset({"reviewer"}))
USERS = {u.name: u for u in (EDNA, RITA)}


class ReviewState(StateManager):
    UNSUBMITTED = State(0, "Unsubmitted")
    PENDING = State(1, "Pending")
    REVIEWED = State(2, "Reviewed")

    submit = Transition(UNSUBMITTED, PENDING, "Submit for review", roles={"reviewer"}, internal=True)
    unsubmit = Transition(PENDING, UNSUBMITTED, "Take back", internal=True)
    review = Transition(PENDING, REVIEWED, "Review", roles={"reviewer"})


class PostState(StateManager):
    DRAFT = State(0, "Draft")
    PENDING = State(1, "Pending")
    PUBLISHED = State(2, "Published")
    UNPUBLISHED = State({DRAFT, PENDING}, "Unpublished")
    RECENT = PUBLISHED.conditional("Recently published")

    publish = Transition(UNPUBLISHED, PUBLISHED, "Publish", roles={"editor"}, cascade={"review": "submit"})
    undo = Transition(RECENT, PENDING, "Undo", roles={"editor"}, cascade={"review": "unsubmit"})


#: what the permission hook of the internal ``submit`` was asked, which must
#: stay empty: the cause's permission covers its internal steps
ASKED: list[tuple[t.Any, t.Any]] = []


@ReviewState.submit.permission
def _never_asked(obj: t.Any, user: t.Any) -> bool:
    ASKED.append((obj, user))
    return False


class Post(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "coaster_post"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.String(200), default="")
    published_at: Mapped[datetime.datetime | None]
    _state: Mapped[int] = PostState.column(default=PostState.DRAFT)
    state = PostState("_state")
    _review: Mapped[int] = ReviewState.column(default=ReviewState.UNSUBMITTED)
    review = ReviewState("_review")

    def roles_for(self, user: User | None) -> set[str]:
        return set(user.roles) if user is not None else set()

    @ReviewState.submit.precondition
    def _has_body(self) -> bool | str:
        return bool(self.body) or "A post needs a body before it is reviewed"

    @PostState.publish.execute
    def _stamp(self, data: dict[str, t.Any]) -> None:
        self.published_at = datetime.datetime(2026, 1, 1)

    @PostState.RECENT.validator
    def _is_recent(self) -> bool:
        return self.published_at is not None


def setup(app: Flask, statemgr: StateMgr) -> None:
    statemgr.expose(Post, name="post")

    @app.before_request
    def load_user() -> None:
        g.user = USERS.get(request.headers.get("X-User", ""))

    @app.get("/posts/<int:id>")
    def post_page(id: int) -> str:
        # what the JS client renders by itself, for the browser test
        return render_template_string(
            '<!doctype html><div data-statemgr="post:{{ id }}"></div>{{ statemgr_script() }}', id=id
        )
