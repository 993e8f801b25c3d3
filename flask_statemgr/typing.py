"""The package's public type aliases, for annotating an application's
hooks and loaders.

.. versionadded:: 0.2
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

# not ``from sqlalchemy import orm``: pyright --verifytypes then types
# SessionLike as unknown (microsoft/pyright#11196)
import sqlalchemy.orm as orm

#: the value a state stores in its column
StateValue: t.TypeAlias = int | str
#: a conditional state's validator: ``(obj) -> bool``
Validator: t.TypeAlias = t.Callable[[t.Any], bool]
#: a conditional state's SQL expression: ``(model class) -> clause``
Expression: t.TypeAlias = t.Callable[[t.Any], "sa.ColumnElement[bool]"]
#: a transition's permission hook: ``(obj, user) -> bool``
Permission: t.TypeAlias = t.Callable[[t.Any, t.Any], bool]
#: a session or Flask-SQLAlchemy's scoped ``db.session``
SessionLike: t.TypeAlias = t.Union[orm.Session, "orm.scoped_session[t.Any]"]

__all__ = ["Expression", "Permission", "SessionLike", "StateValue", "Validator"]
