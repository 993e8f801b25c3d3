"""Who and what a transition is about: an object's primary key as history
records it, a short description for messages, and whether a user is
anonymous.

A leaf: it imports nothing of the package, so the declaring layer may name
an object in its errors too.
"""

from __future__ import annotations

import typing as t

from sqlalchemy import orm
from sqlalchemy.orm.attributes import instance_state


def instance_state_of(obj: t.Any) -> orm.InstanceState[t.Any] | None:
    """``sa.inspect(obj, raiseerr=False)`` for an object: its state, or
    ``None`` when its class is not mapped. Without the inspection registry's
    walk of the class's bases, which cost more than the checks of a
    perform in memory.

    .. versionadded:: 0.2
    """
    try:
        return instance_state(obj)
    except AttributeError:
        return None


def object_identity(obj: t.Any) -> str:
    """The primary key of ``obj`` as a string (``"12"``, ``"3,7"``).

    .. versionadded:: 0.1
    """
    state = instance_state_of(obj)
    identity = state.identity if state is not None else None
    if identity is None:
        return str(getattr(obj, "id", id(obj)))
    return str(identity[0]) if len(identity) == 1 else ",".join(map(str, identity))


def identity_of(obj: t.Any) -> tuple[t.Any, ...]:
    """The primary key of a persistent ``obj``.

    .. versionadded:: 0.1
    """
    identity = instance_state(obj).identity
    assert identity is not None, f"{obj!r} has no primary key yet"
    return identity


def describe(obj: t.Any) -> str:
    """``obj`` as messages name it: ``"Project 12"``.

    .. versionadded:: 0.1
    """
    return f"{type(obj).__name__} {object_identity(obj)}"


def is_anonymous(user: t.Any) -> bool:
    """Whether ``user`` is no one (``None``) or Flask-Login's anonymous user.

    .. versionadded:: 0.1
    """
    return user is None or getattr(user, "is_anonymous", False) is True
