from __future__ import annotations

import datetime
import itertools
import json
import os
import re
import string
import subprocess
import sys
import typing as t
from decimal import Decimal

import jsonschema
import pytest
from flask import Flask
from flask_wtf import FlaskForm
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import Form, fields, validators, widgets

from flask_statemgr import State, StateManager, StateMgr, Transition
from flask_statemgr.forms import bind_form, form_schema, form_ui, validate_form_data
from flask_statemgr.forms.patterns import portable_pattern

pytestmark = [
    # WTForms 3.3 deprecates the tuple choices most code still uses, and
    # DateTimeField; both must keep working.
    pytest.mark.filterwarnings("ignore:Passing SelectField choices as tuples"),
    pytest.mark.filterwarnings("ignore:Passing SelectField choices in a dict"),
    pytest.mark.filterwarnings("ignore:'DateTimeField' renders"),
]


def prop(field: t.Any) -> t.Any:
    """The schema of a form holding only ``field``, named ``f``."""
    form_class = type("OneField", (Form,), {"f": field})
    return form_schema(form_class)["properties"]["f"]


def hints(field: t.Any) -> t.Any:
    """The ui hints of a form holding only ``field``, named ``f``."""
    return form_ui(type("OneField", (Form,), {"f": field})).get("f", {})


def is_valid(form_class: type[Form], instance: dict[str, t.Any]) -> bool:
    validator = jsonschema.Draft202012Validator(
        form_schema(form_class), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator.is_valid(instance)


#: What DataRequired keeps of a string: one character str.strip() keeps.
NON_BLANK = "[^\\x09-\\x0d\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000]"
DATE = r"^[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])(?![\s\S])"
DATE_TIME = (
    r"^[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])(?![\s\S])"
)


# -- field types

#: A field and its whole schema, one row per field type and shape.
FIELD_SCHEMAS = [
    pytest.param(fields.StringField("Name"), {"type": "string", "title": "Name"}, id="string"),
    pytest.param(fields.TextAreaField("Body"), {"type": "string", "title": "Body"}, id="textarea"),
    pytest.param(
        fields.PasswordField("Secret"),
        {"type": "string", "writeOnly": True, "title": "Secret"},
        id="password",
    ),
    # EmailField and URLField check nothing: no format, only the input.
    pytest.param(fields.EmailField(), {"type": "string", "title": "F"}, id="email"),
    pytest.param(fields.URLField(), {"type": "string", "title": "F"}, id="url"),
    pytest.param(fields.HiddenField(), {"type": "string", "title": "F"}, id="hidden"),
    pytest.param(fields.IntegerField(), {"type": "integer", "title": "F"}, id="integer"),
    pytest.param(fields.DecimalField(), {"type": "number", "title": "F"}, id="decimal"),
    pytest.param(fields.FloatField(), {"type": "number", "title": "F"}, id="float"),
    pytest.param(fields.BooleanField("OK"), {"type": "boolean", "title": "OK"}, id="boolean"),
    pytest.param(
        fields.IntegerRangeField("Level", [validators.NumberRange(min=1, max=5)]),
        {"type": "integer", "minimum": 1, "maximum": 5, "title": "Level"},
        id="integer-range",
    ),
    pytest.param(
        fields.DecimalRangeField("Ratio", [validators.NumberRange(min=Decimal("0.5"), max=Decimal(2))]),
        {"type": "number", "minimum": 0.5, "maximum": 2, "title": "Ratio"},
        id="decimal-range",
    ),
    pytest.param(
        fields.BooleanField("Agree", [validators.DataRequired()]),
        {"type": "boolean", "const": True, "title": "Agree"},
        id="data-required-boolean",
    ),
    pytest.param(
        fields.BooleanField("Agree", [validators.InputRequired()]),
        {"type": "boolean", "const": True, "title": "Agree"},
        id="input-required-boolean",
    ),
    pytest.param(
        fields.DateField("Due"),
        {"type": "string", "format": "date", "pattern": DATE, "title": "Due"},
        id="date",
    ),
    # whatever the field parses, the JSON shape is RFC 3339's
    pytest.param(
        fields.DateField(format="%d.%m.%Y"),
        {"type": "string", "format": "date", "pattern": DATE, "title": "F"},
        id="date-in-another-format",
    ),
    pytest.param(
        fields.DateTimeLocalField("At"),
        {"type": "string", "format": "date-time", "pattern": DATE_TIME, "title": "At"},
        id="datetime-local",
    ),
    pytest.param(
        fields.DateTimeField("At"),
        {"type": "string", "format": "date-time", "pattern": DATE_TIME, "title": "At"},
        id="datetime",
    ),
    # RFC 3339's "time" needs an offset, which these fields don't have.
    pytest.param(
        fields.TimeField(),
        {"type": "string", "pattern": r"^(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?(?![\s\S])", "title": "F"},
        id="time",
    ),
    pytest.param(
        fields.MonthField(),
        {"type": "string", "pattern": r"^[1-9][0-9]{3}-(?:0[1-9]|1[0-2])(?![\s\S])", "title": "F"},
        id="month",
    ),
    pytest.param(
        fields.WeekField(),
        {"type": "string", "pattern": r"^[1-9][0-9]{3}-W(?:[0-4][0-9]|5[0-3])(?![\s\S])", "title": "F"},
        id="week",
    ),
    pytest.param(
        fields.SelectField("Kind", choices=[("a", "Alpha"), ("b", "Beta")]),
        {
            "type": "string",
            "oneOf": [{"const": "a", "title": "Alpha"}, {"const": "b", "title": "Beta"}],
            "title": "Kind",
        },
        id="select",
    ),
    pytest.param(
        fields.RadioField("Size", choices=[("s", "Small"), ("l", "Large")]),
        {
            "type": "string",
            "oneOf": [{"const": "s", "title": "Small"}, {"const": "l", "title": "Large"}],
            "title": "Size",
        },
        id="radio",
    ),
    pytest.param(
        fields.SelectMultipleField("Tags", choices=[("x", "X"), ("y", "Y")]),
        {
            "type": "array",
            "items": {"type": "string", "oneOf": [{"const": "x", "title": "X"}, {"const": "y", "title": "Y"}]},
            "uniqueItems": True,
            "title": "Tags",
        },
        id="select-multiple",
    ),
    # choices given at run time: only the coerced type is known
    pytest.param(fields.SelectField(coerce=int), {"type": "integer", "title": "F"}, id="select-no-choices"),
]


@pytest.mark.parametrize(("field", "schema"), FIELD_SCHEMAS)
def test_field_schema(field: t.Any, schema: dict[str, t.Any]) -> None:
    assert prop(field) == schema


@pytest.mark.parametrize(
    ("field", "hint"),
    [
        (fields.TextAreaField(), {"ui:widget": "textarea"}),
        (fields.StringField(widget=widgets.TextArea()), {"ui:widget": "textarea"}),
        (fields.PasswordField(), {"ui:widget": "password"}),
        (fields.EmailField(), {"ui:widget": "email"}),
        (fields.URLField(), {"ui:widget": "uri"}),
        (fields.HiddenField(), {"ui:widget": "hidden"}),
        (fields.ColorField(), {"ui:widget": "color"}),
        (fields.IntegerRangeField(), {"ui:widget": "range"}),
        (fields.TelField(), {"ui:inputType": "tel"}),
        (fields.SearchField(), {"ui:inputType": "search"}),
        (fields.MonthField(), {"ui:inputType": "month"}),
        (fields.WeekField(), {"ui:inputType": "week"}),
        (fields.TimeField(), {"ui:widget": "time"}),
        (fields.RadioField(choices=["a"]), {"ui:widget": "radio"}),
        (
            fields.SelectMultipleField(
                choices=["a"], widget=widgets.ListWidget(), option_widget=widgets.CheckboxInput()
            ),
            {"ui:widget": "checkboxes"},
        ),
        # a select whose options the schema can't list
        (fields.SelectField(coerce=int), {"ui:widget": "select"}),
        # what the schema implies needs no hint
        (fields.StringField(), {}),
        (fields.IntegerField(), {}),
        (fields.BooleanField(), {}),
        (fields.DateField(), {}),
        (fields.DateTimeLocalField(), {}),
        (fields.SelectField(choices=["a"]), {}),
        (fields.SelectMultipleField(choices=["a"]), {}),
    ],
)
def test_ui_hints(field: t.Any, hint: dict[str, str]) -> None:
    assert hints(field) == hint
    assert not any(key.startswith("x-") for key in prop(field))


def test_boolean_field_is_not_required() -> None:
    form_class = type("F", (Form,), {"ok": fields.BooleanField("OK")})
    assert form_schema(form_class)["required"] == []


def test_select_field_plain_values_groups_and_repeats() -> None:
    field = fields.SelectField(choices={"Vowels": [("a", "A")], "Others": [("b", "B"), ("a", "A2")]})
    assert prop(field)["oneOf"] == [{"const": "a", "title": "A"}, {"const": "b", "title": "B"}]
    field = fields.SelectField(choices=["x", "y"])
    assert prop(field)["oneOf"] == [{"const": "x", "title": "x"}, {"const": "y", "title": "y"}]


def test_select_field_coerced_values() -> None:
    field = fields.SelectField(choices=[("1", "One"), ("2", "Two")], coerce=int)
    schema = prop(field)
    assert schema["type"] == "integer"
    assert [option["const"] for option in schema["oneOf"]] == [1, 2]


def test_select_field_mixed_values_have_no_type() -> None:
    field = fields.SelectField(choices=[("", "Pick one"), ("1", "One")], coerce=lambda v: int(v) if v else None)
    schema = prop(field)
    assert "type" not in schema
    assert [option["const"] for option in schema["oneOf"]] == ["", 1]


@pytest.mark.parametrize(
    ("validator", "left"),
    [
        (validators.DataRequired(), ["0", "a"]),
        (validators.InputRequired(), [" ", "0", "a"]),
        (validators.Optional(), ["", " ", "0", "a"]),
    ],
)
def test_required_select_lists_only_the_choices_it_accepts(validator: t.Any, left: list[str]) -> None:
    field = fields.SelectField(choices=["", " ", "0", "a"], validators=[validator])
    assert [option["const"] for option in prop(field)["oneOf"]] == left
    # DataRequired refuses what is falsy once coerced
    field = fields.SelectField(choices=["0", "1"], coerce=int, validators=[validators.DataRequired()])
    assert prop(field)["oneOf"] == [{"const": 1, "title": "1"}]


def test_radio_field() -> None:
    field = fields.RadioField("Size", choices=[("s", "Small"), ("l", "Large")])
    assert prop(field) == {
        "type": "string",
        "oneOf": [{"const": "s", "title": "Small"}, {"const": "l", "title": "Large"}],
        "title": "Size",
    }


def test_select_multiple_field() -> None:
    field = fields.SelectMultipleField("Tags", choices=[("x", "X"), ("y", "Y")])
    assert prop(field) == {
        "type": "array",
        "items": {"type": "string", "oneOf": [{"const": "x", "title": "X"}, {"const": "y", "title": "Y"}]},
        "uniqueItems": True,
        "title": "Tags",
    }


def test_run_time_choices_have_no_choices() -> None:
    def load() -> list[tuple[str, str]]:
        raise AssertionError("choices must not be loaded for the schema")

    assert prop(fields.SelectField("Kind", choices=load)) == {"type": "string", "title": "Kind"}
    assert hints(fields.SelectField("Kind", choices=load)) == {"ui:widget": "select"}


def test_unvalidated_choices_have_no_choices() -> None:
    field = fields.SelectField(choices=[("a", "A")], validate_choice=False)
    assert "oneOf" not in prop(field)


def test_buttons_csrf_and_files_are_left_out() -> None:
    class F(FlaskForm):
        name = fields.StringField()
        upload = fields.FileField()
        submit = fields.SubmitField()

    schema = form_schema(F)
    assert list(schema["properties"]) == ["name"]


def test_form_field() -> None:
    class Address(Form):
        city = fields.StringField("City", [validators.DataRequired()])
        zip = fields.StringField("ZIP")
        notes = fields.TextAreaField()

    class F(Form):
        address = fields.FormField(Address, "Address")
        note = fields.FormField(type("Note", (Form,), {"text": fields.StringField()}))

    schema = form_schema(F)
    assert schema["properties"]["address"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1, "pattern": NON_BLANK, "title": "City"},
            "zip": {"type": "string", "title": "ZIP"},
            "notes": {"type": "string", "title": "Notes"},
        },
        "required": ["city"],
        "title": "Address",
    }
    # An object with a required field is required; one without is not.
    assert schema["required"] == ["address"]
    assert form_ui(F) == {"address": {"notes": {"ui:widget": "textarea"}}}


def test_field_list() -> None:
    field = fields.FieldList(
        fields.IntegerField(validators=[validators.NumberRange(min=0)]),
        "Scores",
        max_entries=3,
    )
    assert prop(field) == {
        "type": "array",
        "items": {"type": "integer", "minimum": 0},
        "maxItems": 3,
        "title": "Scores",
    }
    assert hints(fields.FieldList(fields.TextAreaField())) == {"items": {"ui:widget": "textarea"}}


def test_field_list_with_required_entries() -> None:
    # WTForms adds the entries up to min_entries, which a required item refuses.
    field = fields.FieldList(fields.StringField(validators=[validators.DataRequired()]), min_entries=2)
    form_class = type("F", (Form,), {"f": field})
    assert form_schema(form_class)["properties"]["f"]["minItems"] == 2
    assert form_schema(form_class)["required"] == ["f"]


def test_field_list_of_forms() -> None:
    class Item(Form):
        name = fields.StringField("Name")

    schema = prop(fields.FieldList(fields.FormField(Item)))
    assert schema["items"] == {
        "type": "object",
        "properties": {"name": {"type": "string", "title": "Name"}},
        "required": [],
    }


# -- required


@pytest.mark.parametrize(
    ("field", "required"),
    [
        (fields.StringField(validators=[validators.DataRequired()]), True),
        (fields.StringField(validators=[validators.InputRequired()]), True),
        (fields.StringField(validators=[validators.Optional()]), False),
        (fields.StringField(validators=[validators.Optional(), validators.DataRequired()]), False),
        (fields.StringField(validators=[validators.DataRequired(), validators.Optional()]), True),
        (fields.StringField(validators=[validators.Length(max=3)]), False),
        # validators that refuse no value make a field required too
        (fields.StringField(validators=[validators.Length(min=1)]), True),
        (fields.IntegerField(validators=[validators.NumberRange(max=3)]), True),
        (fields.StringField(validators=[validators.Regexp("a")]), True),
        (fields.StringField(validators=[validators.Regexp("a*")]), False),
        (fields.StringField(validators=[validators.AnyOf(["a"])]), True),
        (fields.StringField(validators=[validators.Length(min=1), validators.Optional()]), False),
        (fields.StringField(), False),
        # a left-out field takes its default
        (fields.StringField(default="x", validators=[validators.InputRequired()]), False),
        (fields.BooleanField(default=True, validators=[validators.DataRequired()]), False),
        (fields.SelectField(choices=["a"], default="a"), False),
        (fields.SelectField(choices=["a"]), True),
        (fields.SelectField(choices=["a"], validators=[validators.Optional()]), False),
        (fields.StringField(default="", validators=[validators.DataRequired()]), True),
    ],
)
def test_required(field: t.Any, required: bool) -> None:
    form_class = type("F", (Form,), {"name": field})
    assert form_schema(form_class)["required"] == (["name"] if required else [])
    assert (validate_form_data(form_class, {})[1] != {}) is required


def test_blank_is_what_str_strip_removes() -> None:
    keeps = re.compile(NON_BLANK).fullmatch
    assert all(bool(keeps(chr(c))) != chr(c).isspace() for c in range(0x10000))


def test_data_required_refuses_zero_beside_another_exclusion() -> None:
    chain = [validators.DataRequired(), validators.NoneOf([13])]
    form_class = type("F", (Form,), {"f": fields.IntegerField(validators=chain)})
    schema = form_schema(form_class)["properties"]["f"]
    assert (schema["not"], schema["allOf"]) == ({"const": 0}, [{"not": {"enum": [13]}}])
    for value in (0, 13):
        assert not is_valid(form_class, {"f": value})
        assert validate_form_data(form_class, {"f": value})[1] != {}


# -- validators

#: A field, the keywords its validators give its schema, and keywords it
#: must not have.
VALIDATOR_KEYWORDS = [
    pytest.param(
        fields.StringField(validators=[validators.InputRequired()]),
        {"minLength": 1},
        {"pattern"},
        id="input-required-text",
    ),
    pytest.param(
        fields.StringField(validators=[validators.DataRequired(), validators.Length(min=3)]),
        {"minLength": 3, "pattern": NON_BLANK},
        set(),
        id="data-required-text",
    ),
    pytest.param(
        fields.SelectMultipleField(choices=["x"], validators=[validators.DataRequired()]),
        {"minItems": 1},
        set(),
        id="required-multi-select-needs-a-choice",
    ),
    pytest.param(
        fields.IntegerField(validators=[validators.DataRequired()]),
        {"not": {"const": 0}},
        set(),
        id="data-required-refuses-zero",
    ),
    pytest.param(
        fields.StringField(validators=[validators.Length(min=2, max=5)]),
        {"minLength": 2, "maxLength": 5},
        set(),
        id="length",
    ),
    pytest.param(
        fields.StringField(validators=[validators.Length(max=5)]),
        {"maxLength": 5},
        {"minLength"},
        id="length-max",
    ),
    pytest.param(
        fields.SelectMultipleField(choices=["a", "b", "c"], validators=[validators.Length(1, 2)]),
        {"minItems": 1, "maxItems": 2},
        set(),
        id="length-of-a-list",
    ),
    pytest.param(
        fields.IntegerField(validators=[validators.NumberRange(min=-3)]),
        {"minimum": -3},
        {"maximum"},
        id="number-range-min",
    ),
    pytest.param(
        fields.FloatField(validators=[validators.NumberRange(max=1.5)]),
        {"maximum": 1.5},
        {"minimum"},
        id="number-range-max",
    ),
    pytest.param(
        fields.IntegerField(validators=[validators.NumberRange(min=0, max=lambda: 10)]),
        {"minimum": 0},
        {"maximum"},
        id="number-range-with-a-dynamic-bound",
    ),
    pytest.param(
        fields.StringField(validators=[validators.AnyOf(["x", "y"])]),
        {"enum": ["x", "y"]},
        set(),
        id="any-of",
    ),
    pytest.param(
        fields.IntegerField(validators=[validators.NoneOf([13])]),
        {"not": {"enum": [13]}},
        set(),
        id="none-of",
    ),
    # membership in a string is a substring test, not an enum
    pytest.param(
        fields.StringField(validators=[validators.AnyOf("abc")]),
        {},
        {"enum"},
        id="any-of-a-string",
    ),
    # the form refuses any value
    pytest.param(
        fields.StringField(validators=[validators.ReadOnly()]),
        {"readOnly": True, "not": {}},
        set(),
        id="read-only",
    ),
    pytest.param(
        fields.StringField(validators=[validators.Disabled()]),
        {"readOnly": True, "not": {}},
        set(),
        id="disabled",
    ),
]


@pytest.mark.parametrize(("field", "keywords", "absent"), VALIDATOR_KEYWORDS)
def test_validator_keywords(field: t.Any, keywords: dict[str, t.Any], absent: set[str]) -> None:
    schema = prop(field)
    assert {key: schema.get(key) for key in keywords} == keywords
    assert not absent & schema.keys()


DOLLAR = r"(?=\n?(?![\s\S]))"
END = r"(?![\s\S])"


@pytest.mark.parametrize(
    ("regexp", "pattern"),
    [
        # Python's $ also matches before a final newline; ECMA-262's doesn't.
        (validators.Regexp(r"^[a-z]+$"), rf"^[a-z]+{DOLLAR}"),
        # re.match anchors at the start only; a JSON Schema pattern doesn't.
        (validators.Regexp(r"[a-z]+"), r"^(?:[a-z]+)"),
        (validators.Regexp(r"^a|b"), r"^(?:^a|b)"),
        (validators.Regexp(r"\A(?P<year>[0-9]{4})\Z"), rf"^([0-9]{{4}}){END}"),
        (validators.Regexp(r"a\\Ab"), r"^(?:a\x5cAb)"),
        (validators.Regexp(r"(?<!x)y(?=z)"), r"^(?:(?<!x)y(?=z))"),
        (validators.Regexp(r"[a-z]+", matcher=re.search), r"[a-z]+"),
        (validators.Regexp(r"[a-z]+", matcher=re.fullmatch), rf"^(?:[a-z]+){END}"),
        (validators.MacAddress(), rf"^(?:[0-9a-fA-F]{{2}}:){{5}}[0-9a-fA-F]{{2}}{DOLLAR}"),
        # . is not a line terminator in ECMA-262, only not "\n" in Python
        (validators.Regexp(r"a.c"), r"^(?:a[^\n]c)"),
        # escapes that ECMA-262's u flag refuses, literal braces, {,n}
        (validators.Regexp(r"\-\#[\]]{,2}x{"), r"^(?:\x2d\x23[\x5d]{0,2}x\{)"),
        (validators.Regexp(r"[]a]"), r"^(?:[\]a])"),
        (validators.Regexp(r"x(?#note)y"), r"^(?:xy)"),
        # ASCII classes are the same in both
        (validators.Regexp(re.compile(r"\w\d\s", re.ASCII)), r"^(?:[A-Za-z0-9_][0-9][ \t\n\r\f\v])"),
        # \b by the word characters of the regex, which python-jsonschema
        # would read as Unicode's
        (
            validators.Regexp(re.compile(r"\b", re.ASCII)),
            r"^(?:(?:(?<=[A-Za-z0-9_])(?![A-Za-z0-9_])|(?<![A-Za-z0-9_])(?=[A-Za-z0-9_])))",
        ),
    ],
)
def test_regexp(regexp: t.Any, pattern: str) -> None:
    assert prop(fields.StringField(validators=[regexp]))["pattern"] == pattern


def test_unicode_classes_are_spelled_out() -> None:
    pattern = prop(fields.StringField(validators=[validators.Regexp(r"^\d\w\s\D$")]))["pattern"]
    digit, word, space, other = "\u0663", "\u00e9", "\u2003", "x"
    python = re.compile(pattern)
    assert python.match(digit + word + space + other)
    assert not python.match("1a b1")
    # ECMA-262 would read \d as [0-9] only
    assert r"\d" not in pattern and r"\w" not in pattern and r"\s" not in pattern.replace(r"[\s\S]", "")


@pytest.mark.parametrize(
    ("regexp", "reason"),
    [
        (validators.Regexp(r"^[a-z]+$", re.IGNORECASE), "flags"),
        (validators.Regexp(r"(?i)^[a-z]+$"), "flags"),
        (validators.Regexp(r"^(x)?(?(1)a|b)$"), "conditionals"),
        (validators.Regexp(r"^(?P<a>x)(?P=a)$"), "named references"),
        (validators.Regexp(r"^(x)\1$"), r"\1"),
        (validators.Regexp(r"\N{BULLET}"), r"\N"),
        (validators.Regexp(r"[\W]"), r"\W in a character class"),
        (validators.Regexp(r"a++"), "possessive"),
        (validators.Regexp(r"(?>a)"), "atomic"),
        (validators.Regexp(r"\U0001F600"), r"\U"),
        (validators.Regexp(re.compile(b"x")), "bytes"),
        (validators.Regexp(r"x", matcher=lambda regex, value: regex.match(value)), "custom matcher"),
    ],
)
def test_regexp_without_a_shared_reading_is_refused(regexp: t.Any, reason: str) -> None:
    form_class = type("Signup", (Form,), {"code": fields.StringField(validators=[regexp])})
    with pytest.raises(ValueError, match="Signup.code: the regular expression") as error:
        form_schema(form_class)
    assert reason in str(error.value)


def test_an_app_with_such_a_pattern_fails_when_the_model_is_exposed() -> None:
    class Caseless(Form):
        code = fields.StringField(validators=[validators.Regexp("^[a-z]+$", re.IGNORECASE)])

    class TicketState(StateManager):
        OPEN = State(1, "Open")
        CLOSED = State(2, "Closed")
        close = Transition(OPEN, CLOSED, "Close", form=Caseless)

    class Base(orm.DeclarativeBase):
        pass

    class Ticket(Base):
        __tablename__ = "ticket"
        id: Mapped[int] = mapped_column(primary_key=True)
        _state: Mapped[int] = TicketState.column(default=TicketState.OPEN)
        state = TicketState("_state")

    statemgr = StateMgr()
    with pytest.raises(ValueError, match="Caseless.code: the regular expression"):
        statemgr.expose(Ticket)
    assert statemgr.exposed == {}


def test_several_patterns() -> None:
    chain = [validators.Regexp(r"^a"), validators.Regexp(r"^.b")]
    schema = prop(fields.StringField(validators=chain))
    assert (schema["pattern"], schema["allOf"]) == ("^a", [{"pattern": r"^[^\n]b"}])


@pytest.mark.parametrize(
    "validator",
    [
        validators.URL(),
        validators.UUID(),
        validators.IPAddress(),
        validators.IPAddress(ipv4=False, ipv6=True),
    ],
)
def test_format_validators_are_the_servers(validator: t.Any) -> None:
    # JSON Schema's formats and these validators differ on some values (a
    # UUID without dashes, an IPv6 zone), so the schema doesn't claim them.
    schema = prop(fields.StringField(validators=[validator]))
    assert "format" not in schema
    assert "pattern" not in schema


def test_read_only_with_a_default() -> None:
    # The form refuses any value but the one it started with.
    assert prop(fields.StringField(default="x", validators=[validators.ReadOnly()])) == {
        "type": "string",
        "readOnly": True,
        "const": "x",
        "title": "F",
        "default": "x",
    }


# -- labels, descriptions, defaults


def test_label_and_description() -> None:
    schema = prop(fields.StringField("Full name", description="As on the passport"))
    assert schema["title"] == "Full name"
    assert schema["description"] == "As on the passport"


def test_label_defaults_to_the_name() -> None:
    class F(Form):
        first_name = fields.StringField()

    assert form_schema(F)["properties"]["first_name"]["title"] == "First Name"


@pytest.mark.parametrize(
    ("field", "default"),
    [
        (fields.StringField(default="draft"), "draft"),
        (fields.IntegerField(default=3), 3),
        (fields.DecimalField(default=Decimal("2.50")), 2.5),
        (fields.BooleanField(default="checked"), True),
        (fields.DateField(default=datetime.date(2024, 5, 1)), "2024-05-01"),
        (
            fields.DateTimeLocalField(default=datetime.datetime(2024, 5, 1, 14, 30)),
            # naive: UTC, as the server reads a naive value
            "2024-05-01T14:30:00Z",
        ),
        (fields.TimeField(default=datetime.time(9, 5)), "09:05"),
        (fields.TimeField(default=datetime.time(9, 5, 7)), "09:05:07"),
        (fields.MonthField(default=datetime.date(2024, 5, 1)), "2024-05"),
        (fields.WeekField(default=datetime.date(2024, 4, 29)), "2024-W18"),
        (fields.DateField(format="%d.%m.%Y", default=datetime.date(2024, 5, 1)), "2024-05-01"),
        (fields.SelectField(choices=[("1", "One")], coerce=int, default="1"), 1),
        (fields.SelectMultipleField(choices=["a", "b"], default=["b"]), ["b"]),
        (fields.FieldList(fields.StringField(), default=["x", "y"]), ["x", "y"]),
    ],
)
def test_static_default(field: t.Any, default: t.Any) -> None:
    assert prop(field)["default"] == default


@pytest.mark.parametrize(
    "field",
    [
        fields.DateTimeLocalField(default=datetime.datetime.now),
        fields.StringField(default=lambda: "computed"),
        fields.StringField(),
        fields.FieldList(fields.StringField()),
    ],
)
def test_no_default(field: t.Any) -> None:
    assert "default" not in prop(field)


# -- the schema as a whole


class Publish(FlaskForm):
    title = fields.StringField("Title", [validators.DataRequired(), validators.Length(max=5)])
    count = fields.IntegerField("Count", [validators.Optional(), validators.NumberRange(min=0, max=10)])
    kind = fields.SelectField("Kind", choices=[("a", "A"), ("b", "B")])
    agree = fields.BooleanField("Agree", [validators.DataRequired()])
    tags = fields.SelectMultipleField("Tags", choices=[("x", "X"), ("y", "Y")])
    submit = fields.SubmitField()


def test_document() -> None:
    schema = form_schema(Publish)
    assert list(schema) == ["$schema", "type", "properties", "required"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert list(schema["properties"]) == ["title", "count", "kind", "agree", "tags"]
    assert schema["required"] == ["title", "kind", "agree"]


def test_flask_form_without_an_app() -> None:
    # No app or request context is pushed in this test.
    assert form_schema(Publish)["properties"]["title"]["maxLength"] == 5


def test_schema_is_cached_and_stable() -> None:
    first = form_schema(Publish)
    text = json.dumps(first, sort_keys=False)
    assert form_schema(Publish) is first
    assert json.dumps(form_schema(Publish), sort_keys=False) == text


def test_schema_text_is_the_same_in_every_process() -> None:
    # Sets iterate in a per-process order; the ETag must not change with it.
    code = (
        "import json;"
        "from wtforms import Form, fields, validators as v;"
        "from flask_statemgr.forms import form_schema;"
        "F = type('F', (Form,), {'x': fields.StringField("
        "validators=[v.AnyOf({'alpha', 'beta', 'gamma', 'delta'})])});"
        "print(json.dumps(form_schema(F)))"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1


class Everything(Form):
    name = fields.StringField(validators=[validators.Regexp(r"(?P<x>\d+)\Z")])
    body = fields.TextAreaField(default="")
    secret = fields.PasswordField()
    count = fields.IntegerField(default=1, validators=[validators.NumberRange(0, 5)])
    price = fields.DecimalField(default=Decimal("1.25"))
    ok = fields.BooleanField(validators=[validators.DataRequired()])
    kind = fields.SelectField(choices=[("1", "One"), ("2", "Two")], coerce=int)
    radio = fields.RadioField(choices=[("a", "A")])
    many = fields.SelectMultipleField(choices=[("a", "A")], validators=[validators.Length(max=1)])
    due = fields.DateField(default=datetime.date(2024, 1, 1))
    at = fields.DateTimeLocalField()
    clock = fields.TimeField()
    week = fields.WeekField()
    level = fields.IntegerRangeField()
    hidden = fields.HiddenField()
    words = fields.FieldList(fields.StringField(), max_entries=2)
    nested = fields.FormField(Publish)
    other = fields.StringField(validators=[validators.NoneOf({"x", "y"})])


@pytest.mark.parametrize("form_class", [Publish, Everything])
def test_schema_is_a_valid_json_schema(form_class: type[Form]) -> None:
    jsonschema.Draft202012Validator.check_schema(form_schema(form_class))


@pytest.mark.parametrize(
    "instance",
    [
        {"title": "Hi", "kind": "a", "agree": True},
        {"title": "Hello", "count": 0, "kind": "b", "agree": True, "tags": ["x", "y"]},
        {"title": "Hi", "count": 10, "kind": "a", "agree": True, "extra": "ignored"},
    ],
)
def test_data_the_form_accepts_is_valid(instance: dict[str, t.Any]) -> None:
    assert validate_form_data(Publish, instance)[1] == {}
    assert is_valid(Publish, instance)


@pytest.mark.parametrize(
    ("instance", "field"),
    [
        ({"kind": "a", "agree": True}, "title"),
        ({"title": "", "kind": "a", "agree": True}, "title"),
        ({"title": "Too long", "kind": "a", "agree": True}, "title"),
        ({"title": "Hi", "count": 11, "kind": "a", "agree": True}, "count"),
        ({"title": "Hi", "count": 2.5, "kind": "a", "agree": True}, "count"),
        ({"title": "Hi", "kind": "c", "agree": True}, "kind"),
        ({"title": "Hi", "agree": True}, "kind"),
        ({"title": "Hi", "kind": "a", "agree": False}, "agree"),
        ({"title": "Hi", "kind": "a"}, "agree"),
        ({"title": "Hi", "kind": "a", "agree": True, "tags": ["z"]}, "tags"),
    ],
)
def test_data_the_form_refuses_is_invalid(instance: dict[str, t.Any], field: str) -> None:
    assert list(validate_form_data(Publish, instance)[1]) == [field]
    assert not is_valid(Publish, instance)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "title": st.text(string.ascii_letters, max_size=7),
            "count": st.integers(-3, 13) | st.floats(-3, 13).map(lambda x: round(x * 2) / 2),
            "kind": st.sampled_from(["a", "b", "c", ""]),
            "agree": st.booleans(),
            "tags": st.lists(st.sampled_from(["x", "y", "z"]), max_size=2, unique=True),
        },
    )
)
def test_form_and_schema_agree(instance: dict[str, t.Any]) -> None:
    # On these fields the schema says all that the form checks.
    accepted = validate_form_data(Publish, instance)[1] == {}
    assert accepted == is_valid(Publish, instance)


# -- validating data


class Order(Form):
    name = fields.StringField("Name", [validators.DataRequired()])
    quantity = fields.IntegerField("Quantity", [validators.NumberRange(min=1)])
    price = fields.DecimalField("Price", [validators.Optional()])
    gift = fields.BooleanField("Gift")
    size = fields.SelectField("Size", choices=[("1", "S"), ("2", "M")], coerce=int)
    extras = fields.SelectMultipleField("Extras", choices=[("a", "A"), ("b", "B")])
    deliver_on = fields.DateField("Deliver on", [validators.Optional()])
    deliver_at = fields.DateTimeLocalField("Deliver at", [validators.Optional()])
    submit = fields.SubmitField()


def test_json_values() -> None:
    data, errors = validate_form_data(
        Order,
        {
            "name": "Ann",
            "quantity": 2.0,
            "price": 1.5,
            "gift": True,
            "size": 2,
            "extras": ["a", "b"],
            "deliver_on": "2024-05-01",
            "deliver_at": "2024-05-01T14:30:00+02:00",
        },
    )
    assert errors == {}
    assert data == {
        "name": "Ann",
        "quantity": 2,
        "price": Decimal("1.5"),
        "gift": True,
        "size": 2,
        "extras": ["a", "b"],
        "deliver_on": datetime.date(2024, 5, 1),
        # converted to UTC, naive as the field gives it
        "deliver_at": datetime.datetime(2024, 5, 1, 12, 30),
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", {"a": "b"}),
        ("name", True),
        ("name", False),
        ("quantity", True),
        ("extras", [{"a": 1}]),
        ("deliver_on", {"year": 2024}),
        ("deliver_at", True),
        ("gift", {"y": 1}),
    ],
)
def test_values_no_browser_could_post_are_field_errors(field: str, value: t.Any) -> None:
    """Never stored as their Python text (``"{'a': 'b'}"``, ``"False"``)."""
    valid = {"name": "Ann", "quantity": 2, "size": 1}
    data, errors = validate_form_data(Order, {**valid, field: value})
    assert errors == {field: ["Not a valid value."]}
    assert data[field] in (None, "", [""], False)


def test_nested_values_no_browser_could_post_are_field_errors() -> None:
    class Address(Form):
        city = fields.StringField("City")

    class Shipment(Form):
        address = fields.FormField(Address)
        notes = fields.FieldList(fields.StringField("Note"))

    errors = validate_form_data(Shipment, {"address": {"city": {"x": 1}}, "notes": ["ok", True]})[1]
    assert errors == {"address.city": ["Not a valid value."], "notes.1": ["Not a valid value."]}


def test_python_values() -> None:
    data, errors = validate_form_data(
        Order,
        {
            "name": "Ann",
            "quantity": Decimal(3),
            "price": Decimal("0.10"),
            "size": 1,
            "extras": ("b",),
            "deliver_on": datetime.date(2024, 5, 1),
            "deliver_at": datetime.datetime(2024, 5, 1, 14, 30, 15),
        },
    )
    assert errors == {}
    assert data["quantity"] == 3
    assert data["price"] == Decimal("0.10")
    assert data["extras"] == ["b"]
    assert data["deliver_on"] == datetime.date(2024, 5, 1)
    assert data["deliver_at"] == datetime.datetime(2024, 5, 1, 14, 30, 15)


def test_aware_datetime_in_the_field_zone() -> None:
    plus_two = datetime.timezone(datetime.timedelta(hours=2))

    class F(Form):
        at = fields.DateTimeLocalField(tz=plus_two)
        naive = fields.DateTimeLocalField()

    utc_noon = datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC)
    data, errors = validate_form_data(F, {"at": utc_noon, "naive": utc_noon})
    assert errors == {}
    assert data["at"] == utc_noon
    assert data["at"].hour == 14
    assert data["naive"] == datetime.datetime(2024, 5, 1, 12, 0)


def test_false_is_not_sent_and_null_is_not_a_value() -> None:
    data, errors = validate_form_data(Order, {"name": "Ann", "quantity": 1, "size": 1, "gift": False})
    assert errors == {}
    assert data["gift"] is False
    assert data["price"] is None
    # what the schema refuses, the server refuses: leave the key out instead
    _, errors = validate_form_data(Order, {"name": "Ann", "quantity": 1, "size": 1, "price": None})
    assert errors == {"price": ["Not a valid value."]}


def test_errors() -> None:
    data, errors = validate_form_data(Order, {"quantity": "many", "size": 3, "extras": ["c"]})
    assert errors == {
        "name": ["This field is required."],
        "quantity": ["Not a valid integer value.", "Number must be at least 1."],
        "size": ["Not a valid choice."],
        "extras": ["'c' is not a valid choice for this field."],
    }
    assert data["name"] is None


def test_no_data() -> None:
    assert set(validate_form_data(Order, None)[1]) == {"name", "quantity", "size"}
    assert validate_form_data(type("Empty", (Form,), {}), None) == ({}, {})


def test_extra_keys_are_ignored() -> None:
    data, errors = validate_form_data(
        Order,
        {"name": "Ann", "quantity": 1, "size": 1, "name-0": "x", "csrf_token": "x"},
    )
    assert errors == {}
    assert "name-0" not in data


def test_buttons_are_not_data() -> None:
    data, _ = validate_form_data(Order, {"submit": True})
    assert "submit" not in data


def test_multidict() -> None:
    formdata = MultiDict(
        [
            ("name", "Ann"),
            ("quantity", "4"),
            ("size", "2"),
            ("extras", "a"),
            ("extras", "b"),
        ]
    )
    data, errors = validate_form_data(Order, formdata)
    assert errors == {}
    assert (data["quantity"], data["size"], data["extras"]) == (4, 2, ["a", "b"])


def test_nested_data_and_errors() -> None:
    class Address(Form):
        city = fields.StringField(validators=[validators.DataRequired()])

    class Line(Form):
        sku = fields.StringField(validators=[validators.Length(max=3)])

    class F(Form):
        address = fields.FormField(Address)
        lines = fields.FieldList(fields.FormField(Line))
        scores = fields.FieldList(
            fields.IntegerField(validators=[validators.NumberRange(max=9)]),
            validators=[validators.Length(max=2)],
        )

    data, errors = validate_form_data(
        F,
        {
            "address": {"city": "Lyon"},
            "lines": [{"sku": "abc"}, {"sku": "abcd"}],
            "scores": [1, 2],
        },
    )
    assert errors == {"lines.1.sku": ["Field cannot be longer than 3 characters."]}
    assert data == {
        "address": {"city": "Lyon"},
        "lines": [{"sku": "abc"}, {"sku": "abcd"}],
        "scores": [1, 2],
    }
    _, errors = validate_form_data(F, {"address": {}, "scores": [1, 10, 3]})
    assert errors == {
        "address.city": ["This field is required."],
        "scores.1": ["Number must be at most 9."],
        "scores": ["Field cannot be longer than 2 characters."],
    }


def test_inline_validator_and_form_errors() -> None:
    class F(Form):
        code = fields.StringField()

        def validate_code(self, field: t.Any) -> None:
            if field.data != "ok":
                raise validators.ValidationError("Wrong code.")

        def validate(self, extra_validators: t.Any = None) -> bool:
            if not super().validate(extra_validators):
                return False
            self.form_errors.append("Closed today.")
            return False

    assert validate_form_data(F, {"code": "no"})[1] == {"code": ["Wrong code."]}
    assert validate_form_data(F, {"code": "ok"})[1] == {"": ["Closed today."]}


def test_refusal_without_a_reason() -> None:
    class F(Form):
        def validate(self, extra_validators: t.Any = None) -> bool:
            return False

    assert validate_form_data(F, {})[1] == {"": ["The form is not valid."]}


def test_file_in_a_multidict() -> None:
    class F(Form):
        upload = fields.FileField()

    upload = FileStorage(filename="a.txt")
    data, errors = validate_form_data(F, MultiDict([("upload", upload)]))
    assert errors == {}
    assert data["upload"] is upload


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", WTF_CSRF_ENABLED=True)
    return app


def test_flask_form_in_a_request_ignores_the_request(app: Flask) -> None:
    with app.test_request_context(method="POST", data={"title": "From request"}):
        data, errors = validate_form_data(Publish, {"title": "Hi", "kind": "a", "agree": True})
        assert errors == {}
        assert data["title"] == "Hi"
        # CSRF is on for the app, but not for data validated here.
        assert "csrf_token" not in data
        _, errors = validate_form_data(Publish, None)
        assert set(errors) == {"title", "kind", "agree"}


def test_flask_form_in_an_app_context(app: Flask) -> None:
    with app.app_context():
        assert validate_form_data(Publish, {"title": "Hi", "kind": "a", "agree": True})[1] == {}


def test_flask_form_without_a_context() -> None:
    assert validate_form_data(Publish, {"title": "Hi", "kind": "a", "agree": True})[1] == {}
    assert validate_form_data(Publish, {"kind": "b", "agree": True})[1] == {"title": ["This field is required."]}


# -- binding a form for a view


def test_bind_form_on_get(app: Flask) -> None:
    class F(Form):
        name = fields.StringField(default="x")

    with app.test_request_context(method="GET", query_string={"name": "y"}):
        assert bind_form(F).name.data == "x"


def test_bind_form_on_post(app: Flask) -> None:
    class F(Form):
        name = fields.StringField(validators=[validators.DataRequired()])

    with app.test_request_context(method="POST", data={"name": "posted"}):
        form = bind_form(F)
        assert form.validate()
        assert form.name.data == "posted"

    with app.test_request_context(method="POST", json={"name": "json"}):
        assert bind_form(F).name.data == "json"

    with app.test_request_context(method="POST", json=["not", "an", "object"]):
        assert not bind_form(F).validate()


def test_bind_form_keeps_csrf(app: Flask) -> None:
    with app.test_request_context(method="POST", data={"title": "Hi", "kind": "a", "agree": "y"}):
        form = bind_form(Publish)
        assert not form.validate()
        assert "csrf_token" in form.errors


def test_bind_form_with_given_data() -> None:
    class F(Form):
        count = fields.IntegerField()

    assert bind_form(F, {"count": 3}).count.data == 3
    assert bind_form(F, MultiDict([("count", "4")])).count.data == 4
    assert bind_form(F, data={"count": 5}).count.data == 5


# -- the schema and the server agree


def test_rfc3339_date_times_are_accepted() -> None:
    class F(Form):
        at = fields.DateTimeLocalField(validators=[validators.DataRequired()])
        zoned = fields.DateTimeLocalField(tz=datetime.timezone(datetime.timedelta(hours=2)))

    data, errors = validate_form_data(F, {"at": "2024-05-01T14:30:00.5+02:00", "zoned": "2024-05-01T14:30:00Z"})
    assert errors == {}
    # converted to UTC and naive, or to the field's zone
    assert data["at"] == datetime.datetime(2024, 5, 1, 12, 30)
    assert data["zoned"] == datetime.datetime(2024, 5, 1, 14, 30, tzinfo=datetime.UTC)
    assert data["zoned"].hour == 16
    # what a datetime-local input gives, and the field would parse, is not
    # RFC 3339
    for local in ("2024-05-01T14:30", "2024-05-01 14:30:00"):
        assert not is_valid(F, {"at": local})
        assert validate_form_data(F, {"at": local})[1] == {"at": ["Not a valid value."]}


def test_an_impossible_date_gets_the_fields_message() -> None:
    class F(Form):
        day = fields.DateField(validators=[validators.Optional()])

    assert not is_valid(F, {"day": "2023-02-29"})
    assert validate_form_data(F, {"day": "2023-02-29"})[1] == {"day": ["Not a valid date value."]}


def test_an_omitted_checkbox_takes_its_default() -> None:
    class F(Form):
        notify = fields.BooleanField(default=True)
        archive = fields.BooleanField()

    assert form_schema(F)["properties"]["notify"]["default"] is True
    assert validate_form_data(F, {})[0] == {"notify": True, "archive": False}
    assert validate_form_data(F, {"notify": False})[0] == {"notify": False, "archive": False}


def test_an_omitted_nested_form_takes_its_defaults() -> None:
    class Inner(Form):
        pinned = fields.BooleanField(default=True)

    class F(Form):
        inner = fields.FormField(Inner)

    assert validate_form_data(F, {})[0] == {"inner": {"pinned": True}}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (fields.SelectMultipleField(choices=["a"], validators=[validators.DataRequired()]), []),
        (fields.StringField(validators=[validators.DataRequired()]), " \u3000\n"),
        (fields.BooleanField(validators=[validators.InputRequired()]), False),
        (fields.IntegerField(validators=[validators.DataRequired()]), 0),
    ],
)
def test_what_the_form_refuses_as_missing_the_schema_refuses(field: t.Any, value: t.Any) -> None:
    form_class = type("F", (Form,), {"f": field})
    assert not is_valid(form_class, {"f": value})
    # the form's own message
    assert validate_form_data(form_class, {"f": value})[1] == {"f": ["This field is required."]}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # values the form alone would read
        (fields.IntegerField(), "3", "Not a valid value."),
        (fields.StringField(), 3, "Not a valid value."),
        (fields.BooleanField(), "y", "Not a valid value."),
        (fields.SelectField(choices=["1"], coerce=int), "1", "Not a valid value."),
        (fields.SelectMultipleField(choices=["a"]), ["a", "a"], "Not a valid value."),
        (fields.SelectMultipleField(choices=["a"]), "a", "Not a valid value."),
        (fields.FieldList(fields.StringField(), max_entries=1), ["a", "b"], "Not a valid value."),
        (fields.StringField(validators=[validators.Optional(), validators.Length(min=2)]), "", "Not a valid value."),
        # values the form refuses too keep its words
        (fields.IntegerField(), "many", "Not a valid integer value."),
        (fields.StringField(validators=[validators.Length(max=1)]), "ab", "Field cannot be longer than 1 character."),
        (fields.SelectField(choices=["a"]), "b", "Not a valid choice."),
    ],
)
def test_what_only_the_schema_refuses_is_not_a_valid_value(field: t.Any, value: t.Any, message: str) -> None:
    form_class = type("F", (Form,), {"f": field})
    assert not is_valid(form_class, {"f": value})
    assert validate_form_data(form_class, {"f": value})[1] == {"f": [message]}


def test_a_wrong_type_in_a_nested_form_is_the_forms_error() -> None:
    class Address(Form):
        city = fields.StringField(validators=[validators.DataRequired()])

    class F(Form):
        address = fields.FormField(Address)

    assert validate_form_data(F, {"address": "Lyon"})[1] == {"address": ["Not a valid value."]}


PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))


class Address(Form):
    city = fields.StringField("City", [validators.DataRequired()])
    zip = fields.StringField("ZIP", [validators.Optional(), validators.Regexp(r"^\d{5}$")])


class Note(Form):
    text = fields.StringField()
    pinned = fields.BooleanField(default=True)


def lenient_int(value: t.Any) -> t.Any:
    return int(value) if value else None


v = validators
#: Every field type this module supports, with the validators it maps, one
#: per form (named ``f``) so that each verdict is about one field.
DIFFERENTIAL_FIELDS: dict[str, t.Any] = {
    "text": fields.StringField(),
    "text_data_required": fields.StringField(validators=[v.DataRequired()]),
    "text_input_required": fields.StringField(validators=[v.InputRequired()]),
    "text_optional_length": fields.StringField(validators=[v.Optional(), v.Length(2, 5)]),
    "text_length": fields.StringField(validators=[v.Length(min=2)]),
    "text_room": fields.StringField(validators=[v.DataRequired(), v.Regexp(r"^[A-Z]-\d{3}$")]),
    "text_dot": fields.StringField(validators=[v.Regexp(r"a.c")]),
    "text_word_end": fields.StringField(validators=[v.Regexp(r"\w+\Z")]),
    "text_search_space": fields.StringField(validators=[v.Regexp(r"\s", matcher=re.search)]),
    "text_fullmatch": fields.StringField(validators=[v.Regexp(r"ab|cd", matcher=re.fullmatch)]),
    "text_ascii": fields.StringField(validators=[v.Regexp(re.compile(r"^\w+\b", re.ASCII))]),
    "text_any_of": fields.StringField(validators=[v.AnyOf(["a", "b"])]),
    "text_none_of": fields.StringField(validators=[v.NoneOf(["a"])]),
    "text_mac": fields.StringField(validators=[v.MacAddress()]),
    "text_default": fields.StringField(default="x", validators=[v.DataRequired()]),
    "text_read_only": fields.StringField(default="x", validators=[v.ReadOnly()]),
    "text_disabled": fields.StringField(validators=[v.Disabled()]),
    "textarea": fields.TextAreaField(validators=[v.DataRequired(), v.Length(min=3, max=10)]),
    "password": fields.PasswordField(validators=[v.InputRequired()]),
    "email": fields.EmailField(),
    "url": fields.URLField(),
    "hidden": fields.HiddenField(),
    "search": fields.SearchField(),
    "tel": fields.TelField(),
    "color": fields.ColorField(),
    "integer": fields.IntegerField(),
    "integer_range": fields.IntegerField(validators=[v.InputRequired(), v.NumberRange(1, 500)]),
    "integer_data_required": fields.IntegerField(validators=[v.DataRequired()]),
    "integer_optional": fields.IntegerField(validators=[v.Optional(), v.NumberRange(min=0)]),
    "integer_default": fields.IntegerField(default=1),
    "integer_excluded": fields.IntegerField(validators=[v.DataRequired(), v.NoneOf([13])]),
    "integer_slider": fields.IntegerRangeField(validators=[v.NumberRange(0, 5)]),
    "decimal": fields.DecimalField(),
    "decimal_min": fields.DecimalField(validators=[v.NumberRange(min=Decimal("0.5"))]),
    "decimal_slider": fields.DecimalRangeField(),
    "float_max": fields.FloatField(validators=[v.NumberRange(max=1.5)]),
    "float_data_required": fields.FloatField(validators=[v.DataRequired()]),
    "checkbox": fields.BooleanField(),
    "checkbox_data_required": fields.BooleanField(validators=[v.DataRequired()]),
    "checkbox_input_required": fields.BooleanField(validators=[v.InputRequired()]),
    "checkbox_default": fields.BooleanField(default=True),
    "select": fields.SelectField(choices=["a", "b"]),
    "select_default": fields.SelectField(choices=["a", "b"], default="b"),
    "select_int": fields.SelectField(choices=[("1", "One"), ("2", "Two")], coerce=int),
    "select_optional": fields.SelectField(choices=[("", "-"), ("a", "A")], validators=[v.Optional()]),
    "select_data_required": fields.SelectField(choices=[("", "-"), ("a", "A")], validators=[v.DataRequired()]),
    "select_mixed": fields.SelectField(choices=[("", "Pick"), ("1", "One")], coerce=lenient_int),
    "select_unvalidated": fields.SelectField(choices=[("a", "A")], validate_choice=False),
    "radio": fields.RadioField(choices=["a", "b"]),
    "multi": fields.SelectMultipleField(choices=["a", "b"]),
    "multi_required": fields.SelectMultipleField(choices=["a", "b"], validators=[v.DataRequired()]),
    "multi_int": fields.SelectMultipleField(choices=[("1", "1"), ("2", "2")], coerce=int, validators=[v.Length(max=1)]),
    "multi_checkboxes": fields.SelectMultipleField(
        choices=["a", "b"], widget=widgets.ListWidget(), option_widget=widgets.CheckboxInput()
    ),
    "multi_default": fields.SelectMultipleField(choices=["a", "b"], default=["b"]),
    "date": fields.DateField(),
    "date_required": fields.DateField(validators=[v.DataRequired()]),
    "date_optional": fields.DateField(validators=[v.Optional()]),
    "date_default": fields.DateField(default=datetime.date(2024, 1, 1)),
    "date_dotted": fields.DateField(format="%d.%m.%Y"),
    "datetime_local": fields.DateTimeLocalField(validators=[v.DataRequired()]),
    "datetime_local_optional": fields.DateTimeLocalField(),
    "datetime_local_zone": fields.DateTimeLocalField(tz=PLUS_TWO),
    "datetime": fields.DateTimeField(),
    "time": fields.TimeField(),
    "time_required": fields.TimeField(validators=[v.InputRequired()]),
    "month": fields.MonthField(),
    "week": fields.WeekField(),
    "form": fields.FormField(Address),
    "form_optional": fields.FormField(Note),
    "list": fields.FieldList(fields.StringField(), max_entries=2),
    "list_numbers": fields.FieldList(fields.IntegerField(validators=[v.NumberRange(max=9)])),
    "list_required": fields.FieldList(fields.StringField(validators=[v.DataRequired()]), min_entries=1),
}
del v

OMITTED = object()
#: Values of every JSON type, and strings in the shapes that the fields, the
#: formats and the two regex dialects read differently.
DIFFERENTIAL_VALUES: list[t.Any] = [
    OMITTED,
    None,
    True,
    False,
    0,
    1,
    2,
    3,
    13,
    -1,
    2.5,
    3.0,
    0.5,
    1.5,
    9,
    10,
    500,
    501,
    10**20,
    "",
    " ",
    "\t",
    "\n",
    "\u00a0",
    "\x1c",
    "\ufeff",
    "\u2028",
    "a",
    " a ",
    "abc",
    "abc\n",
    "ab",
    "cd",
    "abcd",
    "a\nc",
    "a\rc",
    "a\u2028c",
    "B-204",
    "B-204\n",
    "b-204",
    "B-\u0662\u0660\u0664",
    "x" * 6,
    "\u00e9",
    "01:23:45:67:89:ab",
    "01:23:45:67:89:ab\n",
    "0",
    "1",
    "2",
    "1.5",
    "-3",
    "true",
    "y",
    "false",
    "x",
    "#ff0000",
    "2024-05-01",
    "2024-5-1",
    "2024-02-29",
    "2023-02-29",
    "2024-02-30",
    "0000-01-01",
    "0999-01-01",
    "2024-05-01 ",
    "2024-05-01\n",
    "01.05.2024",
    "\u0662\u0660\u0662\u0664-05-01",
    "2024-05-01T14:30:00Z",
    "2024-05-01T14:30:00+02:00",
    "2024-05-01T14:30:00.123456789-05:30",
    "2024-05-01t14:30:00z",
    "2024-05-01 14:30:00Z",
    "2024-05-01T14:30:00+02",
    "2024-05-01T14:30:00+0200",
    "2024-05-01T14:30",
    "2024-05-01T14:30:00",
    "2024-05-01 14:30:00",
    "2024-12-31T23:59:60Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01T14:30:00+24:00",
    "2024-05-01T14:30:00Z\n",
    "2023-02-29T10:00:00Z",
    "1999-12-31T23:59:59-23:59",
    "14:30",
    "14:30:15",
    "14:30:15.5",
    "24:00",
    "9:30",
    "14:30Z",
    "14:30:00+02:00",
    "2024-05",
    "2024-13",
    "2024-5",
    "2024-W18",
    "2024-W53",
    "2024-W54",
    "2024-W5",
    [],
    ["a"],
    ["a", "a"],
    ["a", "b"],
    ["b"],
    ["x"],
    [1],
    [1, 2],
    [2],
    ["1"],
    [""],
    [True],
    [None],
    [["a"]],
    [{"a": 1}],
    ["ab", "cd", "ef"],
    [9, 10],
    [3.0],
    {},
    {"city": "Lyon"},
    {"city": ""},
    {"city": " "},
    {"city": 5},
    {"city": "Lyon", "zip": "1234"},
    {"city": "Lyon", "zip": "12345"},
    {"city": "Lyon", "zip": ""},
    {"text": "t", "pinned": "y"},
    {"pinned": False},
]


def differential_cases() -> tuple[list[type[Form]], list[tuple[int, dict[str, t.Any]]]]:
    forms = [type(f"F_{name}", (Form,), {"f": field}) for name, field in DIFFERENTIAL_FIELDS.items()]
    cases = [
        (index, {} if value is OMITTED else {"f": value})
        for index in range(len(forms))
        for value in DIFFERENTIAL_VALUES
    ]
    return forms, cases


def test_ajv_python_jsonschema_and_the_server_agree(ajv: t.Any) -> None:
    """ajv (Ajv2020, strict), python-jsonschema (with format checks) and
    ``validate_form_data`` give the same verdict on every value."""
    forms, cases = differential_cases()
    schemas = [form_schema(form_class) for form_class in forms]
    compile_errors, by_ajv = ajv(schemas, cases)
    assert compile_errors == [None] * len(schemas)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    python = [jsonschema.Draft202012Validator(schema, format_checker=checker) for schema in schemas]
    disagreements = []

    for (index, instance), ajv_says in zip(cases, by_ajv):
        verdicts = {
            "ajv": ajv_says,
            "python-jsonschema": python[index].is_valid(instance),
            "server": validate_form_data(forms[index], instance)[1] == {},
        }
        if len(set(verdicts.values())) > 1:
            disagreements.append((forms[index].__name__, instance, verdicts))

    assert len(cases) > 8000
    # some of everything is accepted, and some refused
    assert 0.1 < sum(by_ajv) / len(cases) < 0.5
    assert disagreements == []


@pytest.mark.parametrize("form_class", [Publish, Everything])
def test_every_schema_compiles_in_ajv_strict_mode(ajv: t.Any, form_class: type[Form]) -> None:
    assert ajv([form_schema(form_class)], []) == ([None], [])


def test_the_served_schema_is_standard(ajv: t.Any, example: Flask) -> None:
    """Every form in the example app's GET /schema, as a client gets it."""
    body = example.test_client().get("/_statemgr/schema").get_json()
    entries = [
        entry
        for manager in body["managers"].values()
        for entry in manager["transitions"].values()
        if entry["form"] is not None
    ]
    errors, _ = ajv([entry["form"] for entry in entries], [])
    assert len(entries) >= 4
    assert errors == [None] * len(entries)
    hints = [entry["ui"] for entry in entries]
    # the schedule form's notes are a textarea, its room's Regexp has a
    # message of its own
    assert {
        "room": {"ui:options": {"patternMessage": "Write a capital letter, a hyphen and three digits, such as B-204."}},
        "notes": {"ui:widget": "textarea"},
    } in hints
    assert all(key.startswith("ui:") for hint in hints for field in hint.values() for key in field)


#: Regular expressions as apps write them, with how WTForms applies them.
PORTABLE_REGEXES: list[tuple[t.Any, t.Any]] = [
    (re.compile(r"^\w$"), re.match),
    (re.compile(r"^\d\d?$"), re.match),
    (re.compile(r"^\s$"), re.match),
    (re.compile(r"^\W\D$"), re.match),
    (re.compile(r"^.$"), re.match),
    (re.compile(r".+"), re.match),
    (re.compile(r"a$"), re.match),
    (re.compile(r"\S+\Z"), re.match),
    (re.compile(r"[^\w]"), re.search),
    (re.compile(r"^[\d_-]+$"), re.match),
    (re.compile(r"^[\s-]$"), re.match),
    (re.compile(r"\A\w\Z"), re.match),
    (re.compile(r"\w"), re.fullmatch),
    (re.compile(r"\d"), re.search),
    (re.compile(r"^\w\b", re.ASCII), re.match),
    (re.compile(r"\b\w\B"), re.search),
    (re.compile(r"^[]a]$"), re.match),
    (re.compile(r"^a{,2}$"), re.match),
    (re.compile(r"^(?P<x>a|Z)(?=\d)"), re.match),
    (re.compile(r"(?<!a)Z"), re.search),
]
#: Every string of one or two of these characters, which the two dialects
#: class differently (Unicode digits and letters, line terminators, spaces).
PORTABLE_STRINGS = [
    "".join(chars)
    for size in (0, 1, 2)
    for chars in itertools.product(
        ["a", "Z", "5", "\u0663", "_", " ", "\n", "\r", "\u2028", "\u00a0", "-", "\u00e9", "\x1c"],
        repeat=size,
    )
]


def test_patterns_read_the_same_in_python_and_javascript(ajv: t.Any) -> None:
    """What the regex says under WTForms' matcher, ajv (ECMA-262) and
    python-jsonschema (Python's re) say of the translated pattern."""
    patterns = [portable_pattern(regex, matcher) for regex, matcher in PORTABLE_REGEXES]
    cases = [(i, text) for i in range(len(patterns)) for text in PORTABLE_STRINGS]
    errors, by_ajv = ajv([{"type": "string", "pattern": p} for p in patterns], cases)
    assert errors == [None] * len(patterns)
    disagreements = []
    for (index, text), ajv_says in zip(cases, by_ajv):
        regex, matcher = PORTABLE_REGEXES[index]
        verdicts = {
            "regex": bool(matcher(regex, text)),
            "ajv": ajv_says,
            "python-jsonschema": bool(re.search(patterns[index], text)),
        }
        if len(set(verdicts.values())) > 1:
            disagreements.append((regex.pattern, text, verdicts))
    assert len(cases) > 3000
    assert disagreements == []


def test_a_regexps_own_message_is_a_ui_hint() -> None:
    class RoomForm(Form):
        room = fields.StringField(validators=[validators.Regexp(r"[A-Z]-\d{3}", message="Like B-204, please.")])
        code = fields.StringField(validators=[validators.Regexp(r"\d+")])

    # what a client says when the pattern refuses; WTForms' default needs none
    assert form_ui(RoomForm) == {"room": {"ui:options": {"patternMessage": "Like B-204, please."}}}
    assert validate_form_data(RoomForm, {"room": "b204", "code": "12"})[1] == {"room": ["Like B-204, please."]}
