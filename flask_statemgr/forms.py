"""WTForms forms as JSON Schema, and validating plain data with a form.

No maintained library converts WTForms forms to JSON Schema, so this module
reads WTForms' public API (field classes, widgets, validators, ``choices``,
``default``, ``label``, ``description``) itself.

The schema is JSON Schema 2020-12. What it says about each field:

- ``title`` is the label, ``description`` the field's description,
  ``default`` a static default (a callable default is left out: the schema is
  cached and must not freeze "now" or a database value into it).
- ``x-widget`` names what to render: the widget's HTML input type (``text``,
  ``number``, ``checkbox``, ``date``, ``datetime-local``, ``hidden``, ...),
  or ``textarea``, ``select``, ``radio``, or ``checkbox`` for a list of
  checkboxes. It follows the field's widget, so ``StringField(widget=
  TextArea())`` is a textarea too.
- Choices are ``enum`` with the labels in ``x-enumTitles``, a list of the
  same length and order. Values are the coerced values when they are JSON
  scalars (``1`` for ``coerce=int``), else the text a browser would post.
  Choices computed at run time (``None`` or a callable) and fields with
  ``validate_choice=False`` have no ``enum``. Option groups are flattened.
- Dates and times are strings: ``format`` is ``date``, ``time`` or
  ``date-time``, and ``x-format`` lists the :func:`~time.strftime` formats
  the field parses, any of which is accepted. These are local values without
  a UTC offset, unlike RFC 3339: send what an HTML input gives, e.g.
  ``2024-05-01T14:30`` for a :class:`~wtforms.fields.DateTimeLocalField`.
  Month and week fields have no ``format``, only ``x-format``.
- A password has ``format: password`` and ``writeOnly``.
- ``required`` lists the fields whose first requiring validator
  (``DataRequired``, ``InputRequired``) comes before any ``Optional``, and
  single-choice fields without ``Optional``, which refuse no value as not a
  choice. A required string gets ``minLength`` 1 and a required checkbox
  ``const: true``, since the form refuses an empty value.
- ``Length``, ``NumberRange``, ``Regexp``, ``Email``, ``URL``, ``UUID``,
  ``IPAddress``, ``AnyOf``, ``NoneOf``, ``ReadOnly`` and ``Disabled`` map to
  their JSON Schema keywords; ``EqualTo`` to ``x-equalTo``, the other
  field's name.
- ``FormField`` is a nested object, ``FieldList`` an array.
- Submit buttons, CSRF tokens and file fields (which a JSON body cannot
  carry; post them as multipart form data) are left out.
- ``additionalProperties`` is not set: unknown keys are ignored, not
  refused.

The form stays the authority: the schema describes it for clients but cannot
say everything. ``DataRequired`` also rejects ``0`` and blank strings; other
validators such as ``NumberRange`` refuse an empty value too, without making
the field required here (WTForms needs ``Optional`` to allow one);
``DateRange`` and custom validators are not described; and a regular
expression that needs Python-only syntax or flags gets no ``pattern``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import typing as t
import weakref
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, tzinfo
from decimal import Decimal

from flask import has_app_context, has_request_context, request
from flask_wtf import FlaskForm
from werkzeug.datastructures import CombinedMultiDict, FileStorage, MultiDict
from wtforms import Form, validators, widgets
from wtforms.csrf.core import CSRFTokenField
from wtforms.fields import (
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    FieldList,
    FileField,
    FloatField,
    FormField,
    IntegerField,
    MonthField,
    MultipleFileField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TimeField,
    URLField,
    WeekField,
)
from wtforms.fields.core import UnboundField
from wtforms.meta import DefaultMeta

__all__ = ["bind_form", "form_schema", "validate_form_data"]

_F = t.TypeVar("_F", bound=Form)

#: Appends a value's form-data pairs under a name.


class _Pairs(list[tuple[str, t.Any]]):
    """Form data pairs being built from JSON values, and the names of the
    fields whose value no browser could have posted (a JSON object for a
    text field, a boolean for a date): those are refused, not guessed."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []

    def refuse(self, name: str) -> None:
        # posted empty, so that the field (or a list's entry) exists to
        # carry the error
        self.append((name, ""))
        self.refused.append(name)


_Encoder = Callable[[_Pairs, str, t.Any], None]
_NOT_A_VALUE = "Not a valid value."

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SUBMIT_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
_SCHEMA_META = DefaultMeta()


def form_schema(form_class: type[Form]) -> dict[str, t.Any]:
    """The JSON Schema of a form's input, described in the module docs.

    It is computed once per form class, without an app or request, and the
    same dict is returned on every call: treat it as read-only. Its JSON text
    is stable, so it can be hashed into an ETag.

    :param form_class: A :class:`wtforms.Form` or
        :class:`flask_wtf.FlaskForm` subclass.
    """
    return _info(form_class).document


def validate_form_data(
    form_class: type[Form], data: Mapping[str, t.Any] | None
) -> tuple[dict[str, t.Any], dict[str, list[str]]]:
    """Validate plain data with a form, as if a browser had posted it.

    JSON values become the form data a browser sends: ``True`` is ``"y"``,
    ``False`` and ``None`` are left out, a list repeats the key of a
    multi-valued field, a nested object or list uses WTForms' ``name-0-sub``
    keys, dates and times use the field's format, other values their text. A
    value no browser could post (a JSON object for any field but a form
    field, a boolean for a text, number or date field, a list for a field
    that takes one value) is a field error, never its Python text. A
    multidict (a form-encoded post, possibly with files) is used as it is.
    Unknown keys are ignored.

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
    info = _info(form_class)
    # Flask-WTF reads its translations setting from current_app.
    meta = _NO_CSRF if not info.flask or has_app_context() else _NO_CSRF_NO_APP
    formdata, refused = _formdata(info, data)
    form = form_class(formdata=formdata, meta=meta)
    valid = form.validate()
    if refused:
        valid = False
        _refuse(form, refused)
    errors: dict[str, list[str]] = {}
    _flatten_errors(form.errors, "", errors)

    if not valid and not errors:
        # A custom validate() may refuse without saying why.
        errors[""] = ["The form is not valid."]

    values = {key: value for key, value in form.data.items() if key not in info.skip}
    return values, errors


def bind_form(
    form_class: type[_F], formdata: Mapping[str, t.Any] | None = None, **kwargs: t.Any
) -> _F:
    """An instance of ``form_class`` bound to submitted data, for a view
    that shows the form on GET and validates it on POST.

    Unlike :func:`validate_form_data`, the form's own meta applies, so a
    :class:`flask_wtf.FlaskForm` checks its CSRF token.

    :param form_class: A :class:`wtforms.Form` or
        :class:`flask_wtf.FlaskForm` subclass.
    :param formdata: A multidict, or a mapping of JSON values converted as
        :func:`validate_form_data` does. If not given, the current request's
        form and files (or JSON body) when it submits data, else nothing, so
        the form shows its defaults or ``obj``.
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

    if formdata is not None:
        # a value no browser could post is left out, as a browser would
        formdata, _ = _formdata(_info(form_class), formdata)

    form: _F = form_class(formdata=formdata, **kwargs)
    return form


def _no_translations(form: Form) -> None:
    return None


_NO_CSRF: dict[str, t.Any] = {"csrf": False}
_NO_CSRF_NO_APP: dict[str, t.Any] = {
    "csrf": False,
    "get_translations": _no_translations,
}


@dataclasses.dataclass(frozen=True)
class _FormInfo:
    """What this module knows about a form class, computed once."""

    #: The schema :func:`form_schema` returns.
    document: dict[str, t.Any]
    #: The same without ``$schema``, to nest in another form's schema.
    schema: dict[str, t.Any]
    #: ``(key, form data name, encoder)`` for each input field.
    encoders: tuple[tuple[str, str, _Encoder], ...]
    #: Keys of ``form.data`` that are not user input.
    skip: frozenset[str]
    #: A Flask-WTF form, which needs an app to find its translations.
    flask: bool


# Weak keys, so form classes built on the fly are not kept alive; the values
# refer to no form class. Two threads may both compute an entry, which gives
# the same result.
_cache: weakref.WeakKeyDictionary[type, _FormInfo] = weakref.WeakKeyDictionary()


def _info(form_class: type[Form]) -> _FormInfo:
    try:
        return _cache[form_class]
    except KeyError:
        pass

    properties: dict[str, t.Any] = {}
    required: list[str] = []
    encoders: list[tuple[str, str, _Encoder]] = []
    skip: set[str] = set()

    for key, unbound in _declared_fields(form_class):
        field = _bind(unbound, unbound.name or key)

        if _is_control(field):
            skip.add(key)
            continue

        encoders.append((key, field.name, _encoder(field, unbound)))
        described = _field_schema(field)

        if described is not None:
            properties[key], is_required = described

            if is_required:
                required.append(key)

    schema = {"type": "object", "properties": properties, "required": required}
    info = _FormInfo(
        document={"$schema": _DIALECT, **schema},
        schema=schema,
        encoders=tuple(encoders),
        skip=frozenset(skip),
        flask=issubclass(form_class, FlaskForm),
    )
    _cache[form_class] = info
    return info


def _declared_fields(form_class: type[Form]) -> list[tuple[str, t.Any]]:
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


def _bind(unbound: t.Any, name: str) -> t.Any:
    """A field instance to read the definition from, bound to no form."""
    extra: dict[str, t.Any] = {}

    if callable(unbound.kwargs.get("choices")):
        # Run-time choices don't belong in a cached schema, and older WTForms
        # would call them here.
        extra["choices"] = None

    return unbound.bind(form=None, name=name, _meta=_SCHEMA_META, **extra)


def _is_control(field: t.Any) -> bool:
    return isinstance(field, (SubmitField, CSRFTokenField)) or (
        getattr(field.widget, "input_type", None) == "submit"
    )


# -- schema


def _field_schema(field: t.Any) -> tuple[dict[str, t.Any], bool] | None:
    """A field's schema and whether it is required, or ``None`` if the field
    is left out."""
    if _is_control(field) or isinstance(field, FileField):
        return None

    schema: dict[str, t.Any] = {}
    required = _is_required(field)

    if isinstance(field, FormField):
        schema.update(_info(field.form_class).schema)
        required = bool(schema["required"])
    elif isinstance(field, FieldList):
        # Bound with an empty name so that only an explicit label gives the
        # items a title.
        items = _field_schema(_bind(field.unbound_field, ""))

        if items is None:
            return None

        schema.update(type="array", items=items[0])

        if field.max_entries:
            schema["maxItems"] = field.max_entries
    elif isinstance(field, BooleanField):
        schema["type"] = "boolean"
    elif isinstance(field, SelectMultipleField):
        schema.update(type="array", items=_choice_schema(field), uniqueItems=True)
    elif isinstance(field, SelectField):
        schema.update(_choice_schema(field))
    elif isinstance(field, IntegerField):
        schema["type"] = "integer"
    elif isinstance(field, (DecimalField, FloatField)):
        schema["type"] = "number"
    elif isinstance(field, DateTimeField):
        schema["type"] = "string"

        if not isinstance(field, (MonthField, WeekField)):
            if isinstance(field, DateField):
                schema["format"] = "date"
            elif isinstance(field, TimeField):
                schema["format"] = "time"
            else:
                schema["format"] = "date-time"
    elif isinstance(field, StringField):
        schema["type"] = "string"

        if isinstance(field, PasswordField):
            schema.update(format="password", writeOnly=True)
        elif isinstance(field, EmailField):
            schema["format"] = "email"
        elif isinstance(field, URLField):
            schema["format"] = "uri"

    _add_validators(field, schema, required)

    if label := str(field.label.text):
        schema["title"] = label

    if description := str(field.description):
        schema["description"] = description

    default = _default(field)

    if default is not None:
        schema["default"] = default

    if widget := _widget_name(field):
        schema["x-widget"] = widget

    if isinstance(field, DateTimeField):
        schema["x-format"] = list(field.format)

    return schema, required


def _is_required(field: t.Any) -> bool:
    """Whether the first validator that decides about an empty value
    requires one; ``Optional`` placed before it stops the chain."""
    for validator in field.validators:
        flags = getattr(validator, "field_flags", ())

        if "optional" in flags:
            return False

        if "required" in flags:
            return True

    # No value is not one of the choices, unless Optional lets it through.
    return (
        isinstance(field, SelectField)
        and not isinstance(field, SelectMultipleField)
        and field.validate_choice
    )


def _choice_schema(field: t.Any) -> dict[str, t.Any]:
    """``type``, ``enum`` and ``x-enumTitles`` of one choice."""
    if not field.validate_choice or field.choices is None:
        kind = {str: "string", int: "integer", float: "number"}.get(field.coerce)
        return {"type": kind} if kind else {}

    # iter_choices marks the option equal to the data as selected; this
    # unprocessed field has none.
    field.data = None
    values = []
    titles = []

    for choice in field.iter_choices():
        values.append(_choice_value(field, choice[0]))
        titles.append(str(choice[1]))

    schema: dict[str, t.Any] = {}
    kinds = {_json_type(value) for value in values}

    if kinds == {"integer", "number"}:
        kinds = {"number"}

    if len(kinds) == 1:
        schema["type"] = kinds.pop()

    schema.update({"enum": values, "x-enumTitles": titles})
    return schema


def _choice_value(field: t.Any, value: t.Any) -> t.Any:
    """A choice value as the form's data holds it, if that is a JSON
    scalar, else as the text a browser posts."""
    try:
        coerced = field.coerce(value)
    except (TypeError, ValueError):
        return str(value)

    if isinstance(coerced, (str, int)) or (
        isinstance(coerced, float) and math.isfinite(coerced)
    ):
        return coerced

    return str(value)


def _json_type(value: t.Any) -> str:
    if isinstance(value, bool):
        return "boolean"

    if isinstance(value, int):
        return "integer"

    if isinstance(value, float):
        return "number"

    return "string"


def _add_validators(field: t.Any, schema: dict[str, t.Any], required: bool) -> None:
    kind = schema.get("type")
    patterns: list[str] = []

    if required and kind == "boolean":
        schema["const"] = True

    if required and kind == "string" and not isinstance(field, SelectField):
        schema["minLength"] = 1

    for v in field.validators:
        if isinstance(v, validators.Length):
            low, high = (
                ("minLength", "maxLength")
                if kind == "string"
                else ("minItems", "maxItems")
            )

            if kind in ("string", "array"):
                if v.min > 0:
                    schema[low] = max(schema.get(low, 0), v.min)

                if v.max != -1:
                    schema[high] = min(schema.get(high, v.max), v.max)
        elif isinstance(v, validators.NumberRange):
            # Bounds may be callables evaluated at validation time.
            if v.min is not None and not callable(v.min):
                schema["minimum"] = _json(v.min)

            if v.max is not None and not callable(v.max):
                schema["maximum"] = _json(v.max)
        elif isinstance(v, validators.Regexp):
            pattern = _ecma_pattern(v)

            if pattern is not None:
                patterns.append(pattern)
        elif isinstance(v, validators.Email):
            schema.setdefault("format", "email")
        elif isinstance(v, validators.URL):
            schema.setdefault("format", "uri")
        elif isinstance(v, validators.UUID):
            schema.setdefault("format", "uuid")
        elif isinstance(v, validators.IPAddress):
            if v.ipv4 != v.ipv6:
                schema.setdefault("format", "ipv4" if v.ipv4 else "ipv6")
        elif isinstance(v, (validators.AnyOf, validators.NoneOf)):
            values = _json(v.values)

            # Membership in a string is a substring test, not an enum.
            if kind != "array" and isinstance(values, list):
                if isinstance(v, validators.NoneOf):
                    schema["not"] = {"enum": values}
                else:
                    schema.setdefault("enum", values)
        elif isinstance(v, validators.EqualTo):
            schema["x-equalTo"] = v.fieldname

    if len(patterns) == 1:
        schema["pattern"] = patterns[0]
    elif patterns:
        schema["allOf"] = [{"pattern": pattern} for pattern in patterns]

    if field.flags.readonly or field.flags.disabled:
        schema["readOnly"] = True


def _ecma_pattern(validator: t.Any) -> str | None:
    """A ``Regexp`` validator's expression in the syntax shared by Python
    and ECMA-262 (what JSON Schema uses), anchored as the validator matches,
    or ``None`` if it can't be expressed."""
    regex = validator.regex
    # Flags can't be written inside an ECMA-262 pattern.
    if not isinstance(regex.pattern, str) or regex.flags & ~(re.UNICODE | re.ASCII):
        return None

    source = regex.pattern
    out = []
    i = 0

    while i < len(source):
        if source[i] == "\\":
            escape = source[i : i + 2]
            out.append({"\\A": "^", "\\Z": "$"}.get(escape, escape))
            i += 2
        elif source.startswith("(?", i):
            if source.startswith("(?P<", i):
                # A named group is a plain group to JSON Schema.
                out.append("(")
                i = source.index(">", i) + 1
            elif source.startswith(("(?:", "(?=", "(?!"), i):
                out.append(source[i : i + 3])
                i += 3
            elif source.startswith(("(?<=", "(?<!"), i):
                out.append(source[i : i + 4])
                i += 4
            else:
                # Inline flags, comments, conditionals, named references.
                return None
        else:
            out.append(source[i])
            i += 1

    pattern = "".join(out)
    # WTForms 3.3 added the matcher; before, it was always re.match.
    matcher = getattr(validator, "matcher", re.match)

    if matcher is re.search:
        return pattern

    if matcher is re.fullmatch:
        return f"^(?:{pattern})$"

    if matcher is not re.match:
        return None

    # A JSON Schema pattern matches anywhere, re.match only at the start.
    if pattern.startswith("^") and "|" not in pattern:
        return pattern

    return f"^(?:{pattern})"


def _default(field: t.Any) -> t.Any:
    """The field's static default as JSON, or ``None``."""
    default = field.default

    if default is None or callable(default) or isinstance(field, FormField):
        return None

    if isinstance(field, BooleanField):
        return bool(default)

    if isinstance(field, SelectMultipleField):
        return [_choice_value(field, value) for value in default]

    if isinstance(field, SelectField):
        return _choice_value(field, default)

    if isinstance(field, DateTimeField) and isinstance(default, (date, time)):
        return default.strftime(field.format[0])

    if isinstance(field, FieldList) and not default:
        return None

    return _json(default)


def _json(value: t.Any) -> t.Any:
    """A Python value as JSON; a set is sorted so the schema text is
    stable."""
    if value is None or isinstance(value, (str, int)):
        return value

    if isinstance(value, float) and math.isfinite(value):
        return value

    if isinstance(value, Decimal) and value.is_finite():
        return int(value) if value == value.to_integral_value() else float(value)

    if isinstance(value, (set, frozenset)):
        return sorted((_json(item) for item in value), key=json.dumps)

    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]

    return str(value)


def _widget_name(field: t.Any) -> str | None:
    widget = field.widget

    if isinstance(widget, widgets.TextArea):
        return "textarea"

    if isinstance(widget, widgets.Select):
        return "select"

    if isinstance(widget, widgets.ListWidget):
        # Radio buttons or checkboxes, one per choice; a FieldList has no
        # option widget.
        widget = getattr(field, "option_widget", None)

    name = getattr(widget, "input_type", None)
    return name if isinstance(name, str) else None


# -- form data


def _formdata(info: _FormInfo, data: Mapping[str, t.Any] | None) -> tuple[t.Any, list[str]]:
    """The form data a browser would post for ``data``, and the names of the
    fields given a value no browser could post."""
    if data is None:
        return MultiDict(), []

    if hasattr(data, "getlist"):
        return data, []

    pairs = _Pairs()
    _encode_fields(info.encoders, "", pairs, data)
    return MultiDict(pairs), pairs.refused


def _encoder(field: t.Any, unbound: t.Any) -> _Encoder:
    if isinstance(field, FormField):
        encoders = _info(field.form_class).encoders
        return functools.partial(_encode_form, encoders, field.separator)

    if isinstance(field, FieldList):
        inner = _encoder(_bind(field.unbound_field, ""), field.unbound_field)
        # The bound field keeps its separator private.
        separator = unbound.kwargs.get("separator", "-")
        return functools.partial(_encode_list, inner, separator)

    if isinstance(field, BooleanField):
        return _encode_bool

    if isinstance(field, DateTimeField):
        # WTForms 3.3 added the zone of a DateTimeLocalField.
        return functools.partial(
            _encode_temporal, field.format[0], getattr(field, "tz", None)
        )

    if isinstance(field, (SelectMultipleField, MultipleFileField)):
        return _encode_text

    return _encode_one


def _encode_fields(
    encoders: tuple[tuple[str, str, _Encoder], ...],
    prefix: str,
    pairs: _Pairs,
    data: Mapping[str, t.Any],
) -> None:
    for key, name, encode in encoders:
        if key in data:
            encode(pairs, prefix + name, data[key])


def _encode_form(
    encoders: tuple[tuple[str, str, _Encoder], ...],
    separator: str,
    pairs: _Pairs,
    name: str,
    value: t.Any,
) -> None:
    if isinstance(value, Mapping):
        _encode_fields(encoders, name + separator, pairs, value)


def _encode_list(
    inner: _Encoder,
    separator: str,
    pairs: _Pairs,
    name: str,
    value: t.Any,
) -> None:
    if value is None:
        return

    for index, item in enumerate(
        value if isinstance(value, (list, tuple)) else [value]
    ):
        inner(pairs, f"{name}{separator}{index}", item)


def _encode_bool(pairs: _Pairs, name: str, value: t.Any) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _encode_bool(pairs, name, item)
    elif isinstance(value, Mapping):
        pairs.refuse(name)
    elif isinstance(value, str):
        # "y", "false", ...: the field's false_values decide.
        pairs.append((name, value))
    elif value:
        pairs.append((name, "y"))


def _encode_temporal(
    format: str,
    tz: tzinfo | Callable[[], tzinfo | None] | None,
    pairs: _Pairs,
    name: str,
    value: t.Any,
) -> None:
    if isinstance(value, (list, tuple)):
        # one date or time per field, as for _encode_one
        pairs.refuse(name)
    elif isinstance(value, (date, time)):
        if isinstance(value, datetime) and value.tzinfo is not None:
            # The field reads local times in its zone, which may be the
            # current user's; without one, the time is taken as it is.
            zone = tz() if callable(tz) else tz

            if zone is not None:
                value = value.astimezone(zone)

        pairs.append((name, value.strftime(format)))
    elif isinstance(value, (Mapping, bool)):
        pairs.refuse(name)
    elif value is not None:
        pairs.append((name, _text(value)))


def _encode_one(pairs: _Pairs, name: str, value: t.Any) -> None:
    # A field that takes one value would keep the list's first and drop the
    # rest without a word.
    if isinstance(value, (list, tuple)):
        pairs.refuse(name)
    else:
        _encode_text(pairs, name, value)


def _encode_text(pairs: _Pairs, name: str, value: t.Any) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _encode_text(pairs, name, item)
    elif isinstance(value, (Mapping, bool)):
        pairs.refuse(name)
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


def _refuse(fields: t.Iterable[t.Any], names: list[str]) -> None:
    """Make "not a valid value" the only error of the fields ``names`` among
    ``fields``, those of nested forms and lists included."""
    for field in fields:
        if isinstance(field, FormField):
            _refuse(field.form, names)
        elif isinstance(field, FieldList):
            _refuse(field.entries, names)
            # a list that validated cleanly dropped its entries' error lists
            entries = [entry.errors for entry in field.entries]
            if any(entries):
                field.errors = entries
        elif field.name in names:
            field.errors[:] = [_NOT_A_VALUE]


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
