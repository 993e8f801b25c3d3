"""Marking model methods as hooks, and collecting them per host class.

A decorator such as ``@ProjectState.publish.execute`` only marks the function;
the marks are collected when a manager first needs the hooks of a model
class, by walking that class's MRO. So hooks belong to the model that declares
them (and its subclasses), and one manager reused by two models keeps their
hooks apart without any global registry.
"""

from __future__ import annotations

import typing as t

#: a function, or a classmethod wrapping one
_T = t.TypeVar("_T")

#: kind ("precondition", "execute", "validator", "expression") and target
Mark = tuple[str, t.Any]

MARKS_ATTR = "__statemgr_marks__"


def mark(f: _T, kind: str, target: object) -> _T:
    """Record on ``f`` that it is a ``kind`` hook for ``target``."""
    marks: list[Mark] = f.__dict__.setdefault(MARKS_ATTR, [])
    marks.append((kind, target))
    return f


def collect_marks(host: type) -> list[tuple[str, t.Any, t.Callable[..., t.Any]]]:
    """All marked functions visible on ``host``, base classes first, so a
    subclass's hook comes after (and for single-valued hooks, overrides) its
    base's. A method overridden without a mark is no longer a hook.
    """
    seen: dict[str, t.Callable[..., t.Any]] = {}
    for klass in reversed(host.__mro__):
        for name, value in vars(klass).items():
            seen[name] = value
    found = []
    for value in seen.values():
        # a mark may sit on a classmethod/staticmethod or on its function
        func = getattr(value, "__func__", value)
        marks: t.Sequence[Mark] = getattr(value, MARKS_ATTR, ()) or getattr(func, MARKS_ATTR, ())
        for kind, target in marks:
            found.append((kind, target, func))
    return found
