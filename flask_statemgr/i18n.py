"""Translations: the extension's own messages in a gettext domain of its
own, and the lazy strings an app declares its titles and labels with.

Flask-Babel is optional. When the app uses it, the extension's messages are
translated into the request's locale through a :class:`flask_babel.Domain`
named ``flask_statemgr`` over the catalogs shipped in ``translations/``,
followed by the app's own translation directories, so a
``flask_statemgr.mo`` of the app's overrides the shipped one. Without it,
they are English. ``STATEMGR_MESSAGES`` (English message to replacement,
which may itself be a lazy string) replaces single messages either way.

A lazy string is any object that renders its text with ``str()`` when read:
Flask-Babel's ``lazy_gettext``, speaklater's, or one an app writes itself.
"""

from __future__ import annotations

import contextlib
import typing as t
import weakref
from pathlib import Path

from flask import Flask, current_app

# Flask's own context variable (see .runtime): the message functions run per
# refused transition
from flask.globals import _cv_app

if t.TYPE_CHECKING:
    from flask_babel import Domain

#: the gettext domain of the extension's own messages
DOMAIN = "flask_statemgr"
#: the shipped catalogs, ``<locale>/LC_MESSAGES/flask_statemgr.mo``
TRANSLATIONS = Path(__file__).parent / "translations"

_T = t.TypeVar("_T")
_domains: weakref.WeakKeyDictionary[Flask, Domain] = weakref.WeakKeyDictionary()


def _lazy_types() -> tuple[type, ...]:
    # speaklater's lazy strings (Flask-BabelEx) have no __html__; importing
    # flask_babel here only to name its class would slow every import down
    try:
        from speaklater import _LazyString  # pyright: ignore[reportMissingImports]
    except ImportError:
        return ()
    return (_LazyString,)


_LAZY_TYPES = _lazy_types()


def is_lazy(value: t.Any) -> bool:
    """Whether ``value`` is a lazy string: an object that renders itself as
    HTML (``__html__``) and text but is no ``str`` yet, as Flask-Babel's
    ``LazyString`` and every lazy string made for templates does, or a
    speaklater lazy string."""
    if isinstance(value, str):
        return False
    return isinstance(value, _LAZY_TYPES) or callable(getattr(value, "__html__", None))


def is_text(value: t.Any) -> bool:
    """Whether ``value`` is a string or a lazy string."""
    return isinstance(value, str) or is_lazy(value)


def text(value: t.Any) -> str:
    """A title, label or message as text in the current locale."""
    return value if isinstance(value, str) else str(value)


def keep_lazy(value: t.Any) -> t.Any:
    """``value`` as it is when lazy, else its text: for what is computed
    once and rendered per locale later (with :func:`resolve`)."""
    return value if is_lazy(value) else str(value)


def resolve(value: _T) -> _T:
    """``value`` with every lazy string in it (through dicts and lists)
    rendered in the current locale, ready for JSON: a copy where it holds
    one, else ``value`` itself."""
    if isinstance(value, dict):
        items = {k: resolve(v) for k, v in value.items()}
        changed = any(items[k] is not v for k, v in value.items())
        return t.cast(_T, items) if changed else value
    if isinstance(value, list):
        entries = [resolve(v) for v in value]
        changed = any(a is not b for a, b in zip(entries, value))
        return t.cast(_T, entries) if changed else value
    return t.cast(_T, str(value)) if is_lazy(value) else value


def json_default(value: t.Any) -> str:
    """``json.dumps(default=...)``: a lazy string is its text."""
    if is_lazy(value):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def current_locale() -> str | None:
    """The locale of the current request (or app context) when the app
    uses Flask-Babel, else ``None``."""
    ctx = _cv_app.get(None)
    if ctx is None or "babel" not in ctx.app.extensions:
        return None
    from flask_babel import get_locale

    locale = get_locale()
    return str(locale) if locale is not None else None


def force_locale(locale: str | None) -> t.ContextManager[None]:
    """A block rendering in ``locale`` (Flask-Babel's ``force_locale``);
    ``None`` keeps the current locale.

    :raises RuntimeError: a locale is given and the app has no Flask-Babel.
    :raises ValueError: Babel knows no such locale.
    """
    if locale is None:
        return contextlib.nullcontext()
    if "babel" not in current_app.extensions:
        raise RuntimeError("Rendering in a locale needs Flask-Babel on the app")
    from babel import Locale, UnknownLocaleError
    from flask_babel import force_locale as babel_force_locale

    try:
        Locale.parse(locale)
    except UnknownLocaleError:
        raise ValueError(f"Unknown locale {locale!r}") from None
    return t.cast(t.ContextManager[None], babel_force_locale(locale))


def N_(message: str) -> str:
    """Mark ``message`` for extraction; :func:`gettext` translates it where
    it is shown."""
    return message


def gettext(message: str, **variables: t.Any) -> str:
    """``message`` of the extension, translated into the current locale, with
    ``%(name)s`` placeholders filled from ``variables``."""
    translated = _translate(message, None, 1)
    return translated % variables if variables else translated


def ngettext(singular: str, plural: str, num: int, **variables: t.Any) -> str:
    """The singular or plural form for ``num`` (also available as
    ``%(num)d``)."""
    variables.setdefault("num", num)
    return _translate(singular, plural, num) % variables


def _translate(singular: str, plural: str | None, num: int) -> str:
    english = singular if plural is None or num == 1 else plural
    ctx = _cv_app.get(None)
    if ctx is None:
        return english
    app: Flask = ctx.app
    overrides: t.Mapping[str, t.Any] = app.config.get("STATEMGR_MESSAGES") or {}
    override = overrides.get(english)
    if override is not None:
        return text(override)
    domain = _domain(app)
    if domain is None:
        return english
    translations = domain.get_translations()
    if plural is None:
        return t.cast(str, translations.ugettext(singular))
    return t.cast(str, translations.ungettext(singular, plural, num))


#: what :func:`memo` keeps outside any app context (English)
_memo_without_app: dict[t.Hashable, t.Any] = {}
_MEMO = "_statemgr_messages"
_MEMO_BY_LOCALE = "_statemgr_messages_by_locale"


def memo() -> dict[t.Hashable, t.Any]:
    """A dict for messages and answers that follow from declarations alone
    (a refusal because of the state, the roles), kept for the current app
    context and locale: a listing refuses the same few transitions for the
    same few reasons on every object, and Flask-Babel's lookup of the
    translations costs more than the checks. An app context is a request,
    or a block of a script; the locale is part of the key, so
    ``force_locale`` blocks keep their own.

    .. versionadded:: 0.2
    """
    ctx = _cv_app.get(None)
    if ctx is None:
        return _memo_without_app
    kept = ctx.g.__dict__
    if "babel" not in ctx.app.extensions:
        found: dict[t.Hashable, t.Any] | None = kept.get(_MEMO)
        if found is None:
            found = kept[_MEMO] = {}
        return found
    by_locale: dict[str | None, dict[t.Hashable, t.Any]] | None = kept.get(_MEMO_BY_LOCALE)
    if by_locale is None:
        by_locale = kept[_MEMO_BY_LOCALE] = {}
    locale = current_locale()
    found = by_locale.get(locale)
    if found is None:
        found = by_locale[locale] = {}
    return found


#: the JS client's own words (static/statemgr/*.js)
CLIENT_MESSAGES = (
    N_("Cancel"),
    N_("Choose…"),
    N_("Network error"),
    N_("The server could not be reached. Check your connection and try again."),
    N_("%(state)s: nothing more can be done."),
    N_("%(title)s changes %(num)s objects (%(parts)s). Continue?"),
    N_("Not a valid number."),
    N_("Error %(status)s"),
)
#: what the client's browser-side checks say: WTForms' words, translated as
#: WTForms translates them, so the browser says what the server would
WTFORMS_MESSAGES = (
    "This field is required.",
    "Invalid input.",
    "Not a valid choice.",
    "Not a valid integer value.",
    "Not a valid date value.",
    "Not a valid time value.",
    "Not a valid datetime value.",
    "Number must be between %(min)s and %(max)s.",
    "Number must be at least %(min)s.",
    "Number must be at most %(max)s.",
    "Invalid value, can't be any of: %(values)s.",
    "Field must be between %(min)d and %(max)d characters long.",
)
WTFORMS_PLURALS = (
    ("Field must be at least %(min)d character long.", "Field must be at least %(min)d characters long."),
    ("Field cannot be longer than %(max)d character.", "Field cannot be longer than %(max)d characters."),
)


def client_messages() -> dict[str, str | list[str]]:
    """The JS client's words in the current locale, those that differ from
    English: a plural message as its singular and plural forms.

    .. versionadded:: 0.2
    """
    found: dict[str, str | list[str]] = {}
    for message in CLIENT_MESSAGES:
        if (translated := _translate(message, None, 1)) != message:
            found[message] = translated
    wtforms = _wtforms_translations()
    if wtforms is not None:
        for message in WTFORMS_MESSAGES:
            if (translated := wtforms.gettext(message)) != message:
                found[message] = translated
        for singular, plural in WTFORMS_PLURALS:
            forms = [wtforms.ngettext(singular, plural, 1), wtforms.ngettext(singular, plural, 2)]
            if forms != [singular, plural]:
                found[singular] = forms
    return found


def _wtforms_translations() -> t.Any:
    """Flask-WTF's translations of WTForms' messages, when the app translates
    (Flask-Babel) and has not turned them off (``WTF_I18N_ENABLED``)."""
    ctx = _cv_app.get(None)
    if ctx is None or "babel" not in ctx.app.extensions:
        return None
    if not ctx.app.config.get("WTF_I18N_ENABLED", True):
        return None
    from flask_wtf.i18n import translations

    return translations


def _domain(app: Flask) -> Domain | None:
    if "babel" not in app.extensions:
        return None
    domain = _domains.get(app)
    if domain is None:
        from flask_babel import Domain, get_babel

        directories = [str(TRANSLATIONS), *get_babel(app).translation_directories]
        domain = _domains[app] = Domain(directories, domain=DOMAIN)
    return domain
