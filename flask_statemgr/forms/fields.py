"""Reading a form class's fields without instantiating the form, and
keeping what is read once per class: what both
:mod:`~flask_statemgr.forms.schema` and :mod:`~flask_statemgr.forms.data`
need."""

from __future__ import annotations

import functools
import typing as t
import weakref
from collections.abc import Callable

from wtforms import Form
from wtforms.csrf.core import CSRFTokenField
from wtforms.fields import BooleanField, SubmitField
from wtforms.fields.core import UnboundField
from wtforms.meta import DefaultMeta

#: What :func:`static_default` returns for a field without one.
NO_DEFAULT: t.Final[t.Any] = object()

_SCHEMA_META = DefaultMeta()

_T = t.TypeVar("_T")


def per_form_class(build: Callable[[type[Form]], _T]) -> Callable[[type[Form]], _T]:
    """``build``, run once per form class and remembered.

    The keys are weak, so form classes built on the fly are not kept alive;
    what ``build`` returns must refer to no form class. Two threads may both
    build an entry, which gives the same result.
    """
    cache: weakref.WeakKeyDictionary[type, _T] = weakref.WeakKeyDictionary()

    @functools.wraps(build)
    def cached(form_class: type[Form]) -> _T:
        try:
            return cache[form_class]
        except KeyError:
            pass
        value = build(form_class)
        cache[form_class] = value
        return value

    return cached


def declared_fields(form_class: type[Form]) -> list[tuple[str, t.Any]]:
    """The form's class-level fields in declaration order, as WTForms'
    ``FormMeta`` orders them on first instantiation. Instantiating the form
    here instead could need a request, or load choices from a database into
    the cached schema."""
    found = []

    for name in dir(form_class):
        if not name.startswith("_"):
            value = getattr(form_class, name)

            if isinstance(value, UnboundField):
                found.append((name, value))

    found.sort(key=lambda item: (item[1].creation_counter, item[0]))
    return found


def bind(unbound: t.Any, name: str) -> t.Any:
    """A field instance to read the definition from, bound to no form."""
    extra: dict[str, t.Any] = {}

    if callable(unbound.kwargs.get("choices")):
        # Run-time choices don't belong in a cached schema, and older WTForms
        # would call them here.
        extra["choices"] = None

    return unbound.bind(form=None, name=name, _meta=_SCHEMA_META, **extra)


def is_control(field: t.Any) -> bool:
    """Whether the field is a submit button or a CSRF token, not input."""
    return isinstance(field, (SubmitField, CSRFTokenField)) or (getattr(field.widget, "input_type", None) == "submit")


def static_default(field: t.Any) -> t.Any:
    """The value a left-out field takes from its default, if that is not
    computed and not empty, else :data:`NO_DEFAULT`."""
    default = field.default

    if callable(default) or default is None or default is False:
        return NO_DEFAULT

    if isinstance(default, (str, list, tuple)) and not default:
        return NO_DEFAULT

    return True if isinstance(field, BooleanField) else default
