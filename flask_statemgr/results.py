"""Answers about a transition: why it is or is not available, what a cascade
would do, and what a perform did."""

from __future__ import annotations

import dataclasses
import typing as t

from .i18n import text

if t.TYPE_CHECKING:
    from .exceptions import TransitionError
    from .history import TransitionRecord
    from .states import State
    from .transitions import Transition


@dataclasses.dataclass(frozen=True, slots=True)
class Reason:
    """Why a transition is not available.

    :param code: one of ``state``, ``permission``, ``precondition``,
        ``requires``, ``cascade``.
    :param message: a human explanation; a lazy string is rendered when
        the reason is read.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        Defined in ``flask_statemgr.results`` (was ``availability``); its
        ``code`` is a :class:`~flask_statemgr.checks.Stage`'s ``code``.
    """

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": text(self.message)}


@dataclasses.dataclass(slots=True)
class Availability:
    """The answer of :meth:`BoundTransition.check`.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        Not frozen: a listing makes one per object and transition, and a
        frozen dataclass's ``__init__`` costs three times as much.
    """

    ok: bool
    reasons: list[Reason]
    error: TransitionError | None = None

    def __bool__(self) -> bool:
        return self.ok


@dataclasses.dataclass(slots=True)
class Step:
    """One object and the transition a perform (or its cascade) applies to it.

    :param parent: index in the plan of the step whose cascade caused this
        one, ``None`` for the root.

    .. versionadded:: 0.1
    """

    obj: t.Any
    manager: str
    transition: Transition
    source: State
    seen: t.Any
    parent: int | None = None
    depth: int = 0
    record: TransitionRecord | None = None

    @property
    def target(self) -> State:
        return self.transition.target


@dataclasses.dataclass(slots=True)
class Plan:
    """What performing a transition would do: every step in execution order
    (parents before children) and, if it cannot run, the blockers.

    .. versionadded:: 0.1
    """

    steps: list[Step]
    blockers: list[Reason]
    error: TransitionError | None = None

    @property
    def ok(self) -> bool:
        return not self.blockers

    def __iter__(self) -> t.Iterator[tuple[t.Any, Transition]]:
        return ((s.obj, s.transition) for s in self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def summary(self) -> dict[str, int]:
        """How many objects the plan changes, by model class name."""
        counts: dict[str, int] = {}
        # an object whose cascade moves several of its managers is one object
        for obj in {id(step.obj): step.obj for step in self.steps}.values():
            name = type(obj).__name__
            counts[name] = counts.get(name, 0) + 1
        return counts


@dataclasses.dataclass(slots=True)
class TransitionResult:
    """What :meth:`BoundTransition.__call__` returns.

    .. versionadded:: 0.1
    """

    source: State
    target: State
    record: TransitionRecord | None
    steps: list[Step]
    data: dict[str, t.Any]


@dataclasses.dataclass(slots=True)
class BulkResult:
    """What :meth:`BoundTransition.perform_all` returns.

    :param performed: one result per object moved, in the order given.
    :param refused: each object skipped, mapped to why (the error a single
        perform would have raised).

    .. versionadded:: 0.1
    """

    performed: list[TransitionResult]
    refused: dict[t.Any, TransitionError]
