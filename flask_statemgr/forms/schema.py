"""WTForms forms as JSON Schema and react-jsonschema-form hints:
:func:`form_schema` and :func:`form_ui`. The mapping is described in
:mod:`flask_statemgr.forms`."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing as t
from collections.abc import Callable
from datetime import date, datetime, time, tzinfo
from decimal import Decimal

from wtforms import Form, validators, widgets
from wtforms.fields import (
    BooleanField,
    DateTimeField,
    DecimalField,
    FieldList,
    FileField,
    FloatField,
    FormField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)

from ..i18n import keep_lazy, resolve
from .fields import (
    NO_DEFAULT,
    bind,
    declared_fields,
    is_control,
    per_form_class,
    static_default,
)
from .patterns import portable_pattern, python_class
from .temporal import temporal

_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: A field's schema, whether the form refuses it left out, and its hints.
_Described = tuple[dict[str, t.Any], bool, dict[str, t.Any]]


def form_schema(form_class: type[Form]) -> dict[str, t.Any]:
    """The JSON Schema of a form's input, described in
    :mod:`flask_statemgr.forms`.

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
    return resolve(_described(form_class).document)


def form_ui(form_class: type[Form]) -> dict[str, t.Any]:
    """The form's presentation hints, as a react-jsonschema-form uiSchema:
    per field that needs one, ``ui:widget`` (``textarea``, ``password``,
    ``hidden``, ``radio``, ``checkboxes``, ``range``, ``email``, ``uri``,
    ``color``, ``time``) or ``ui:inputType`` (``month``, ``week``, ``tel``,
    ``search``); a nested form's hints under its key, a list's under
    ``items``. The rest follows from the schema (a ``oneOf`` is a select,
    ``format: date`` a date input, ...). A ``Regexp`` with a message of its
    own gives ``ui:options.patternMessage``, what a client says when the
    ``pattern`` refuses a value (JSON Schema has no keyword for it). Cached
    like :func:`form_schema`; lazy messages render in the current locale.

    :param form_class: A :class:`wtforms.Form` or
        :class:`flask_wtf.FlaskForm` subclass.
    """
    return resolve(_described(form_class).ui)


def form_document(form_class: type[Form]) -> dict[str, t.Any]:
    """The cached schema :func:`form_schema` renders, with its lazy strings:
    for a validator that checks data against it."""
    return _described(form_class).document


@dataclasses.dataclass(frozen=True)
class _FormSchema:
    """A form class's schema and hints, computed once."""

    #: The schema :func:`form_schema` returns.
    document: dict[str, t.Any]
    #: The same without ``$schema``, to nest in another form's schema.
    schema: dict[str, t.Any]
    #: The hints :func:`form_ui` returns.
    ui: dict[str, t.Any]


@per_form_class
def _described(form_class: type[Form]) -> _FormSchema:
    properties: dict[str, t.Any] = {}
    required: list[str] = []
    ui: dict[str, t.Any] = {}

    for key, unbound in declared_fields(form_class):
        field = bind(unbound, unbound.name or key)
        try:
            described = _field_schema(field)
        except ValueError as error:
            raise ValueError(f"{form_class.__name__}.{key}: {error}") from None

        if described is not None:
            properties[key], is_required, hints = described
            if (message := _pattern_message(field)) is not None:
                hints = {**hints, "ui:options": {"patternMessage": message}}

            if is_required:
                required.append(key)

            if hints:
                ui[key] = hints

    schema = {"type": "object", "properties": properties, "required": required}
    return _FormSchema(document={"$schema": _DIALECT, **schema}, schema=schema, ui=ui)


def _field_schema(field: t.Any) -> _Described | None:
    """A field's schema, whether it is required and its hints, or ``None``
    if the field is left out."""
    if is_control(field) or isinstance(field, FileField):
        return None

    if isinstance(field, FormField):
        nested = _described(field.form_class)
        schema, hints = dict(nested.schema), dict(nested.ui)
        required = bool(schema["required"])
    elif isinstance(field, FieldList):
        listed = _list_schema(field)

        if listed is None:
            return None

        schema, required, hints = listed
    else:
        required = _is_required(field)
        schema, hints = _value_schema(field), {}

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


def _list_schema(field: t.Any) -> _Described | None:
    """A ``FieldList``'s schema, requirement and hints, from its entries'."""
    required = _is_required(field)
    # Bound with an empty name so that only an explicit label gives the
    # items a title.
    items = _field_schema(bind(field.unbound_field, ""))

    if items is None:
        return None

    schema: dict[str, t.Any] = {"type": "array", "items": items[0]}
    hints = {"items": items[2]} if items[2] else {}

    if field.min_entries and items[1]:
        # The entries WTForms adds to reach min_entries are left-out
        # values, which a required item refuses.
        schema["minItems"] = field.min_entries
        required = True

    if field.max_entries:
        # WTForms would drop the entries beyond it.
        schema["maxItems"] = field.max_entries

    return schema, required, hints


def _value_schema(field: t.Any) -> dict[str, t.Any]:
    """The type keywords of a field that holds one value or a choice."""
    if isinstance(field, BooleanField):
        return {"type": "boolean"}

    if isinstance(field, SelectMultipleField):
        return {"type": "array", "items": _choice_schema(field), "uniqueItems": True}

    if isinstance(field, SelectField):
        return _choice_schema(field)

    if isinstance(field, IntegerField):
        return {"type": "integer"}

    if isinstance(field, (DecimalField, FloatField)):
        return {"type": "number"}

    if isinstance(field, DateTimeField):
        shape = temporal(field)
        schema: dict[str, t.Any] = {"type": "string"}

        if shape.format:
            schema["format"] = shape.format

        schema["pattern"] = shape.pattern
        return schema

    if isinstance(field, PasswordField):
        return {"type": "string", "writeOnly": True}

    if isinstance(field, StringField):
        return {"type": "string"}

    return {}


def _is_required(field: t.Any) -> bool:
    """Whether the form refuses the field when it is left out: runs the
    field's WTForms validators on no value, as the form would, until an
    ``Optional`` accepts it."""
    if isinstance(field, FormField) or static_default(field) is not NO_DEFAULT:
        return False

    if callable(field.default) and not isinstance(field, BooleanField):
        # The default the form computes is taken to be valid.
        return False

    # No value is not one of the choices, unless Optional lets it through.
    refused = isinstance(field, SelectField) and not isinstance(field, SelectMultipleField) and field.validate_choice
    return _refuses_no_value(_emptied(field), refused)


def _emptied(field: t.Any) -> t.Any:
    """The field holding no value, as the form holds a left-out field."""
    # isinstance() narrows an Any to the WTForms stubs' field types, whose
    # ``data`` does not take the empty value set here
    probe: t.Any = field
    if isinstance(field, FieldList):
        probe.entries = []
    else:
        probe.data = False if isinstance(field, BooleanField) else None

    probe.raw_data = []
    probe.errors = []
    return probe


def _refuses_no_value(probe: t.Any, refused: bool) -> bool:
    """Whether the validators of an emptied field refuse it (given that it
    is ``refused`` already or not)."""
    for validator in probe.validators:
        if "optional" in getattr(validator, "field_flags", ()):
            return False

        # The app's own validators may need the form or a database; only
        # WTForms' are run here.
        if not type(validator).__module__.startswith("wtforms.") or isinstance(validator, validators.EqualTo):
            continue

        try:
            validator(None, probe)
        except validators.StopValidation as stop:
            return refused or bool(stop.args and stop.args[0])
        except Exception:
            # What fails on no value fails in the form too.
            refused = True

    return refused


# -- choices


def _choice_schema(field: t.Any) -> dict[str, t.Any]:
    """``type`` and ``oneOf`` of one choice."""
    if not field.validate_choice or field.choices is None:
        kind = {str: "string", int: "integer", float: "number"}.get(field.coerce)
        return {"type": kind} if kind else {}

    options = _choice_options(field)
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


def _choice_options(field: t.Any) -> list[dict[str, t.Any]]:
    """The choices the field's requiring validators accept, each value once,
    as ``{"const": value, "title": label}``."""
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

    return options


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

    if isinstance(coerced, (str, int)) or (isinstance(coerced, float) and math.isfinite(coerced)):
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


# -- validators


@dataclasses.dataclass
class _Rules:
    """What a field's validators add to its schema, gathered first because
    one ``pattern`` and one ``not`` hold one schema each."""

    field: t.Any
    schema: dict[str, t.Any]
    #: Patterns a value must match.
    patterns: list[str] = dataclasses.field(default_factory=list)
    #: Schemas a value must not match.
    excluded: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)

    @property
    def kind(self) -> t.Any:
        return self.schema.get("type")


def _add_validators(field: t.Any, schema: dict[str, t.Any]) -> None:
    rules = _Rules(field, schema)
    _add_requiring(rules)

    for v in field.validators:
        for kind, add in _VALIDATOR_RULES:
            if isinstance(v, kind):
                add(rules, v)
                break

    _write_rules(rules)

    if field.flags.readonly or field.flags.disabled:
        schema["readOnly"] = True


def _add_requiring(rules: _Rules) -> None:
    """A requiring validator constrains a given value too."""
    chain, schema, kind = rules.field.validators, rules.schema, rules.kind
    data_required = any(isinstance(v, validators.DataRequired) for v in chain)

    if not data_required and not any(isinstance(v, validators.InputRequired) for v in chain):
        return

    if kind == "boolean":
        schema["const"] = True
    elif kind == "array" and not isinstance(rules.field, FieldList):
        schema["minItems"] = 1
    elif kind == "string" and "oneOf" not in schema and not isinstance(rules.field, DateTimeField):
        schema["minLength"] = 1

        if data_required:
            # DataRequired strips the value; this class is what it keeps.
            rules.patterns.append(f"[^{python_class('s')}]")
    elif data_required and kind in ("integer", "number"):
        rules.excluded.append({"const": 0})


def _add_length(rules: _Rules, v: t.Any) -> None:
    if rules.kind not in ("string", "array"):
        return

    schema = rules.schema
    low, high = ("minLength", "maxLength") if rules.kind == "string" else ("minItems", "maxItems")

    if v.min > 0:
        schema[low] = max(schema.get(low, 0), v.min)

    if v.max != -1:
        schema[high] = min(schema.get(high, v.max), v.max)


def _add_number_range(rules: _Rules, v: t.Any) -> None:
    # Bounds may be callables evaluated at validation time.
    if v.min is not None and not callable(v.min):
        rules.schema["minimum"] = _json(v.min)

    if v.max is not None and not callable(v.max):
        rules.schema["maximum"] = _json(v.max)


def _add_regexp(rules: _Rules, v: t.Any) -> None:
    rules.patterns.append(portable_pattern(v.regex, getattr(v, "matcher", re.match)))


def _add_membership(rules: _Rules, v: t.Any) -> None:
    values = _json(v.values)

    # Membership in a string is a substring test, not an enum.
    if rules.kind == "array" or not isinstance(values, list):
        return

    if isinstance(v, validators.NoneOf):
        rules.excluded.append({"enum": values})
    else:
        rules.schema.setdefault("enum", values)


def _add_read_only(rules: _Rules, v: t.Any) -> None:
    rules.schema["readOnly"] = True
    default = _default(rules.field)
    # The form refuses a value other than the one it started with.
    if default is not None:
        rules.schema["const"] = default
    else:
        rules.excluded.append({})


def _add_disabled(rules: _Rules, v: t.Any) -> None:
    # The form refuses any value.
    rules.schema["readOnly"] = True
    rules.excluded.append({})


#: The WTForms validators with JSON Schema keywords, each with what it adds.
_VALIDATOR_RULES: tuple[tuple[type | tuple[type, ...], Callable[[_Rules, t.Any], None]], ...] = (
    (validators.Length, _add_length),
    (validators.NumberRange, _add_number_range),
    (validators.Regexp, _add_regexp),
    ((validators.AnyOf, validators.NoneOf), _add_membership),
    (validators.ReadOnly, _add_read_only),
    (validators.Disabled, _add_disabled),
)


def _write_rules(rules: _Rules) -> None:
    """The first pattern and exclusion as ``pattern`` and ``not`` (after
    those of the field's type), the rest in ``allOf``."""
    schema = rules.schema
    patterns, excluded = rules.patterns, rules.excluded

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


# -- defaults


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
        return _temporal_default(field, default)

    if isinstance(field, FieldList) and not default:
        return None

    return _json(default)


def _temporal_default(field: t.Any, default: date | time) -> str:
    """A date or time default in the shape of the field's JSON values."""
    if isinstance(default, datetime) and default.tzinfo is None:
        zone = getattr(field, "tz", None)

        if isinstance(zone, tzinfo):
            default = default.replace(tzinfo=zone)

    return temporal(field).render(default)


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


# -- presentation hints

#: Input types that react-jsonschema-form has a widget for.
_UI_WIDGETS = {
    "password": "password",
    "hidden": "hidden",
    "range": "range",
    "email": "email",
    "url": "uri",
    "color": "color",
    "time": "time",
}
#: Input types that its text widget takes as ui:inputType.
_UI_INPUT_TYPES = frozenset(("month", "week", "tel", "search"))


def _pattern_message(field: t.Any) -> t.Any:
    """The message of the field's first ``Regexp`` that has one (kept lazy),
    or ``None``: WTForms' own default is what a client says anyway."""
    for validator in field.validators:
        if isinstance(validator, validators.Regexp) and validator.message is not None:
            return keep_lazy(validator.message)
    return None


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
