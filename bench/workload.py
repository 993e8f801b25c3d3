"""The one workflow every system implements, so every benchmark does the same
work on each.

Five states and six transitions; every transition needs a role, and
``publish`` also needs a title (a precondition)::

    submit    DRAFT             -> PENDING    author
    publish   DRAFT | PENDING   -> PUBLISHED  editor, and a title
    reject    PENDING           -> DRAFT      editor
    withdraw  PUBLISHED         -> WITHDRAWN  editor
    restore   WITHDRAWN         -> DRAFT      editor
    archive   PUBLISHED | WITHDRAWN -> ARCHIVED  owner

A user's roles on a document come from ``doc.roles_for(user)`` in every
system (here simply ``user.roles``). ``publish``, ``withdraw``, ``restore``
is a cycle, which the perform benchmarks repeat.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as t

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from flask_statemgr import State, StateManager, Transition

#: the state values, shared by every system (names in lower case for peers
#: that name states by string)
DRAFT, PENDING, PUBLISHED, WITHDRAWN, ARCHIVED = 1, 2, 3, 4, 5
NAMES = {DRAFT: "draft", PENDING: "pending", PUBLISHED: "published", WITHDRAWN: "withdrawn", ARCHIVED: "archived"}
TRANSITIONS: dict[str, tuple[tuple[int, ...], int, str]] = {
    "submit": ((DRAFT,), PENDING, "author"),
    "publish": ((DRAFT, PENDING), PUBLISHED, "editor"),
    "reject": ((PENDING,), DRAFT, "editor"),
    "withdraw": ((PUBLISHED,), WITHDRAWN, "editor"),
    "restore": ((WITHDRAWN,), DRAFT, "editor"),
    "archive": ((PUBLISHED, WITHDRAWN), ARCHIVED, "owner"),
}
CYCLE = ("publish", "withdraw", "restore")


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    roles: frozenset[str]


#: the acting user of every benchmark: may publish, withdraw, restore,
#: reject and archive, but not submit
EDITOR = User(1, frozenset({"editor", "owner"}))


def listing_states(count: int) -> list[tuple[int, str]]:
    """(state, title) of ``count`` documents spread over every state, one in
    four without a title (so ``publish`` fails its precondition there)."""
    states = (DRAFT, PENDING, PUBLISHED, WITHDRAWN, ARCHIVED)
    return [(states[i % 5], "" if i % 4 == 3 else f"Document {i}") for i in range(count)]


# -- flask_statemgr -----------------------------------------------------------


class DocState(StateManager):
    DRAFT = State(DRAFT, "Draft")
    PENDING = State(PENDING, "Pending review")
    PUBLISHED = State(PUBLISHED, "Published")
    WITHDRAWN = State(WITHDRAWN, "Withdrawn")
    ARCHIVED = State(ARCHIVED, "Archived")

    submit = Transition(DRAFT, PENDING, "Submit", roles={"author"})
    publish = Transition({DRAFT, PENDING}, PUBLISHED, "Publish", roles={"editor"})
    reject = Transition(PENDING, DRAFT, "Reject", roles={"editor"})
    withdraw = Transition(PUBLISHED, WITHDRAWN, "Withdraw", roles={"editor"})
    restore = Transition(WITHDRAWN, DRAFT, "Restore", roles={"editor"})
    archive = Transition({PUBLISHED, WITHDRAWN}, ARCHIVED, "Archive", roles={"owner"})


class Base(orm.DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "bench_document"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    _state: Mapped[int] = DocState.column(default=DocState.DRAFT)
    state = DocState("_state")

    def roles_for(self, user: User | None) -> t.AbstractSet[str]:
        return user.roles if user is not None else frozenset()

    @DocState.publish.precondition
    def _has_title(self) -> bool | str:
        return bool(self.title) or "A title is required"


# -- transitions (pytransitions) ------------------------------------------------


class TransitionsDocument:
    """A plain model driven by a shared :class:`transitions.Machine`."""

    state: str

    def __init__(self, title: str) -> None:
        self.title = title

    def roles_for(self, user: User | None) -> t.AbstractSet[str]:
        return user.roles if user is not None else frozenset()

    # conditions receive the trigger's arguments: here the user
    def is_author(self, user: User | None) -> bool:
        return "author" in self.roles_for(user)

    def is_editor(self, user: User | None) -> bool:
        return "editor" in self.roles_for(user)

    def is_owner(self, user: User | None) -> bool:
        return "owner" in self.roles_for(user)

    def has_title(self, user: User | None) -> bool:
        return bool(self.title)


def transitions_machine() -> t.Any:
    """A machine without models; add them with ``machine.add_model(doc,
    initial=...)``."""
    from transitions import Machine

    conditions = {"author": "is_author", "editor": "is_editor", "owner": "is_owner"}
    spec = []
    for name, (sources, target, role) in TRANSITIONS.items():
        checks = [conditions[role]] + (["has_title"] if name == "publish" else [])
        spec.append(
            {"trigger": name, "source": [NAMES[s] for s in sources], "dest": NAMES[target], "conditions": checks}
        )
    return Machine(model=None, states=list(NAMES.values()), transitions=spec, initial="draft", auto_transitions=False)


# -- python-statemachine ----------------------------------------------------------


class PlainDocument:
    """The model a python-statemachine machine drives (``model=``)."""

    def __init__(self, title: str, state: str = "draft") -> None:
        self.title = title
        self.state = state

    def roles_for(self, user: User | None) -> t.AbstractSet[str]:
        return user.roles if user is not None else frozenset()


@functools.cache
def statemachine_class() -> type:
    from statemachine import State as SMState
    from statemachine import StateMachine

    class DocumentMachine(StateMachine):  # type: ignore[misc]
        draft = SMState(initial=True)
        pending = SMState()
        published = SMState()
        withdrawn = SMState()
        # python-statemachine refuses a non-final state without a way out
        archived = SMState(final=True)

        submit = draft.to(pending, cond="is_author")
        publish = draft.to(published, cond=["is_editor", "has_title"]) | pending.to(
            published, cond=["is_editor", "has_title"]
        )
        reject = pending.to(draft, cond="is_editor")
        withdraw = published.to(withdrawn, cond="is_editor")
        restore = withdrawn.to(draft, cond="is_editor")
        archive = published.to(archived, cond="is_owner") | withdrawn.to(archived, cond="is_owner")

        # conditions get the event's keyword arguments by name
        def is_author(self, user: User | None) -> bool:
            return "author" in self.model.roles_for(user)

        def is_editor(self, user: User | None) -> bool:
            return "editor" in self.model.roles_for(user)

        def is_owner(self, user: User | None) -> bool:
            return "owner" in self.model.roles_for(user)

        def has_title(self) -> bool:
            return bool(self.model.title)

    return DocumentMachine


def statemachine_for(title: str, state: int = DRAFT) -> t.Any:
    """A machine bound to a new plain model in ``state``."""
    return statemachine_class()(model=PlainDocument(title, NAMES[state]), state_field="state")


@dataclasses.dataclass(frozen=True)
class Drafts:
    """One titled draft in every system, in memory."""

    #: django-fsm-2's models and helpers (:func:`bench.django_peer.configure`)
    fsm: t.Any
    doc: Document
    fsm_doc: t.Any
    model: TransitionsDocument
    sm: t.Any


def drafts() -> Drafts:
    """A titled draft of each system, Django configured on an in-memory
    SQLite it never touches."""
    from . import django_peer

    fsm = django_peer.configure(":memory:", None)
    model = TransitionsDocument("A")
    transitions_machine().add_model(model, initial="draft")
    return Drafts(
        fsm=fsm,
        doc=Document(title="A", _state=DRAFT),
        fsm_doc=fsm.FsmDocument(title="A", state=DRAFT),
        model=model,
        sm=statemachine_for("A", DRAFT),
    )
