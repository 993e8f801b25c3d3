"""The Flask extension: :class:`StateMgr`."""

from __future__ import annotations

import dataclasses
import functools
import typing as t
import weakref
from pathlib import Path

from flask import Flask, abort, current_app, g
from markupsafe import Markup, escape

from .dialects import configure_engine
from .engine import BoundTransition
from .manager import bindings_of
from .runtime import Runtime, default_roles
from .schema import build_schema, dump, etag
from .stream import DEFAULTS as STREAM_DEFAULTS
from .tables import ensure_tables

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .store import DataStore

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
UserLoader = t.Callable[[], t.Any]
RolesLoader = t.Callable[[t.Any, t.Any], t.AbstractSet[str]]
CanView = t.Callable[[t.Any, t.Any], bool]

#: every config key the extension reads, with its default
DEFAULTS: dict[str, t.Any] = {
    "STATEMGR_URL_PREFIX": "/_statemgr",
    "STATEMGR_STORE": "database",
    "STATEMGR_STORE_MIN_SIZE": 1024,
    "STATEMGR_STORE_MAX_SIZE": 16 * 1024 * 1024,
    "STATEMGR_STORE_WARN_SIZE": 1024 * 1024,
    "STATEMGR_STORE_CACHE_SIZE": 1024,
    "STATEMGR_EVENTS_LIMIT": 100,
    "STATEMGR_CONFIRM_CASCADE": True,
    **STREAM_DEFAULTS,
}


def resource_folder(name: str) -> str:
    """``templates`` or ``static``: inside the package in a built wheel, at
    the top of the source tree in a checkout or editable install."""
    here = Path(__file__).parent
    packaged = here / name
    return str(packaged if packaged.is_dir() else here.parent / name)


@dataclasses.dataclass(frozen=True)
class Exposed:
    """A model served by the JSON API under ``name``."""

    model: type
    name: str
    can_view: CanView | None


class _AppState:
    """What the extension keeps per app: several apps may share one
    :class:`StateMgr` with different configs."""

    def __init__(self, app: Flask) -> None:
        self.config = app.config
        self._store: DataStore | None = None
        self._schema: tuple[dict[str, t.Any], bytes, str] | None = None


class StateMgr(Runtime):
    """The extension::

        statemgr = StateMgr(app, db=db)
        statemgr.expose(Project, name="project")

    :param app: the app, or ``None`` to call :meth:`init_app` later.
    :param db: the Flask-SQLAlchemy extension the models use.
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        super().__init__()
        self.db = db
        self.exposed: dict[str, Exposed] = {}
        self._exposed_by_class: dict[type, Exposed] = {}
        self._user_loader: UserLoader | None = None
        self._roles_loader: RolesLoader | None = None
        self._apps: weakref.WeakKeyDictionary[Flask, _AppState] = weakref.WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the blueprint, CLI, tables and template helpers on
        ``app``. Call it after ``db.init_app(app)``."""
        from .api import create_blueprint
        from .cli import statemgr_cli
        from .pages import create_pages_blueprint

        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        app.extensions["statemgr"] = self
        self._apps[app] = _AppState(app)
        prefix = app.config["STATEMGR_URL_PREFIX"]
        app.register_blueprint(create_blueprint(self), url_prefix=prefix)
        app.register_blueprint(create_pages_blueprint(self), url_prefix=f"{prefix}/pages")
        app.cli.add_command(statemgr_cli)
        app.jinja_env.globals.update(
            statemgr_script=statemgr_script,
            statemgr_csrf_meta=statemgr_csrf_meta,
            statemgr_transitions=self.transition_choices,
            statemgr_transition_url=self.transition_url,
        )
        if self.db is not None:
            ensure_tables(self.db.metadata)
            with app.app_context():
                try:
                    engines = self.db.engines.values()
                except (KeyError, RuntimeError):
                    raise RuntimeError(
                        "Call db.init_app(app) before statemgr.init_app(app)"
                    ) from None
                for engine in engines:
                    configure_engine(engine)

    def _state(self) -> _AppState:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        try:
            return self._apps[app]
        except KeyError:
            raise RuntimeError("StateMgr.init_app was not called for this app") from None

    # -- configuration hooks -----------------------------------------------------

    def user_loader(self, f: UserLoader) -> UserLoader:
        """Register ``f() -> user`` giving the acting user (``None`` when
        anonymous)."""
        self._user_loader = f
        return f

    def roles_loader(self, f: RolesLoader) -> RolesLoader:
        """Register ``f(obj, user) -> set[str]`` giving the user's roles on
        an object."""
        self._roles_loader = f
        return f

    def current_user(self) -> t.Any:
        """The acting user: the ``user_loader``, else Flask-Login's
        ``current_user`` when the app uses it, else ``g.user``, else
        ``None``."""
        if self._user_loader is not None:
            return self._user_loader()
        if getattr(current_app, "login_manager", None) is not None:
            from flask_login import current_user  # type: ignore[import-untyped]

            user = current_user._get_current_object()
            return None if getattr(user, "is_anonymous", False) else user
        return g.get("user")

    def roles_for(self, obj: t.Any, user: t.Any) -> t.AbstractSet[str]:
        if self._roles_loader is not None:
            return self._roles_loader(obj, user)
        return default_roles(obj, user)

    @property
    def store(self) -> DataStore:
        """The current app's data store (``STATEMGR_STORE``)."""
        state = self._state()
        if state._store is None:
            from .store import create_store

            db = self.db
            session_getter = (lambda: db.session) if db is not None else None
            state._store = create_store(state.config, session_getter=session_getter)  # type: ignore[arg-type]
        return state._store

    # -- exposing models -----------------------------------------------------------

    def expose(self, model: type, name: str | None = None, can_view: CanView | None = None) -> None:
        """Serve ``model`` through the JSON API as ``name`` (default: the
        class name in lower case).

        :param can_view: ``(obj, user) -> bool``; an object the user may not
            view answers 404. Default: ``obj.can_view(user)`` when the model
            defines it, else everyone may view.
        """
        name = name or model.__name__.lower()
        if not bindings_of(model):
            raise TypeError(f"{model.__name__} has no state manager to expose")
        exposed = Exposed(model, name, can_view)
        self.exposed[name] = exposed
        self._exposed_by_class[model] = exposed
        for state in self._apps.values():
            state._schema = None

    def exposed_for(self, model: type) -> Exposed | None:
        """The exposure of ``model`` or of its nearest exposed base class."""
        for klass in model.__mro__:
            exposed = self._exposed_by_class.get(klass)
            if exposed is not None:
                return exposed
        return None

    def can_view(self, obj: t.Any, user: t.Any) -> bool:
        exposed = self.exposed_for(type(obj))
        if exposed is not None and exposed.can_view is not None:
            return bool(exposed.can_view(obj, user))
        check = getattr(obj, "can_view", None)
        return bool(check(user)) if callable(check) else True

    # -- the state model -----------------------------------------------------------

    def schema(self) -> dict[str, t.Any]:
        """The JSON state model (DESIGN §8), computed once per app."""
        return self._schema_entry()[0]

    def _schema_entry(self) -> tuple[dict[str, t.Any], bytes, str]:
        state = self._state()
        if state._schema is None:
            schema = build_schema({n: e.model for n, e in self.exposed.items()})
            body = dump(schema)
            state._schema = (schema, body, etag(body))
        return state._schema

    # -- views ---------------------------------------------------------------------

    def load(self, model: type, ident: t.Any) -> t.Any:
        """The object of ``model`` with primary key ``ident`` or ``None``;
        an ident that cannot be a key of that model is ``None`` too."""
        from .api import coerce_identity

        if self.db is None:
            return None
        session = self.db.session
        key = coerce_identity(model, ident, session.get_bind(mapper=model).dialect.name)
        return None if key is None else session.get(model, key)

    def guard(self, transition: BoundTransition, lookup: str = "id") -> t.Callable[[F], F]:
        """Guard a view with a transition: load the object from the URL
        argument ``lookup`` (404), check the transition for the current user
        (401/403/409) and call the view as ``view(obj, form, **kwargs)`` with
        a bound instance of the transition's form (or ``None``)."""
        if not isinstance(transition, BoundTransition):
            raise TypeError("guard() takes a transition bound to a model, e.g. Project.state.publish")
        model = transition.host
        manager = transition.manager._name
        name = transition.name

        def decorator(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                obj = self.load(model, kwargs.pop(lookup, None))
                if obj is None:
                    abort(404)
                user = self.current_user()
                bound: BoundTransition = getattr(getattr(obj, manager), name)
                plan = bound.plan(user)
                if plan.error is not None:
                    abort(plan.error.http_status, description=plan.error.message)
                form = None
                if bound.transition.form is not None:
                    from .forms import bind_form

                    form = bind_form(bound.transition.form)
                return current_app.ensure_sync(view)(obj, form, *args, **kwargs)

            return t.cast(F, wrapper)

        return decorator

    def transition_choices(self, obj: t.Any) -> list[dict[str, t.Any]]:
        """Every transition of ``obj`` with its availability for the current
        user (what the ``transition_buttons`` macro renders)."""
        from .pages import transition_choices

        return transition_choices(self, obj)

    def transition_url(self, obj: t.Any, manager: str, transition: str, next: str | None = None) -> str:
        """The URL of the default page performing ``transition`` on ``obj``."""
        from flask import url_for

        from .engine import object_identity

        exposed = self.exposed_for(type(obj))
        if exposed is None:
            raise TypeError(f"{type(obj).__name__} is not exposed")
        return url_for(
            "statemgr_pages.transition_page", model=exposed.name, ident=object_identity(obj),
            manager=manager, transition=transition, next=next,
        )

    def perform(
        self, bound: BoundTransition, data: t.Mapping[str, t.Any] | None = None, *, confirm: bool = False
    ) -> t.Any:
        """Perform for the current user inside a request, asking for
        confirmation of a cascade (``STATEMGR_CONFIRM_CASCADE``), and commit."""
        result = self._perform_uncommitted(bound, data, confirm)
        self._commit()
        return result

    def _perform_uncommitted(
        self, bound: BoundTransition, data: t.Mapping[str, t.Any] | None, confirm: bool
    ) -> t.Any:
        """:meth:`perform` without the commit, for a caller that reads what
        it answers first (the objects are then still loaded); a failure rolls
        back the session's transaction."""
        from .exceptions import ConfirmationRequired

        user = self.current_user()
        plan = bound.plan(user)
        if plan.error is not None:
            raise plan.error
        if len(plan.steps) > 1 and not confirm and self._state().config["STATEMGR_CONFIRM_CASCADE"]:
            summary = plan.summary()
            raise ConfirmationRequired(
                f"{bound.title or bound.name} changes {len(plan.steps)} objects",
                plan=summary,
            )
        try:
            # the whole transaction is rolled back on failure: no savepoint
            return bound.perform_plan(plan, user, data, savepoint=self.db is None)
        except BaseException:
            if self.db is not None:
                self.db.session.rollback()
            raise

    def _commit(self) -> None:
        if self.db is None:
            return
        try:
            self.db.session.commit()
        except BaseException:
            self.db.session.rollback()
            raise


def statemgr_csrf_meta() -> Markup:
    """``<meta name="csrf-token">`` for the JS client, when Flask-WTF is
    active."""
    try:
        from flask_wtf.csrf import generate_csrf
    except ImportError:  # pragma: no cover - flask-wtf is a dependency
        return Markup("")
    return Markup('<meta name="csrf-token" content="{}">').format(generate_csrf())


def statemgr_script(
    nonce: str | None = None,
    *,
    autostart: bool = True,
    hide_unavailable: bool = False,
    poll_interval: int | None = None,
) -> Markup:
    """The ``<script type="module">`` tag loading the JS client.

    :param nonce: the page's CSP nonce, if its policy uses one.
    :param autostart: start the client on the page (``window.statemgr``);
        without it, import ``StateClient`` from the module yourself.
    :param hide_unavailable: hide the transitions the user cannot perform
        now instead of showing them disabled with the reason.
    :param poll_interval: milliseconds between event polls while the page
        is visible (the client's default is 1000).
    """
    from flask import url_for

    src = url_for("statemgr.static", filename="statemgr.js")
    prefix = current_app.config["STATEMGR_URL_PREFIX"]
    attrs = f' src="{escape(src)}" data-prefix="{escape(prefix)}"'
    if autostart:
        attrs += " data-autostart"
    if hide_unavailable:
        attrs += " data-hide-unavailable"
    if poll_interval is not None:
        attrs += f' data-poll-interval="{int(poll_interval)}"'
    if nonce:
        attrs += f' nonce="{escape(nonce)}"'
    return Markup(f'<script type="module"{attrs}></script>')

