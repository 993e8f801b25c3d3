"""WTForms forms as JSON Schema, and validating plain data with a form.

No maintained library converts WTForms forms to JSON Schema, so this module
reads WTForms' public API (field classes, widgets, validators, ``choices``,
``default``, ``label``, ``description``) itself.

The schema is JSON Schema 2020-12 with standard keywords only, so ajv's
``Ajv2020`` in strict mode and python-jsonschema take it as it is. What it
says about each field:

- ``title`` is the label, ``description`` the field's description,
  ``default`` a static default (a callable default is left out: the schema is
  cached and must not freeze "now" or a database value into it).
- Choices are ``oneOf: [{"const": value, "title": label}]``. Values are the
  coerced values when they are JSON scalars (``1`` for ``coerce=int``), else
  the text a browser would post. Choices computed at run time (``None`` or a
  callable) and fields with ``validate_choice=False`` have no ``oneOf``.
  Option groups are flattened; a value listed twice is listed once.
- Dates and times are strings in fixed shapes, whatever the field's
  :func:`~time.strftime` formats: ``format: date-time`` is RFC 3339 with an
  offset (``2024-05-01T14:30:00+02:00``), ``format: date`` is
  ``2024-05-01``, a time is ``14:30`` or ``14:30:15``, a month ``2024-05``
  and a week ``2024-W18`` (WTForms' ``%W`` week). Years are 1000 to 9999.
  A ``pattern`` spells the shape out, so that every validator reads it the
  same (formats alone leave a space separator, a lower-case ``t`` or
  ``+02`` to each tool).
- A password has ``writeOnly``.
- ``required`` lists the fields the form refuses when they are left out:
  those whose validators refuse no value (``DataRequired``,
  ``InputRequired``, ``Length(min=1)``, ``NumberRange``, ...) unless an
  ``Optional`` comes first, and single-choice fields without ``Optional``. A
  field with a static default is never required: a left-out field takes its
  default (a checkbox with ``default=True`` is checked).
- A requiring validator also constrains a given value: a string needs
  ``minLength`` 1, and with ``DataRequired`` a non-blank character (a
  ``pattern`` of the characters that :meth:`str.strip` keeps); a required
  checkbox is ``const: true``; a required multi-select has ``minItems`` 1;
  ``DataRequired`` refuses ``0`` (``not: {"const": 0}``) and falsy choices.
- ``Length``, ``NumberRange``, ``Regexp``, ``AnyOf``, ``NoneOf``,
  ``ReadOnly`` and ``Disabled`` map to their JSON Schema keywords. A
  ``Regexp`` becomes a ``pattern`` that Python's :mod:`re` and ECMA-262
  (with the ``u`` flag, as ajv and browsers use it) read the same way; one
  that can't be written so raises :exc:`ValueError` when the schema is built.
- ``FormField`` is a nested object, ``FieldList`` an array.
- Submit buttons, CSRF tokens and file fields (which a JSON body cannot
  carry; post them as multipart form data) are left out.
- ``additionalProperties`` is not set: unknown keys are ignored, not
  refused.

Presentation hints are not JSON Schema: :func:`form_ui` gives them as a
react-jsonschema-form uiSchema, ``{"body": {"ui:widget": "textarea"}}``.

:func:`validate_form_data` checks plain data with the schema before the form
checks it, so every tool that reads the schema refuses what the server
refuses. The server's checks go further where the schema cannot follow:
``EqualTo``, ``DateRange``, ``Email``, ``URL``, ``UUID``, ``IPAddress``,
custom validators, filters and inline ``validate_<field>`` methods are the
form's alone.
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
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal

from flask import current_app, has_app_context, has_request_context, request
from flask_wtf import FlaskForm
from jsonschema import Draft202012Validator
from werkzeug.datastructures import CombinedMultiDict, FileStorage, MultiDict
from wtforms import Form, validators, widgets
from wtforms.csrf.core import CSRFTokenField
from wtforms.fields import (
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    FieldList,
    FileField,
    FloatField,
    FormField,
    IntegerField,
    MonthField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TimeField,
    WeekField,
)
from wtforms.fields.core import UnboundField
from wtforms.meta import DefaultMeta

from .i18n import N_, gettext, keep_lazy, resolve
from .patterns import END, portable_pattern, python_class

__all__ = ["bind_form", "form_schema", "form_ui", "validate_form_data"]

_F = t.TypeVar("_F", bound=Form)

#: Appends a value's form-data pairs under a name.
_Encoder = Callable[[list[tuple[str, t.Any]], str, t.Any], None]
#: Where a schema error's path lands among the form's fields: a dict for a
#: form (by key), a one-item list for a list's entries, ``None`` for a field.
_Shape = t.Union[dict[str, "_Shape"], list["_Shape"], None]
_NOT_A_VALUE = N_("Not a valid value.")
_MISSING = N_("This field is required.")

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SUBMIT_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
_SCHEMA_META = DefaultMeta()


def form_schema(form_class: type[Form]) -> dict[str, t.Any]:
    """The JSON Schema of a form's input, described in the module docs.

    It is computed once per form class, without an app or request, and the
    same dict is returned on every call: treat it as read-only. Labels,
    descriptions and choice titles given as lazy strings stay lazy in it and
    are rendered in the current locale on each call (into a copy). Its JSON
    text is stable, so it can be hashed into an ETag.

    :param form_class: A :class:`wtforms.Form` or
        :class:`flask_wtf.FlaskForm` subclass.
    :raise ValueError: A ``Regexp`` validator has no pattern that Python and
        JavaScript read the same way.
    """
    return resolve(_info(form_class).document)


def form_ui(form_class: type[Form]) -> dict[str, t.Any]:
    """The form's presentation hints, as a react-jsonschema-form uiSchema:
    per field that needs one, ``ui:widget`` (``textarea``, ``password``,
    ``hidden``, ``radio``, ``checkboxes``, ``range``, ``email``, ``uri``,
    ``color``, ``time``) or ``ui:inputType`` (``month``, ``week``, ``tel``,
    ``search``); a nested form's hints under its key, a list's under
    ``items``. The rest follows from the schema (a ``oneOf`` is a select,
    ``format: date`` a date input, ...). Cached like :func:`form_schema`.

    :param form_class: A :class:`wtforms.Form` or
        :class:`flask_wtf.FlaskForm` subclass.
    """
    return _info(form_class).ui


def validate_form_data(
    form_class: type[Form], data: Mapping[str, t.Any] | None
) -> tuple[dict[str, t.Any], dict[str, list[str]]]:
    """Validate plain data with a form, as if a browser had posted it.

    A mapping of JSON values must first be valid against the form's schema
    (:func:`form_schema`), so the server accepts exactly what the schema
    accepts. It then becomes the form data a browser sends: ``True`` is
    ``"y"``, ``False`` is left out, a list repeats its key, a nested object
    or list uses WTForms' ``name-0-sub`` keys, dates and times (RFC 3339 and
    the shapes the schema gives) use the field's format, other values their
    text. An offset is converted to the ``tz`` of a
    :class:`~wtforms.fields.DateTimeLocalField`, or else to UTC, and the
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
    info = _info(form_class)
    # Flask-WTF reads its translations setting from current_app.
    if info.flask:
        meta = _NO_CSRF if has_app_context() else _NO_CSRF_NO_APP
    else:
        meta = _NO_CSRF_I18N if has_app_context() else _NO_CSRF
    refused = {} if data is None or hasattr(data, "getlist") else _schema_errors(info, data)
    form = form_class(formdata=_formdata(info, data), meta=meta)
    valid = form.validate() and not refused
    errors: dict[str, list[str]] = {}
    _flatten_errors(form.errors, "", errors)
    _merge_refusals(errors, refused)

    if not valid and not errors:
        # A custom validate() may refuse without saying why.
        errors[""] = [gettext("The form is not valid.")]

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
        posted = _formdata(_info(form_class), formdata)

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
class _FormInfo:
    """What this module knows about a form class, computed once."""

    #: The schema :func:`form_schema` returns.
    document: dict[str, t.Any]
    #: The same without ``$schema``, to nest in another form's schema.
    schema: dict[str, t.Any]
    #: The hints :func:`form_ui` returns.
    ui: dict[str, t.Any]
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


# Weak keys, so form classes built on the fly are not kept alive; the values
# refer to no form class. Two threads may both compute an entry, which gives
# the same result.
_cache: weakref.WeakKeyDictionary[type, _FormInfo] = weakref.WeakKeyDictionary()
_NO_DEFAULT = object()


def _info(form_class: type[Form]) -> _FormInfo:
    try:
        return _cache[form_class]
    except KeyError:
        pass

    properties: dict[str, t.Any] = {}
    required: list[str] = []
    ui: dict[str, t.Any] = {}
    inputs: list[_Input] = []
    shape: dict[str, _Shape] = {}
    skip: set[str] = set()

    for key, unbound in _declared_fields(form_class):
        field = _bind(unbound, unbound.name or key)

        if _is_control(field):
            skip.add(key)
            continue

        default = {} if isinstance(field, FormField) else _static_default(field)
        inputs.append(_Input(key, field.name, _encoder(field, unbound), default))
        shape[key] = _shape(field)

        try:
            described = _field_schema(field)
        except ValueError as error:
            raise ValueError(f"{form_class.__name__}.{key}: {error}") from None

        if described is not None:
            properties[key], is_required, hints = described

            if is_required:
                required.append(key)

            if hints:
                ui[key] = hints

    schema = {"type": "object", "properties": properties, "required": required}
    info = _FormInfo(
        document={"$schema": _DIALECT, **schema},
        schema=schema,
        ui=ui,
        inputs=tuple(inputs),
        shape=shape,
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


def _shape(field: t.Any) -> _Shape:
    if isinstance(field, FormField):
        return _info(field.form_class).shape

    if isinstance(field, FieldList):
        return [_shape(_bind(field.unbound_field, ""))]

    return None


def _static_default(field: t.Any) -> t.Any:
    """The value a left-out field takes from its default, if that is not
    computed and not empty."""
    default = field.default

    if callable(default) or default is None or default is False:
        return _NO_DEFAULT

    if isinstance(default, (str, list, tuple)) and not default:
        return _NO_DEFAULT

    return True if isinstance(field, BooleanField) else default


# -- schema


def _field_schema(
    field: t.Any,
) -> tuple[dict[str, t.Any], bool, dict[str, t.Any]] | None:
    """A field's schema, whether it is required and its hints, or ``None``
    if the field is left out."""
    if _is_control(field) or isinstance(field, FileField):
        return None

    schema: dict[str, t.Any] = {}
    hints: dict[str, t.Any] = {}
    required = _is_required(field)

    if isinstance(field, FormField):
        info = _info(field.form_class)
        schema.update(info.schema)
        hints.update(info.ui)
        required = bool(schema["required"])
    elif isinstance(field, FieldList):
        # Bound with an empty name so that only an explicit label gives the
        # items a title.
        items = _field_schema(_bind(field.unbound_field, ""))

        if items is None:
            return None

        schema.update(type="array", items=items[0])

        if items[2]:
            hints["items"] = items[2]

        if field.min_entries and items[1]:
            # The entries WTForms adds to reach min_entries are left-out
            # values, which a required item refuses.
            schema["minItems"] = field.min_entries
            required = True

        if field.max_entries:
            # WTForms would drop the entries beyond it.
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
        temporal = _temporal(field)

        if temporal.format:
            schema["format"] = temporal.format

        schema["pattern"] = temporal.pattern
    elif isinstance(field, StringField):
        schema["type"] = "string"

        if isinstance(field, PasswordField):
            schema["writeOnly"] = True

    _add_validators(field, schema)

    if label := keep_lazy(field.label.text):
        schema["title"] = label

    if description := keep_lazy(field.description):
        schema["description"] = description

    default = _default(field)

    if default is not None:
        schema["default"] = default

    hints.update(_widget_hints(field, schema))
    return schema, required, hints


def _is_required(field: t.Any) -> bool:
    """Whether the form refuses the field when it is left out: runs the
    field's WTForms validators on no value, as the form would, until an
    ``Optional`` accepts it."""
    if isinstance(field, FormField) or _static_default(field) is not _NO_DEFAULT:
        return False

    if callable(field.default) and not isinstance(field, BooleanField):
        # The default the form computes is taken to be valid.
        return False

    # No value is not one of the choices, unless Optional lets it through.
    refused = (
        isinstance(field, SelectField)
        and not isinstance(field, SelectMultipleField)
        and field.validate_choice
    )

    # isinstance() narrows an Any to the WTForms stubs' field types, whose
    # ``data`` does not take the empty value set here
    probe: t.Any = field
    if isinstance(field, FieldList):
        probe.entries = []
    else:
        probe.data = False if isinstance(field, BooleanField) else None

    probe.raw_data = []
    probe.errors = []

    for validator in field.validators:
        if "optional" in getattr(validator, "field_flags", ()):
            return False

        # The app's own validators may need the form or a database; only
        # WTForms' are run here.
        if not type(validator).__module__.startswith("wtforms.") or isinstance(
            validator, validators.EqualTo
        ):
            continue

        try:
            validator(None, probe)
        except validators.StopValidation as stop:
            return refused or bool(stop.args and stop.args[0])
        except Exception:
            # What fails on no value fails in the form too.
            refused = True

    return refused


def _choice_schema(field: t.Any) -> dict[str, t.Any]:
    """``type`` and ``oneOf`` of one choice."""
    if not field.validate_choice or field.choices is None:
        kind = {str: "string", int: "integer", float: "number"}.get(field.coerce)
        return {"type": kind} if kind else {}

    # iter_choices marks the option equal to the data as selected; this
    # unprocessed field has none.
    field.data = None
    options: list[dict[str, t.Any]] = []
    refuses = _required_refuses(field)

    for choice in field.iter_choices():
        value = _choice_value(field, choice[0])

        if refuses(value, str(choice[0])):
            continue

        # oneOf refuses a value that two entries allow.
        if not any(_json_equal(value, option["const"]) for option in options):
            options.append({"const": value, "title": keep_lazy(choice[1])})

    schema: dict[str, t.Any] = {}
    kinds = {_json_type(option["const"]) for option in options}

    if kinds == {"integer", "number"}:
        kinds = {"number"}

    if len(kinds) == 1:
        schema["type"] = kinds.pop()

    if options:
        schema["oneOf"] = options
    else:
        schema["not"] = {}

    return schema


def _required_refuses(field: t.Any) -> Callable[[t.Any, str], bool]:
    """Whether the field's requiring validators refuse a choice, given its
    value and the text a browser posts for it."""
    data = any(isinstance(v, validators.DataRequired) for v in field.validators)
    raw = any(isinstance(v, validators.InputRequired) for v in field.validators)

    def refuses(value: t.Any, text: str) -> bool:
        if data and (not value or (isinstance(value, str) and not value.strip())):
            return True

        return raw and not text

    return refuses


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


def _json_equal(a: t.Any, b: t.Any) -> bool:
    """Equality as JSON Schema's ``const`` sees it: ``1 == 1.0``, but
    ``1 != "1"`` and ``1 != true``."""
    numbers = {"integer", "number"}
    kinds = {_json_type(a), _json_type(b)}
    return bool(a == b) and (len(kinds) == 1 or kinds == numbers)


def _add_validators(field: t.Any, schema: dict[str, t.Any]) -> None:
    kind = schema.get("type")
    patterns: list[str] = []
    # Two validators may each exclude values; one "not" holds one schema.
    excluded: list[dict[str, t.Any]] = []
    chain = field.validators
    data_required = any(isinstance(v, validators.DataRequired) for v in chain)
    requiring = data_required or any(
        isinstance(v, validators.InputRequired) for v in chain
    )

    if requiring and kind == "boolean":
        schema["const"] = True

    if requiring and kind == "array" and not isinstance(field, FieldList):
        schema["minItems"] = 1

    if requiring and kind == "string" and "oneOf" not in schema and not isinstance(
        field, DateTimeField
    ):
        schema["minLength"] = 1

        if data_required:
            # DataRequired strips the value; this class is what it keeps.
            patterns.append(f"[^{python_class('s')}]")

    if data_required and kind in ("integer", "number"):
        excluded.append({"const": 0})

    for v in chain:
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
            patterns.append(portable_pattern(v.regex, getattr(v, "matcher", re.match)))
        elif isinstance(v, (validators.AnyOf, validators.NoneOf)):
            values = _json(v.values)

            # Membership in a string is a substring test, not an enum.
            if kind != "array" and isinstance(values, list):
                if isinstance(v, validators.NoneOf):
                    excluded.append({"enum": values})
                else:
                    schema.setdefault("enum", values)
        elif isinstance(v, validators.ReadOnly):
            schema["readOnly"] = True
            default = _default(field)
            # The form refuses a value other than the one it started with.
            if default is not None:
                schema["const"] = default
            else:
                excluded.append({})
        elif isinstance(v, validators.Disabled):
            # The form refuses any value.
            schema["readOnly"] = True
            excluded.append({})

    if "pattern" in schema:
        patterns.insert(0, schema.pop("pattern"))

    if "not" in schema:
        excluded.insert(0, schema.pop("not"))

    combined: list[dict[str, t.Any]] = [{"pattern": pattern} for pattern in patterns[1:]]
    combined += [{"not": rule} for rule in excluded[1:]]

    if patterns:
        schema["pattern"] = patterns[0]

    if excluded:
        schema["not"] = excluded[0]

    if combined:
        schema["allOf"] = combined

    if field.flags.readonly or field.flags.disabled:
        schema["readOnly"] = True


# -- dates and times


@dataclasses.dataclass(frozen=True)
class _Temporal:
    """The JSON shape of a date or time field."""

    format: str | None
    pattern: str
    #: Reads a matching value; raises ValueError for one that can't be.
    parse: Callable[[re.Match[str]], date | time]
    #: The value as that shape, for a schema default.
    render: Callable[[t.Any], str]


_YEAR = "[1-9][0-9]{3}"
_DAY = "(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_CLOCK = "(?:[01][0-9]|2[0-3]):[0-5][0-9]"


def _parse_date_time(m: re.Match[str]) -> datetime:
    text = m.group(0)
    fraction = re.search(r"\.([0-9]+)", text)
    micro = int((fraction.group(1) + "00000")[:6]) if fraction else 0
    if text.endswith("Z"):
        zone: tzinfo = UTC
    else:
        sign = -1 if text[-6] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(text[-5:-3]), minutes=int(text[-2:])))
    return datetime(
        int(text[0:4]), int(text[5:7]), int(text[8:10]),
        int(text[11:13]), int(text[14:16]), int(text[17:19]), micro, tzinfo=zone,
    )


def _render_date_time(value: datetime) -> str:
    text = value.isoformat(timespec="seconds")
    # A naive datetime is taken as UTC, as a naive value given is.
    return text + "Z" if value.tzinfo is None else text.replace("+00:00", "Z")


_DATE_TIME = _Temporal(
    "date-time",
    f"^{_YEAR}-{_DAY}T{_CLOCK}:[0-5][0-9](?:\\.[0-9]+)?(?:Z|[+-]{_CLOCK}){END}",
    _parse_date_time,
    _render_date_time,
)
_DATE = _Temporal(
    "date",
    f"^{_YEAR}-{_DAY}{END}",
    lambda m: date.fromisoformat(m.group(0)),
    date.isoformat,
)
_TIME = _Temporal(
    None,
    f"^{_CLOCK}(?::[0-5][0-9])?{END}",
    lambda m: time.fromisoformat(m.group(0)),
    lambda value: value.strftime("%H:%M:%S" if value.second else "%H:%M"),
)
_MONTH = _Temporal(
    None,
    f"^{_YEAR}-(?:0[1-9]|1[0-2]){END}",
    lambda m: date.fromisoformat(m.group(0) + "-01"),
    lambda value: value.strftime("%Y-%m"),
)
_WEEK = _Temporal(
    None,
    f"^{_YEAR}-W(?:[0-4][0-9]|5[0-3]){END}",
    # WTForms reads its %W week this way, Monday first.
    lambda m: datetime.strptime(m.group(0) + "-1", "%Y-W%W-%w").date(),
    lambda value: value.strftime("%Y-W%W"),
)


def _temporal(field: t.Any) -> _Temporal:
    if isinstance(field, MonthField):
        return _MONTH

    if isinstance(field, WeekField):
        return _WEEK

    if isinstance(field, DateField):
        return _DATE

    if isinstance(field, TimeField):
        return _TIME

    return _DATE_TIME


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
        if isinstance(default, datetime) and default.tzinfo is None:
            zone = getattr(field, "tz", None)

            if isinstance(zone, tzinfo):
                default = default.replace(tzinfo=zone)

        return _temporal(field).render(default)

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


#: Input types that react-jsonschema-form has a widget for.
_UI_WIDGETS = {"password": "password", "hidden": "hidden", "range": "range",
               "email": "email", "url": "uri", "color": "color", "time": "time"}
#: Input types that its text widget takes as ui:inputType.
_UI_INPUT_TYPES = frozenset(("month", "week", "tel", "search"))


def _widget_hints(field: t.Any, schema: dict[str, t.Any]) -> dict[str, t.Any]:
    widget = field.widget

    if isinstance(widget, widgets.TextArea):
        return {"ui:widget": "textarea"}

    if isinstance(widget, widgets.Select) and not widget.multiple and "oneOf" not in schema:
        # Choices computed at run time: a select whose options the schema
        # can't list.
        return {"ui:widget": "select"}

    if isinstance(widget, widgets.ListWidget):
        # Radio buttons or checkboxes, one per choice; a FieldList has no
        # option widget.
        option = getattr(field, "option_widget", None)
        kind = getattr(option, "input_type", None)
        name = {"radio": "radio", "checkbox": "checkboxes"}.get(str(kind))
        return {"ui:widget": name} if name else {}

    kind = getattr(widget, "input_type", None)

    if kind in _UI_WIDGETS:
        return {"ui:widget": _UI_WIDGETS[kind]}

    if kind in _UI_INPUT_TYPES:
        return {"ui:inputType": kind}

    return {}


# -- checking JSON data with the schema


def _schema_errors(info: _FormInfo, data: Mapping[str, t.Any]) -> dict[str, str]:
    """The messages by error path of the fields the schema refuses, with
    ``"!"`` before the message when it overrides the form's own."""
    refused: dict[str, str] = {}

    for error in info.validator.iter_errors(data):
        where = list(error.absolute_path)

        if error.validator == "required":
            keys = [k for k in error.validator_value if k not in error.instance]
            paths = [(where + [k], gettext(_MISSING)) for k in keys]
        elif not _is_json(_value_at(data, where)):
            # A Python value (a date, a Decimal) is the field's to read.
            continue
        elif error.validator == "type" and not _postable(error.instance, error.validator_value):
            # What the form would say of the text it was given instead is
            # beside the point.
            paths = [(where, "!" + gettext(_NOT_A_VALUE))]
        else:
            paths = [(where, gettext(_NOT_A_VALUE))]

        for path, message in paths:
            key = _error_path(info.shape, path)
            if not refused.get(key, "").startswith("!"):
                refused[key] = message

    return refused


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
        related = [
            key for key in errors
            if key and (key == path or key.startswith(path + ".") or path.startswith(key + "."))
        ]

        if message.startswith("!"):
            for key in related:
                if key == path or key.startswith(path + "."):
                    del errors[key]
            errors[path] = [message[1:]]
        elif not related:
            errors[path] = [message]


# -- form data


def _formdata(info: _FormInfo, data: Mapping[str, t.Any] | None) -> t.Any:
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
        inputs = _info(field.form_class).inputs
        return functools.partial(_encode_form, inputs, field.separator)

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
            _encode_temporal, _temporal(field), field.format[0], getattr(field, "tz", None)
        )

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
        elif item.default is not _NO_DEFAULT:
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

    for index, item in enumerate(
        value if isinstance(value, (list, tuple)) else [value]
    ):
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
    shape: _Temporal,
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
        if isinstance(value, datetime) and value.tzinfo is not None:
            # The field reads local times in its zone, which may be the
            # current user's; without one, naive values stand for UTC.
            zone = tz() if callable(tz) else tz
            value = value.astimezone(zone or UTC)

            if zone is None:
                value = value.replace(tzinfo=None)

        pairs.append((name, value.strftime(format)))
    elif isinstance(value, (Mapping, bool)):
        _placeholder(pairs, name)
    elif value is not None:
        pairs.append((name, _text(value)))


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
