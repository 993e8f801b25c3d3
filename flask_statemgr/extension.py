"""The Flask extension: :class:`StateMgr`."""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing as t
import weakref

from flask import Flask, abort, current_app, g, url_for
from markupsafe import Markup, escape

# the API blueprint is complete only with the OpenAPI view, which that
# module adds to it
from . import openapi  # noqa: F401
from .api import bp as api_blueprint
from .api import coerce_identity
from .bound import BoundTransition
from .cli import statemgr_cli
from .dialects import configure_engine
from .exceptions import ConfirmationRequired
from .forms import bind_form
from .i18n import client_messages, current_locale, gettext, ngettext
from .identity import is_anonymous, object_identity
from .manager import bindings_of
from .model_json import build_schema, dump, etag
from .pages import bp as pages_blueprint
from .pages import transition_choices
from .problems import ResourceNotFound
from .runtime import Runtime
from .store import CONFIG_DEFAULTS as STORE_DEFAULTS
from .store import create_store
from .stream import DEFAULTS as STREAM_DEFAULTS
from .tables import ensure_tables

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .results import Plan, TransitionResult
    from .store import DataStore
    from .transitions import Transition

_GuardForm = t.TypeVar("_GuardForm")
_R = t.TypeVar("_R")
UserLoader = t.Callable[[], t.Any]
RolesLoader = t.Callable[[t.Any, t.Any], t.AbstractSet[str]]
CanView = t.Callable[[t.Any, t.Any], bool]

#: every config key the extension reads, with its default (documented on
#: :meth:`StateMgr.init_app`)
DEFAULTS: dict[str, t.Any] = {
    "STATEMGR_URL_PREFIX": "/_statemgr",
    # the payload store's keys are its own (store/config.py)
    **STORE_DEFAULTS,
    "STATEMGR_EVENTS_LIMIT": 100,
    "STATEMGR_CONFIRM_CASCADE": True,
    #: the extension's own messages replaced, English text to replacement
    "STATEMGR_MESSAGES": types.MappingProxyType({}),
    "STATEMGR_SQLITE_SAVEPOINTS": True,
    **STREAM_DEFAULTS,
}


@dataclasses.dataclass(frozen=True)
class Exposed:
    """A model served by the JSON API under ``name``.

    .. versionadded:: 0.1
    """

    model: type
    name: str
    can_view: CanView | None
    can_view_history: CanView | None = None


class _AppState:
    """What the extension keeps per app: several apps may share one
    :class:`StateMgr` with different configs."""

    def __init__(self, app: Flask) -> None:
        self.config = app.config
        self._store: DataStore | None = None
        #: per locale (``None`` without Flask-Babel)
        self._schemas: dict[str | None, tuple[dict[str, t.Any], bytes, str]] = {}


class StateMgr(Runtime):
    """The extension::

        statemgr = StateMgr(app, db=db)
        statemgr.expose(Project, name="project")

    :param app: the app, or ``None`` to call :meth:`init_app` later.
    :param db: the Flask-SQLAlchemy extension the models use.

    .. versionadded:: 0.1
    """

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        super().__init__()
        self.db = db
        self.exposed: dict[str, Exposed] = {}
        self._exposed_by_class: dict[type, Exposed] = {}
        self._user_loader: UserLoader | None = None
        self._apps: weakref.WeakKeyDictionary[Flask, _AppState] = weakref.WeakKeyDictionary()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the blueprints, CLI, tables and template helpers on
        ``app``. Call it after ``db.init_app(app)``.

        It reads these keys of ``app.config``, setting each one the app left
        out to its default (:data:`DEFAULTS`):

        ``STATEMGR_URL_PREFIX`` (``"/_statemgr"``)
            Where the JSON API, the pages (``{prefix}/pages``) and the
            static files live.
        ``STATEMGR_STORE`` (``"database"``)
            The payload store: ``database``, ``memory``, a directory
            (``file:///path``) or ``redis://…``.
        ``STATEMGR_STORE_MIN_SIZE`` (``1024``)
            Serialized values smaller than this many bytes stay inline.
        ``STATEMGR_STORE_MAX_SIZE`` (16 MiB)
            Larger values are refused (413); also the largest request body
            when ``MAX_CONTENT_LENGTH`` is unset.
        ``STATEMGR_STORE_WARN_SIZE`` (1 MiB)
            Larger values log a warning.
        ``STATEMGR_STORE_CACHE_SIZE`` (``1024``)
            Entries in the in-process cache of resolved blobs.
        ``STATEMGR_STORE_REDIS_PREFIX`` (``"statemgr:blob:"``)
            The key prefix of blobs in a Redis store.
        ``STATEMGR_EVENTS_LIMIT`` (``100``)
            The most events one ``/events`` call returns.
        ``STATEMGR_CONFIRM_CASCADE`` (``True``)
            :meth:`perform` asks for confirmation when a cascade changes
            more than one object.
        ``STATEMGR_MESSAGES`` (empty)
            The extension's own messages replaced: English text to
            replacement.
        ``STATEMGR_SQLITE_SAVEPOINTS`` (``True``)
            On SQLite engines a savepoint first opens its transaction;
            ``False`` leaves the engines untouched.
        ``STATEMGR_BASE_TEMPLATE`` (unset)
            The template the default pages extend instead of
            ``statemgr/layout.html``; read by the templates, not set here.

        .. versionadded:: 0.1
        """
        if "statemgr" in app.extensions:
            raise RuntimeError(
                "A 'StateMgr' instance has already been registered on this Flask app."
                " Import and use that instance instead."
            )
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        app.extensions["statemgr"] = self
        self._apps[app] = _AppState(app)
        prefix = app.config["STATEMGR_URL_PREFIX"]
        app.register_blueprint(api_blueprint, url_prefix=prefix)
        app.register_blueprint(pages_blueprint, url_prefix=f"{prefix}/pages")
        app.cli.add_command(statemgr_cli)
        app.jinja_env.globals.update(
            statemgr_script=statemgr_script,
            statemgr_csrf_meta=statemgr_csrf_meta,
            statemgr_gettext=gettext,
            statemgr_locale=current_locale,
            statemgr_transitions=self.transition_choices,
            statemgr_transition_url=self.transition_url,
        )
        if self.db is not None:
            ensure_tables(self.db.metadata)
            with app.app_context():
                try:
                    engines = self.db.engines.values()
                except (KeyError, RuntimeError):
                    raise RuntimeError("Call db.init_app(app) before statemgr.init_app(app)") from None
                if app.config["STATEMGR_SQLITE_SAVEPOINTS"]:
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
        anonymous).

        .. versionadded:: 0.1
        """
        self._user_loader = f
        return f

    def roles_loader(self, f: RolesLoader) -> RolesLoader:
        """Register ``f(obj, user) -> set[str]`` giving the user's roles on
        an object.

        .. versionadded:: 0.1
        """
        self.load_roles = f
        return f

    def current_user(self) -> t.Any:
        """The acting user: the ``user_loader``, else Flask-Login's
        ``current_user`` when the app uses it, else ``g.user``, else
        ``None``.

        .. versionadded:: 0.1
        """
        if self._user_loader is not None:
            return self._user_loader()
        if getattr(current_app, "login_manager", None) is not None:
            from flask_login import current_user  # type: ignore[import-untyped]

            user = current_user._get_current_object()
            return None if getattr(user, "is_anonymous", False) else user
        return g.get("user")

    @property
    def store(self) -> DataStore:
        """The current app's data store (``STATEMGR_STORE``).

        .. versionadded:: 0.1
        """
        state = self._state()
        if state._store is None:
            db = self.db
            session_getter = (lambda: db.session) if db is not None else None
            state._store = create_store(state.config, session_getter=session_getter)  # type: ignore[arg-type]
        return state._store

    # -- exposing models -----------------------------------------------------------

    def expose(
        self,
        model: type,
        name: str | None = None,
        can_view: CanView | None = None,
        can_view_history: CanView | None = None,
    ) -> None:
        """Serve ``model`` through the JSON API as ``name`` (default: the
        class name in lower case).

        :param can_view: ``(obj, user) -> bool``; an object the user may not
            view answers 404. Default: ``obj.can_view(user)`` when the model
            defines it, else everyone may view.
        :param can_view_history: ``(obj, user) -> bool``, asked for an object
            the user may view; its history holds user ids and payloads, so
            one the user may not read answers 401 (anonymous) or 403.
            Default: every user who may view the object and is signed in.
        :raise ValueError: A transition's form has no JSON Schema (see
            :func:`~flask_statemgr.forms.form_schema`).

        .. versionadded:: 0.1
        """
        name = name or model.__name__.lower()
        if not bindings_of(model):
            raise TypeError(f"{model.__name__} has no state manager to expose")
        # A form without a JSON Schema (a Regexp that JavaScript would read
        # differently) fails here, while the app is set up, not in a request.
        build_schema({name: model})
        exposed = Exposed(model, name, can_view, can_view_history)
        self.exposed[name] = exposed
        self._exposed_by_class[model] = exposed
        for state in self._apps.values():
            state._schemas.clear()

    def exposed_for(self, model: type) -> Exposed | None:
        """The exposure of ``model`` or of its nearest exposed base class.

        .. versionadded:: 0.1
        """
        for klass in model.__mro__:
            exposed = self._exposed_by_class.get(klass)
            if exposed is not None:
                return exposed
        return None

    def can_view(self, obj: t.Any, user: t.Any) -> bool:
        """Whether ``user`` may view ``obj`` (see :meth:`expose`).

        .. versionadded:: 0.1
        """
        exposed = self.exposed_for(type(obj))
        if exposed is not None and exposed.can_view is not None:
            return bool(exposed.can_view(obj, user))
        check = getattr(obj, "can_view", None)
        return bool(check(user)) if callable(check) else True

    def can_view_history(self, obj: t.Any, user: t.Any) -> bool:
        """Whether ``user`` may read the history of ``obj``, which they may
        view (see :meth:`expose`).

        .. versionadded:: 0.1
        """
        exposed = self.exposed_for(type(obj))
        if exposed is not None and exposed.can_view_history is not None:
            return bool(exposed.can_view_history(obj, user))
        return not is_anonymous(user)

    # -- the state model -----------------------------------------------------------

    def schema(self) -> dict[str, t.Any]:
        """The JSON state model (DESIGN §8) in the current locale, computed
        once per app and locale.

        .. versionadded:: 0.1
        """
        return self._schema_entry()[0]

    def schema_json(self) -> tuple[bytes, str]:
        """:meth:`schema` as the JSON the API sends, and its ``ETag``.

        .. versionadded:: 0.1
        """
        _, body, tag = self._schema_entry()
        return body, tag

    def _schema_entry(self) -> tuple[dict[str, t.Any], bytes, str]:
        state = self._state()
        locale = current_locale()
        entry = state._schemas.get(locale)
        if entry is None:
            schema = build_schema({n: e.model for n, e in self.exposed.items()})
            body = dump(schema)
            entry = state._schemas[locale] = (schema, body, etag(body, locale))
        return entry

    # -- views ---------------------------------------------------------------------

    def load(self, model: type, ident: t.Any) -> t.Any:
        """The object of ``model`` with primary key ``ident`` or ``None``;
        an ident that cannot be a key of that model is ``None`` too.

        .. versionadded:: 0.1
        """
        if self.db is None:
            return None
        session = self.db.session
        key = coerce_identity(model, ident, session.get_bind(mapper=model).dialect.name)
        return None if key is None else session.get(model, key)

    def resolve_object(self, model: str | type, ident: t.Any, user: t.Any) -> t.Any:
        """The object a URL names, which ``user`` may view: ``model`` is an
        exposed name (the API, the pages) or a model class (a guarded view).

        :raise ResourceNotFound: no such exposed model, or no such object
            that ``user`` may view (the two are indistinguishable).

        .. versionadded:: 0.1
        """
        if isinstance(model, str):
            exposed = self.exposed.get(model)
            if exposed is None:
                raise ResourceNotFound(gettext("No model named %(model)r", model=model))
            klass = exposed.model
        else:
            klass = model
        obj = self.load(klass, ident)
        if obj is None or not self.can_view(obj, user):
            raise ResourceNotFound(gettext("No %(model)s %(id)s", model=_name(model), id=ident))
        return obj

    def resolve(self, model: str | type, ident: t.Any, manager: str, transition: str, user: t.Any) -> BoundTransition:
        """The transition a URL names, bound to the object of
        :meth:`resolve_object`; ``manager`` is the manager's attribute name
        on the model, ``transition`` any declared transition (an internal
        one is refused when performed).

        :raise ResourceNotFound: no such object, manager or transition.

        .. versionadded:: 0.1
        """
        obj = self.resolve_object(model, ident, user)
        if manager not in bindings_of(type(obj)):
            raise ResourceNotFound(
                gettext("%(model)s has no state manager %(manager)r", model=_name(model), manager=manager)
            )
        view = getattr(obj, manager)
        declared = type(view).transitions().get(transition)
        if declared is None:
            raise ResourceNotFound(
                gettext("%(manager)s has no transition %(transition)r", manager=manager, transition=transition)
            )
        return BoundTransition(declared, view)

    # The view is typed as taking the object (the model class is not known
    # to a checker at ``Project.state.publish``) and an instance of the
    # transition's form class; the guarded view takes the URL's arguments.
    @t.overload
    def guard(
        self, transition: Transition[_GuardForm], lookup: str = "id"
    ) -> t.Callable[[t.Callable[t.Concatenate[t.Any, _GuardForm, ...], _R]], t.Callable[..., _R]]: ...

    @t.overload
    def guard(
        self, transition: BoundTransition, lookup: str = "id"
    ) -> t.Callable[[t.Callable[t.Concatenate[t.Any, t.Any, ...], _R]], t.Callable[..., _R]]: ...

    def guard(
        self, transition: Transition[t.Any] | BoundTransition, lookup: str = "id"
    ) -> t.Callable[[t.Callable[..., t.Any]], t.Callable[..., t.Any]]:
        """Guard a view with a transition: load the object from the URL
        argument ``lookup`` (404, as :meth:`resolve` does), check the
        transition for the current user (401/403/409) and call the view as
        ``view(obj, form, **kwargs)`` with a bound instance of the
        transition's form (or ``None``).

        .. versionadded:: 0.1
        """
        if not isinstance(transition, BoundTransition):
            raise TypeError("guard() takes a transition bound to a model, e.g. Project.state.publish")
        model = transition.host
        manager = transition.manager._name
        name = transition.name

        def decorator(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
            @functools.wraps(view)
            def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                user = self.current_user()
                try:
                    bound = self.resolve(model, kwargs.pop(lookup, None), manager, name, user)
                except ResourceNotFound:
                    abort(404)
                plan = bound.plan(user)
                if plan.error is not None:
                    abort(plan.error.http_status, description=plan.error.message)
                form = None
                if bound.transition.form is not None:
                    form = bind_form(bound.transition.form)
                return current_app.ensure_sync(view)(bound.obj, form, *args, **kwargs)

            return wrapper

        return decorator

    def transition_choices(self, obj: t.Any) -> list[dict[str, t.Any]]:
        """Every transition of ``obj`` with its availability for the current
        user (what the ``transition_buttons`` macro renders).

        .. versionadded:: 0.1
        """
        return transition_choices(self, obj)

    def transition_url(self, obj: t.Any, manager: str, transition: str, next: str | None = None) -> str:
        """The URL of the default page performing ``transition`` on ``obj``.

        .. versionadded:: 0.1
        """
        exposed = self.exposed_for(type(obj))
        if exposed is None:
            raise TypeError(f"{type(obj).__name__} is not exposed")
        return url_for(
            "statemgr_pages.transition_page",
            model=exposed.name,
            ident=object_identity(obj),
            manager=manager,
            transition=transition,
            next=next,
        )

    def perform(
        self,
        bound: BoundTransition,
        data: t.Mapping[str, t.Any] | None = None,
        *,
        confirm: bool = False,
        commit: bool = True,
        plan: Plan | None = None,
    ) -> TransitionResult:
        """Perform ``bound`` with a request's policy: for the current user,
        asking for confirmation of a cascade (``STATEMGR_CONFIRM_CASCADE``),
        and committing. The JSON API and the default pages perform through
        it. A failure rolls back the session's transaction.

        :param confirm: the user confirmed a perform that changes more than
            one object.
        :param commit: ``False`` for a caller that reads what it answers
            from the objects first (they are still loaded), then calls
            :meth:`commit`.
        :param plan: ``bound.plan(user)`` for the current user, when the
            caller has made it already; a refused one raises its error
            (sending ``transition_refused`` with ``data``) and changes
            nothing, so a caller can refuse before reading a body.
        :raise TransitionError: refused, unconfirmed
            (:class:`~flask_statemgr.ConfirmationRequired`) or failed.

        .. versionadded:: 0.1
        """
        user = self.current_user()
        if plan is None:
            plan = bound.plan(user)
        if plan.error is not None:
            # raises plan.error (sending the signal) before anything changes
            return bound.perform_plan(plan, user, data)
        # objects, not steps: moving two managers of one object changes one
        summary = plan.summary()
        changed = sum(summary.values())
        if changed > 1 and not confirm and current_app.config["STATEMGR_CONFIRM_CASCADE"]:
            raise ConfirmationRequired(
                ngettext(
                    "%(transition)s changes %(num)d object",
                    "%(transition)s changes %(num)d objects",
                    changed,
                    transition=bound.title or bound.name,
                ),
                plan=summary,
            )
        try:
            # the whole transaction is rolled back on failure: no savepoint
            result = bound.perform_plan(plan, user, data, savepoint=self.db is None)
        except BaseException:
            if self.db is not None:
                self.db.session.rollback()
            raise
        if commit:
            self.commit()
        return result

    def commit(self) -> None:
        """Commit ``db.session``, rolling it back when the commit fails:
        what :meth:`perform` does after the transition.

        .. versionadded:: 0.1
        """
        if self.db is None:
            return
        try:
            self.db.session.commit()
        except BaseException:
            self.db.session.rollback()
            raise


def _name(model: str | type) -> str:
    """How a 404 names the model a URL asked for."""
    return model if isinstance(model, str) else model.__name__


def statemgr_csrf_meta() -> Markup:
    """``<meta name="csrf-token">`` for the JS client, when Flask-WTF is
    active.

    .. versionadded:: 0.1
    """
    try:
        from flask_wtf.csrf import generate_csrf
    except ImportError:  # pragma: no cover - flask-wtf is a dependency
        return Markup("")
    return Markup('<meta name="csrf-token" content="{}">').format(generate_csrf())


def statemgr_script(
    nonce: str | None = None,
    *,
    autostart: bool = True,
    hide_unavailable: bool | None = None,
    poll_interval: int | None = None,
) -> Markup:
    """The ``<script type="module">`` tag loading the JS client.

    :param nonce: the page's CSP nonce, if its policy uses one.
    :param autostart: start the client on the page (``window.statemgr``);
        without it, import ``StateClient`` from the module yourself.
    :param hide_unavailable: hide the transitions the user cannot perform
        now instead of showing them disabled with the reason. By default
        they are hidden for an anonymous visitor only (no
        :meth:`StateMgr.current_user`), who would otherwise see every
        button a signed-in user may have.
    :param poll_interval: milliseconds between event polls while the page
        is visible (the client's default is 1000).

    .. versionadded:: 0.1
    """
    src = url_for("statemgr.static", filename="statemgr.js")
    prefix = current_app.config["STATEMGR_URL_PREFIX"]
    attrs = f' src="{escape(src)}" data-prefix="{escape(prefix)}"'
    if autostart:
        attrs += " data-autostart"
    if hide_unavailable is None:
        hide_unavailable = current_app.extensions["statemgr"].current_user() is None
    if hide_unavailable:
        attrs += " data-hide-unavailable"
    if poll_interval is not None:
        attrs += f' data-poll-interval="{int(poll_interval)}"'
    messages = client_messages()
    if messages:
        # the client's own words in the request's locale (statemgr/messages.js)
        attrs += f' data-messages="{escape(json.dumps(messages, ensure_ascii=False))}"'
    if nonce:
        attrs += f' nonce="{escape(nonce)}"'
    return Markup(f'<script type="module"{attrs}></script>')
