"""Plain data through a form: :func:`validate_form_data` checks JSON (or a
multidict) with the form's schema and then with the form, as if a browser
had posted it, and :func:`bind_form` binds a form to what a request
submitted."""

from __future__ import annotations

import dataclasses
import functools
import re
import typing as t
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, tzinfo

from flask import current_app, has_app_context, has_request_context, request
from flask_wtf import FlaskForm
from jsonschema import Draft202012Validator
from werkzeug.datastructures import CombinedMultiDict, FileStorage, MultiDict
from wtforms import Form
from wtforms.fields import BooleanField, DateTimeField, FieldList, FormField

from ..i18n import N_, gettext
from .fields import (
    NO_DEFAULT,
    bind,
    declared_fields,
    is_control,
    per_form_class,
    static_default,
)
from .schema import form_document
from .temporal import Temporal, temporal

_F = t.TypeVar("_F", bound=Form)

#: Appends a value's form-data pairs under a name.
_Encoder = Callable[[list[tuple[str, t.Any]], str, t.Any], None]
#: Where a schema error's path lands among the form's fields: a dict for a
#: form (by key), a one-item list for a list's entries, ``None`` for a field.
# (t.Union: a recursive alias names itself in strings, which `|` cannot join)
_Shape = t.Union[dict[str, "_Shape"], list["_Shape"], None]  # noqa: UP007
_NOT_A_VALUE = N_("Not a valid value.")
_MISSING = N_("This field is required.")

_SUBMIT_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))


def validate_form_data(
    form_class: type[Form], data: Mapping[str, t.Any] | None
) -> tuple[dict[str, t.Any], dict[str, list[str]]]:
    """Validate plain data with a form, as if a browser had posted it.

    A mapping of JSON values must first be valid against the form's schema
    (:func:`~flask_statemgr.forms.form_schema`), so the server accepts
    exactly what the schema accepts. It then becomes the form data a browser
    sends: ``True`` is ``"y"``, ``False`` is left out, a list repeats its
    key, a nested object or list uses WTForms' ``name-0-sub`` keys, dates
    and times (RFC 3339 and the shapes the schema gives) use the field's
    format, other values their text. An offset is converted to the ``tz`` of
    a :class:`~wtforms.fields.DateTimeLocalField`, or else to UTC, and the
    value is naive as the field gives it; digits below the field's format
    (seconds for ``%H:%M``, fractions) are dropped. A left-out key takes the
    field's static default. Python values (dates, :class:`~decimal.Decimal`)
    are taken as they are. A multidict (a form-encoded post, possibly with
    files) is used as it is, without the schema. Unknown keys are ignored.

    Where the form refuses a value, its messages are the errors. Where only
    the schema does, the error is ``"Not a valid value."`` (also for a value
    of the wrong JSON type, such as ``null``, ``"3"`` for a number or
    ``true`` for a text) or ``"This field is required."``.

    CSRF is not checked, and the current request's form is never read, so
    this works for :class:`flask_wtf.FlaskForm` with or without an app or
    request context.

    :param form_class: A :class:`wtforms.Form` or
        :class:`flask_wtf.FlaskForm` subclass.
    :param data: Field values by field name, or a multidict.
    :return: The form's data, without buttons and CSRF token, and the
        errors: each message list under the field's name, with nested fields
        as ``address.city`` or ``tags.0``, and errors about the whole form
        under ``""``. No errors means the data is valid.
    """
    info = _inputs(form_class)
    refused = {} if data is None or hasattr(data, "getlist") else _schema_errors(info, data)
    form = form_class(formdata=_formdata(info, data), meta=_meta(info))
    valid = form.validate() and not refused
    errors: dict[str, list[str]] = {}
    _flatten_errors(form.errors, "", errors)
    _merge_refusals(errors, refused)

    if not valid and not errors:
        # A custom validate() may refuse without saying why.
        errors[""] = [gettext("The form is not valid.")]

    values = {key: value for key, value in form.data.items() if key not in info.skip}
    return values, errors


def bind_form(form_class: type[_F], formdata: Mapping[str, t.Any] | None = None, **kwargs: t.Any) -> _F:
    """An instance of ``form_class`` bound to submitted data, for a view
    that shows the form on GET and validates it on POST.

    Unlike :func:`validate_form_data`, the form's own meta applies, so a
    :class:`flask_wtf.FlaskForm` checks its CSRF token.

    :param form_class: A :class:`wtforms.Form` or
        :class:`flask_wtf.FlaskForm` subclass.
    :param formdata: A multidict, or a mapping of JSON values converted as
        :func:`validate_form_data` does (without the schema check). If not
        given, the current request's form and files (or JSON body) when it
        submits data, else nothing, so the form shows its defaults or
        ``obj``.
    :param kwargs: Passed to the form, such as ``obj`` or ``meta``.
    """
    if formdata is None and has_request_context() and request.method in _SUBMIT_METHODS:
        if request.files:
            formdata = CombinedMultiDict((request.files, request.form))
        elif request.is_json:
            body = request.get_json(silent=True)
            formdata = body if isinstance(body, Mapping) else {}
        else:
            formdata = request.form

    posted = None
    if formdata is not None:
        posted = _formdata(_inputs(form_class), formdata)

    form: _F = form_class(formdata=posted, **kwargs)
    return form


def _no_translations(form: Form) -> None:
    return None


def _flask_wtf_translations(form: Form) -> t.Any:
    # a plain WTForms form follows the locale as a FlaskForm does
    if not current_app.config.get("WTF_I18N_ENABLED", True):
        return None
    from flask_wtf.i18n import translations

    return translations


_NO_CSRF: dict[str, t.Any] = {"csrf": False}
_NO_CSRF_I18N: dict[str, t.Any] = {"csrf": False, "get_translations": _flask_wtf_translations}
_NO_CSRF_NO_APP: dict[str, t.Any] = {
    "csrf": False,
    "get_translations": _no_translations,
}


def _meta(info: _FormInputs) -> dict[str, t.Any]:
    """The meta of a form that checks data: no CSRF, and translations that
    do not need an app where there is none."""
    # Flask-WTF reads its translations setting from current_app.
    if info.flask:
        return _NO_CSRF if has_app_context() else _NO_CSRF_NO_APP
    return _NO_CSRF_I18N if has_app_context() else _NO_CSRF


@dataclasses.dataclass(frozen=True)
class _Input:
    """How one field's JSON value becomes form data."""

    key: str
    #: The name the field posts under, without the prefix of enclosing forms.
    name: str
    encode: _Encoder
    #: What a left-out key means: the static default, or ``{}`` for a form.
    default: t.Any


@dataclasses.dataclass(frozen=True)
class _FormInputs:
    """What checking data needs to know of a form class, computed once."""

    #: The form's schema (:func:`~flask_statemgr.forms.schema.form_document`).
    document: dict[str, t.Any]
    #: Each input field, in order.
    inputs: tuple[_Input, ...]
    #: Where errors go, by field key.
    shape: dict[str, _Shape]
    #: Keys of ``form.data`` that are not user input.
    skip: frozenset[str]
    #: A Flask-WTF form, which needs an app to find its translations.
    flask: bool

    @functools.cached_property
    def validator(self) -> Draft202012Validator:
        # No format checker: the shapes are patterns, and the dates they
        # allow are parsed (and refused when impossible) by the field.
        return Draft202012Validator(self.document)


@per_form_class
def _inputs(form_class: type[Form]) -> _FormInputs:
    # First, so that a form without a schema is refused before any data.
    document = form_document(form_class)
    inputs: list[_Input] = []
    shape: dict[str, _Shape] = {}
    skip: set[str] = set()

    for key, unbound in declared_fields(form_class):
        field = bind(unbound, unbound.name or key)

        if is_control(field):
            skip.add(key)
            continue

        default = {} if isinstance(field, FormField) else static_default(field)
        inputs.append(_Input(key, field.name, _encoder(field, unbound), default))
        shape[key] = _shape(field)

    return _FormInputs(
        document=document,
        inputs=tuple(inputs),
        shape=shape,
        skip=frozenset(skip),
        flask=issubclass(form_class, FlaskForm),
    )


def _shape(field: t.Any) -> _Shape:
    if isinstance(field, FormField):
        return _inputs(field.form_class).shape

    if isinstance(field, FieldList):
        return [_shape(bind(field.unbound_field, ""))]

    return None


# -- checking JSON data with the schema


def _schema_errors(info: _FormInputs, data: Mapping[str, t.Any]) -> dict[str, str]:
    """The messages by error path of the fields the schema refuses, with
    ``"!"`` before the message when it overrides the form's own."""
    refused: dict[str, str] = {}

    for error in info.validator.iter_errors(data):
        for path, message in _refusals(error, data):
            key = _error_path(info.shape, path)
            if not refused.get(key, "").startswith("!"):
                refused[key] = message

    return refused


def _refusals(error: t.Any, data: Mapping[str, t.Any]) -> list[tuple[list[t.Any], str]]:
    """The paths and messages one schema error gives."""
    where = list(error.absolute_path)

    if error.validator == "required":
        keys = [k for k in error.validator_value if k not in error.instance]
        return [(where + [k], gettext(_MISSING)) for k in keys]

    if not _is_json(_value_at(data, where)):
        # A Python value (a date, a Decimal) is the field's to read.
        return []

    if error.validator == "type" and not _postable(error.instance, error.validator_value):
        # What the form would say of the text it was given instead is
        # beside the point.
        return [(where, "!" + gettext(_NOT_A_VALUE))]

    return [(where, gettext(_NOT_A_VALUE))]


def _postable(value: t.Any, kind: t.Any) -> bool:
    """Whether a browser could post ``value`` where the schema wants a
    ``kind``: text or a number for one field, not null, a boolean for a
    text, an object, or a scalar for a form or list."""
    if kind in ("object", "array"):
        return False

    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _value_at(data: t.Any, path: list[t.Any]) -> t.Any:
    for part in path:
        data = data[part]
    return data


def _is_json(value: t.Any) -> bool:
    return value is None or isinstance(value, (str, int, float, list, dict))


def _error_path(shape: _Shape, path: list[t.Any]) -> str:
    """A schema path as the form's error key: inside a field such as a
    multi-select, the error is the field's."""
    parts: list[str] = []

    for part in path:
        if isinstance(shape, dict) and part in shape:
            shape = shape[part]
        elif isinstance(shape, list) and isinstance(part, int):
            shape = shape[0]
        else:
            break
        parts.append(str(part))

    return ".".join(parts)


def _merge_refusals(errors: dict[str, list[str]], refused: dict[str, str]) -> None:
    """Add the schema's refusals to the form's errors: a wrong type replaces
    the form's messages; otherwise the form's own messages, where it has any
    for the field, say why."""
    for path, message in refused.items():
        # The form's own errors (under "") relate to no field.
        related = [key for key in errors if key and (_inside(key, path) or _inside(path, key))]

        if message.startswith("!"):
            for key in related:
                if _inside(key, path):
                    del errors[key]
            errors[path] = [message[1:]]
        elif not related:
            errors[path] = [message]


def _inside(key: str, path: str) -> bool:
    """Whether the error key ``key`` is ``path`` or a field inside it."""
    return key == path or key.startswith(path + ".")


# -- form data


def _formdata(info: _FormInputs, data: Mapping[str, t.Any] | None) -> t.Any:
    """The form data a browser would post for ``data``."""
    if data is None:
        return MultiDict()

    if hasattr(data, "getlist"):
        return data

    pairs: list[tuple[str, t.Any]] = []
    _encode_fields(info.inputs, "", pairs, data)
    return MultiDict(pairs)


def _encoder(field: t.Any, unbound: t.Any) -> _Encoder:
    if isinstance(field, FormField):
        inputs = _inputs(field.form_class).inputs
        return functools.partial(_encode_form, inputs, field.separator)

    if isinstance(field, FieldList):
        inner = _encoder(bind(field.unbound_field, ""), field.unbound_field)
        # The bound field keeps its separator private.
        separator = unbound.kwargs.get("separator", "-")
        return functools.partial(_encode_list, inner, separator)

    if isinstance(field, BooleanField):
        return _encode_bool

    if isinstance(field, DateTimeField):
        # WTForms 3.3 added the zone of a DateTimeLocalField.
        return functools.partial(_encode_temporal, temporal(field), field.format[0], getattr(field, "tz", None))

    return _encode_text


def _encode_fields(
    inputs: tuple[_Input, ...],
    prefix: str,
    pairs: list[tuple[str, t.Any]],
    data: Mapping[str, t.Any],
) -> None:
    for item in inputs:
        if item.key in data:
            item.encode(pairs, prefix + item.name, data[item.key])
        elif item.default is not NO_DEFAULT:
            # A left-out field is what the form would show: its default.
            item.encode(pairs, prefix + item.name, item.default)


def _encode_form(
    inputs: tuple[_Input, ...],
    separator: str,
    pairs: list[tuple[str, t.Any]],
    name: str,
    value: t.Any,
) -> None:
    if isinstance(value, Mapping):
        _encode_fields(inputs, name + separator, pairs, value)


def _encode_list(
    inner: _Encoder,
    separator: str,
    pairs: list[tuple[str, t.Any]],
    name: str,
    value: t.Any,
) -> None:
    if value is None:
        return

    for index, item in enumerate(value if isinstance(value, (list, tuple)) else [value]):
        inner(pairs, f"{name}{separator}{index}", item)


def _placeholder(pairs: list[tuple[str, t.Any]], name: str) -> None:
    # A value no browser could post is posted empty, so that the field (or
    # a list's entry) exists and its Python text is never stored.
    pairs.append((name, ""))


def _encode_bool(pairs: list[tuple[str, t.Any]], name: str, value: t.Any) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _encode_bool(pairs, name, item)
    elif isinstance(value, Mapping):
        _placeholder(pairs, name)
    elif isinstance(value, str):
        # "y", "false", ...: the field's false_values decide.
        pairs.append((name, value))
    elif value:
        pairs.append((name, "y"))


def _encode_temporal(
    shape: Temporal,
    format: str,
    tz: tzinfo | Callable[[], tzinfo | None] | None,
    pairs: list[tuple[str, t.Any]],
    name: str,
    value: t.Any,
) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _encode_temporal(shape, format, tz, pairs, name, item)
        return

    if isinstance(value, str) and (m := re.match(shape.pattern, value)):
        try:
            value = shape.parse(m)
        except ValueError:
            # An impossible date: the field refuses the text in its words.
            pass

    if isinstance(value, (date, time)):
        pairs.append((name, _local(value, tz).strftime(format)))
    elif isinstance(value, (Mapping, bool)):
        _placeholder(pairs, name)
    elif value is not None:
        pairs.append((name, _text(value)))


def _local(value: date | time, tz: tzinfo | Callable[[], tzinfo | None] | None) -> date | time:
    """An aware datetime in the field's zone, which may be the current
    user's; without one, naive values stand for UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        return value

    zone = tz() if callable(tz) else tz
    value = value.astimezone(zone or UTC)
    return value.replace(tzinfo=None) if zone is None else value


def _encode_text(pairs: list[tuple[str, t.Any]], name: str, value: t.Any) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _encode_text(pairs, name, item)
    elif isinstance(value, (Mapping, bool)):
        _placeholder(pairs, name)
    elif value is not None:
        pairs.append((name, _text(value)))


def _text(value: t.Any) -> t.Any:
    """The text a browser would post for a value; an uploaded file stays
    itself, as in ``request.files``."""
    if isinstance(value, (str, FileStorage)):
        return value

    # JSON has one number type: 3.0 must be accepted where 3 is.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))

    return str(value)


def _flatten_errors(errors: t.Any, path: str, out: dict[str, list[str]]) -> None:
    """WTForms' nested errors (dicts for forms, lists for fields and field
    lists) as messages by dotted path."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            _flatten_errors(value, _join(path, key), out)
    else:
        for index, item in enumerate(errors):
            if isinstance(item, (list, tuple, dict)):
                _flatten_errors(item, _join(path, index), out)
            else:
                out.setdefault(path, []).append(str(item))


def _join(path: str, key: str | int | None) -> str:
    # Form-level errors are under None or "", depending on the WTForms
    # version; they belong to the form's own path.
    if key is None or key == "":
        return path

    return f"{path}.{key}" if path else str(key)
