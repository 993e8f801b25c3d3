"""Where the engine gets the parts an application configures: roles, the
identity recorded in history, and the data store.

Without a Flask app (or without the extension on it) the defaults apply, so
the core works in scripts and tests; :class:`~flask_statemgr.StateMgr`
replaces them for its app.
"""

from __future__ import annotations

import typing as t

# Flask's own context variable: ``has_app_context()`` and ``current_app``
# (a proxy) cost three lookups of it and more than the checks of an
# availability answer together
from flask.globals import _cv_app

if t.TYPE_CHECKING:
    from .store import DataStore


def default_roles(obj: t.Any, user: t.Any) -> t.AbstractSet[str]:
    """``obj.roles_for(user)`` when the model defines it, else no roles."""
    roles_for = getattr(obj, "roles_for", None)
    if roles_for is None:
        return frozenset()
    roles: t.AbstractSet[str] = roles_for(user)
    return roles


def default_user_id(user: t.Any) -> str | None:
    """Flask-Login's ``get_id()``, else ``user.id``, as a string."""
    if user is None:
        return None
    get_id = getattr(user, "get_id", None)
    value = get_id() if callable(get_id) else getattr(user, "id", None)
    return None if value is None else str(value)


class Runtime:
    """The configurable parts the engine calls; the extension subclasses it."""

    def __init__(self) -> None:
        self._store: DataStore | None = None
        #: what :meth:`roles_for` asks; an attribute, not a method to
        #: override, because the checks call it once per object checked
        self.load_roles: t.Callable[[t.Any, t.Any], t.AbstractSet[str]] = default_roles

    def roles_for(self, obj: t.Any, user: t.Any) -> t.AbstractSet[str]:
        """The roles of ``user`` on ``obj``: the extension's
        ``roles_loader``, else ``obj.roles_for(user)``, else none."""
        return self.load_roles(obj, user)

    def user_id(self, user: t.Any) -> str | None:
        return default_user_id(user)

    @property
    def store(self) -> DataStore:
        if self._store is None:
            # the payloads layer builds on this one; the default store is
            # made for the first payload, never at import
            from .store import create_store

            self._store = create_store({})
        return self._store


#: the runtime outside an app with the extension
DEFAULT_RUNTIME = Runtime()


def current_runtime() -> Runtime:
    """The extension of the current app, else the defaults."""
    ctx = _cv_app.get(None)
    if ctx is None:
        return DEFAULT_RUNTIME
    # no t.cast: a call, on the path of every check
    runtime: Runtime = ctx.app.extensions.get("statemgr", DEFAULT_RUNTIME)
    return runtime
