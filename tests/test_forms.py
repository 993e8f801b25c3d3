from __future__ import annotations

import datetime
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
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import Form, fields, validators, widgets

from flask_statemgr.forms import bind_form, form_schema, validate_form_data

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


def is_valid(form_class: type[Form], instance: dict[str, t.Any]) -> bool:
    return jsonschema.Draft202012Validator(form_schema(form_class)).is_valid(instance)


# -- field types


def test_string_field() -> None:
    assert prop(fields.StringField("Name")) == {
        "type": "string",
        "title": "Name",
        "x-widget": "text",
    }


def test_textarea_field() -> None:
    assert prop(fields.TextAreaField("Body")) == {
        "type": "string",
        "title": "Body",
        "x-widget": "textarea",
    }


def test_widget_follows_the_field_widget() -> None:
    assert prop(fields.StringField(widget=widgets.TextArea()))["x-widget"] == "textarea"


def test_password_field() -> None:
    assert prop(fields.PasswordField("Secret")) == {
        "type": "string",
        "format": "password",
        "writeOnly": True,
        "title": "Secret",
        "x-widget": "password",
    }


def test_email_field() -> None:
    assert prop(fields.EmailField("Mail")) == {
        "type": "string",
        "format": "email",
        "title": "Mail",
        "x-widget": "email",
    }


def test_url_field() -> None:
    assert prop(fields.URLField("Site")) == {
        "type": "string",
        "format": "uri",
        "title": "Site",
        "x-widget": "url",
    }


def test_hidden_field() -> None:
    assert prop(fields.HiddenField("Token")) == {
        "type": "string",
        "title": "Token",
        "x-widget": "hidden",
    }


def test_integer_field() -> None:
    assert prop(fields.IntegerField("Count")) == {
        "type": "integer",
        "title": "Count",
        "x-widget": "number",
    }


@pytest.mark.parametrize("field_class", [fields.DecimalField, fields.FloatField])
def test_decimal_and_float_fields(field_class: t.Any) -> None:
    assert prop(field_class("Price")) == {
        "type": "number",
        "title": "Price",
        "x-widget": "number",
    }


def test_range_fields() -> None:
    rng = validators.NumberRange(min=1, max=5)
    assert prop(fields.IntegerRangeField("Level", [rng])) == {
        "type": "integer",
        "minimum": 1,
        "maximum": 5,
        "title": "Level",
        "x-widget": "range",
    }
    rng = validators.NumberRange(min=Decimal("0.5"), max=Decimal(2))
    assert prop(fields.DecimalRangeField("Ratio", [rng])) == {
        "type": "number",
        "minimum": 0.5,
        "maximum": 2,
        "title": "Ratio",
        "x-widget": "range",
    }


def test_boolean_field_is_not_required() -> None:
    form_class = type("F", (Form,), {"ok": fields.BooleanField("OK")})
    schema = form_schema(form_class)
    assert schema["properties"]["ok"] == {
        "type": "boolean",
        "title": "OK",
        "x-widget": "checkbox",
    }
    assert schema["required"] == []


def test_required_boolean_must_be_true() -> None:
    assert prop(fields.BooleanField("Agree", [validators.DataRequired()])) == {
        "type": "boolean",
        "const": True,
        "title": "Agree",
        "x-widget": "checkbox",
    }


def test_date_field() -> None:
    assert prop(fields.DateField("Due")) == {
        "type": "string",
        "format": "date",
        "title": "Due",
        "x-widget": "date",
        "x-format": ["%Y-%m-%d"],
    }


def test_datetime_local_field() -> None:
    assert prop(fields.DateTimeLocalField("At")) == {
        "type": "string",
        "format": "date-time",
        "title": "At",
        "x-widget": "datetime-local",
        "x-format": [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M",
        ],
    }


def test_datetime_field() -> None:
    assert prop(fields.DateTimeField("At")) == {
        "type": "string",
        "format": "date-time",
        "title": "At",
        "x-widget": "datetime",
        "x-format": ["%Y-%m-%d %H:%M:%S"],
    }


def test_time_field() -> None:
    assert prop(fields.TimeField("When")) == {
        "type": "string",
        "format": "time",
        "title": "When",
        "x-widget": "time",
        "x-format": ["%H:%M"],
    }


def test_month_field_has_no_standard_format() -> None:
    assert prop(fields.MonthField("Month")) == {
        "type": "string",
        "title": "Month",
        "x-widget": "month",
        "x-format": ["%Y-%m"],
    }


def test_select_field() -> None:
    field = fields.SelectField("Kind", choices=[("a", "Alpha"), ("b", "Beta")])
    assert prop(field) == {
        "type": "string",
        "enum": ["a", "b"],
        "x-enumTitles": ["Alpha", "Beta"],
        "title": "Kind",
        "x-widget": "select",
    }


def test_select_field_plain_values_and_groups() -> None:
    field = fields.SelectField(choices={"Vowels": [("a", "A")], "Others": [("b", "B")]})
    assert prop(field)["enum"] == ["a", "b"]
    assert prop(field)["x-enumTitles"] == ["A", "B"]
    field = fields.SelectField(choices=["x", "y"])
    assert prop(field)["enum"] == ["x", "y"]
    assert prop(field)["x-enumTitles"] == ["x", "y"]


def test_select_field_coerced_values() -> None:
    field = fields.SelectField(choices=[("1", "One"), ("2", "Two")], coerce=int)
    schema = prop(field)
    assert schema["type"] == "integer"
    assert schema["enum"] == [1, 2]


def test_select_field_mixed_values_have_no_type() -> None:
    field = fields.SelectField(
        choices=[("", "Pick one"), ("1", "One")], coerce=lambda v: int(v) if v else None
    )
    schema = prop(field)
    assert "type" not in schema
    assert schema["enum"] == ["", 1]


def test_radio_field() -> None:
    field = fields.RadioField("Size", choices=[("s", "Small"), ("l", "Large")])
    assert prop(field) == {
        "type": "string",
        "enum": ["s", "l"],
        "x-enumTitles": ["Small", "Large"],
        "title": "Size",
        "x-widget": "radio",
    }


def test_select_multiple_field() -> None:
    field = fields.SelectMultipleField("Tags", choices=[("x", "X"), ("y", "Y")])
    assert prop(field) == {
        "type": "array",
        "items": {"type": "string", "enum": ["x", "y"], "x-enumTitles": ["X", "Y"]},
        "uniqueItems": True,
        "title": "Tags",
        "x-widget": "select",
    }


def test_checkbox_list() -> None:
    field = fields.SelectMultipleField(
        choices=[("x", "X")],
        widget=widgets.ListWidget(),
        option_widget=widgets.CheckboxInput(),
    )
    assert prop(field)["x-widget"] == "checkbox"


def test_run_time_choices_have_no_enum() -> None:
    def load() -> list[tuple[str, str]]:
        raise AssertionError("choices must not be loaded for the schema")

    assert prop(fields.SelectField("Kind", choices=load)) == {
        "type": "string",
        "title": "Kind",
        "x-widget": "select",
    }
    assert prop(fields.SelectField(coerce=int)) == {
        "type": "integer",
        "title": "F",
        "x-widget": "select",
    }


def test_unvalidated_choices_have_no_enum() -> None:
    field = fields.SelectField(choices=[("a", "A")], validate_choice=False)
    assert "enum" not in prop(field)


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

    class F(Form):
        address = fields.FormField(Address, "Address")
        note = fields.FormField(type("Note", (Form,), {"text": fields.StringField()}))

    schema = form_schema(F)
    assert schema["properties"]["address"] == {
        "type": "object",
        "properties": {
            "city": {
                "type": "string",
                "minLength": 1,
                "title": "City",
                "x-widget": "text",
            },
            "zip": {"type": "string", "title": "ZIP", "x-widget": "text"},
        },
        "required": ["city"],
        "title": "Address",
    }
    # An object with a required field is required; one without is not.
    assert schema["required"] == ["address"]


def test_field_list() -> None:
    field = fields.FieldList(
        fields.IntegerField(validators=[validators.NumberRange(min=0)]),
        "Scores",
        max_entries=3,
    )
    assert prop(field) == {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "x-widget": "number"},
        "maxItems": 3,
        "title": "Scores",
    }


def test_field_list_of_forms() -> None:
    class Item(Form):
        name = fields.StringField("Name")

    schema = prop(fields.FieldList(fields.FormField(Item)))
    assert schema["items"] == {
        "type": "object",
        "properties": {"name": {"type": "string", "title": "Name", "x-widget": "text"}},
        "required": [],
    }


# -- required


@pytest.mark.parametrize(
    ("chain", "required"),
    [
        ([validators.DataRequired()], True),
        ([validators.InputRequired()], True),
        ([validators.Optional()], False),
        ([validators.Optional(), validators.DataRequired()], False),
        ([validators.DataRequired(), validators.Optional()], True),
        ([validators.Length(max=3)], False),
        ([], False),
    ],
)
def test_required(chain: list[t.Any], required: bool) -> None:
    class F(Form):
        name = fields.StringField(validators=chain)

    assert form_schema(F)["required"] == (["name"] if required else [])


def test_required_string_needs_a_character() -> None:
    assert (
        prop(fields.StringField(validators=[validators.InputRequired()]))["minLength"]
        == 1
    )
    chain = [validators.DataRequired(), validators.Length(min=3)]
    assert prop(fields.StringField(validators=chain))["minLength"] == 3


# -- validators


def test_length() -> None:
    schema = prop(fields.StringField(validators=[validators.Length(min=2, max=5)]))
    assert (schema["minLength"], schema["maxLength"]) == (2, 5)
    schema = prop(fields.StringField(validators=[validators.Length(max=5)]))
    assert "minLength" not in schema
    assert schema["maxLength"] == 5


def test_length_of_a_list() -> None:
    field = fields.SelectMultipleField(
        choices=["a", "b", "c"], validators=[validators.Length(1, 2)]
    )
    schema = prop(field)
    assert (schema["minItems"], schema["maxItems"]) == (1, 2)


def test_number_range() -> None:
    schema = prop(fields.IntegerField(validators=[validators.NumberRange(min=-3)]))
    assert schema["minimum"] == -3
    assert "maximum" not in schema
    schema = prop(fields.FloatField(validators=[validators.NumberRange(max=1.5)]))
    assert schema["maximum"] == 1.5


def test_number_range_with_a_dynamic_bound() -> None:
    rng = validators.NumberRange(min=0, max=lambda: 10)
    schema = prop(fields.IntegerField(validators=[rng]))
    assert schema["minimum"] == 0
    assert "maximum" not in schema


@pytest.mark.parametrize(
    ("regexp", "pattern"),
    [
        (validators.Regexp(r"^[a-z]+$"), r"^[a-z]+$"),
        # re.match anchors at the start only; a JSON Schema pattern doesn't.
        (validators.Regexp(r"[a-z]+"), r"^(?:[a-z]+)"),
        (validators.Regexp(r"^a|b"), r"^(?:^a|b)"),
        (validators.Regexp(r"\A(?P<year>\d{4})\Z"), r"^(\d{4})$"),
        (validators.Regexp(r"a\\Ab"), r"^(?:a\\Ab)"),
        (validators.Regexp(r"(?<!x)y(?=z)"), r"^(?:(?<!x)y(?=z))"),
        (validators.Regexp(r"[a-z]+", matcher=re.search), r"[a-z]+"),
        (validators.Regexp(r"[a-z]+", matcher=re.fullmatch), r"^(?:[a-z]+)$"),
        (validators.MacAddress(), r"^(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"),
    ],
)
def test_regexp(regexp: t.Any, pattern: str) -> None:
    assert prop(fields.StringField(validators=[regexp]))["pattern"] == pattern


@pytest.mark.parametrize(
    "regexp",
    [
        validators.Regexp(r"^[a-z]+$", re.IGNORECASE),
        validators.Regexp(r"(?i)^[a-z]+$"),
        validators.Regexp(r"^(?P<a>x)(?P=a)$"),
        validators.Regexp(r"^x(?#comment)$"),
        validators.Regexp(r"x", matcher=lambda regex, value: regex.match(value)),
    ],
)
def test_regexp_without_a_json_schema_form(regexp: t.Any) -> None:
    assert "pattern" not in prop(fields.StringField(validators=[regexp]))


def test_several_patterns() -> None:
    chain = [validators.Regexp(r"^a"), validators.Regexp(r"^.b")]
    assert prop(fields.StringField(validators=chain))["allOf"] == [
        {"pattern": "^a"},
        {"pattern": "^.b"},
    ]


@pytest.mark.parametrize(
    ("validator", "format"),
    [
        (validators.Email(), "email"),
        (validators.URL(), "uri"),
        (validators.UUID(), "uuid"),
        (validators.IPAddress(), "ipv4"),
        (validators.IPAddress(ipv4=False, ipv6=True), "ipv6"),
    ],
)
def test_format_validators(validator: t.Any, format: str) -> None:
    assert prop(fields.StringField(validators=[validator]))["format"] == format


def test_ip_address_of_either_version_has_no_format() -> None:
    field = fields.StringField(validators=[validators.IPAddress(ipv4=True, ipv6=True)])
    assert "format" not in prop(field)


def test_any_of_and_none_of() -> None:
    schema = prop(fields.StringField(validators=[validators.AnyOf(["x", "y"])]))
    assert schema["enum"] == ["x", "y"]
    schema = prop(fields.IntegerField(validators=[validators.NoneOf([13])]))
    assert schema["not"] == {"enum": [13]}


def test_any_of_a_string_is_not_an_enum() -> None:
    schema = prop(fields.StringField(validators=[validators.AnyOf("abc")]))
    assert "enum" not in schema


def test_equal_to() -> None:
    field = fields.PasswordField(validators=[validators.EqualTo("password")])
    assert prop(field)["x-equalTo"] == "password"


@pytest.mark.parametrize("validator", [validators.ReadOnly(), validators.Disabled()])
def test_read_only(validator: t.Any) -> None:
    assert prop(fields.StringField(validators=[validator]))["readOnly"] is True


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
            "2024-05-01 14:30:00",
        ),
        (fields.TimeField(default=datetime.time(9, 5)), "09:05"),
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
    title = fields.StringField(
        "Title", [validators.DataRequired(), validators.Length(max=5)]
    )
    count = fields.IntegerField(
        "Count", [validators.Optional(), validators.NumberRange(min=0, max=10)]
    )
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
    many = fields.SelectMultipleField(
        choices=[("a", "A")], validators=[validators.Length(max=1)]
    )
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
def test_data_the_form_refuses_is_invalid(
    instance: dict[str, t.Any], field: str
) -> None:
    assert list(validate_form_data(Publish, instance)[1]) == [field]
    assert not is_valid(Publish, instance)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "title": st.text(string.ascii_letters, max_size=7),
            "count": st.integers(-3, 13)
            | st.floats(-3, 13).map(lambda x: round(x * 2) / 2),
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
            "deliver_at": "2024-05-01T14:30",
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
        "deliver_at": datetime.datetime(2024, 5, 1, 14, 30),
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
            "size": "1",
            "extras": "b",
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


def test_false_and_none_are_not_sent() -> None:
    data, errors = validate_form_data(
        Order, {"name": "Ann", "quantity": 1, "size": 1, "gift": False, "price": None}
    )
    assert errors == {}
    assert data["gift"] is False
    assert data["price"] is None


def test_errors() -> None:
    data, errors = validate_form_data(
        Order, {"quantity": "many", "size": 3, "extras": ["c"]}
    )
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
        data, errors = validate_form_data(
            Publish, {"title": "Hi", "kind": "a", "agree": True}
        )
        assert errors == {}
        assert data["title"] == "Hi"
        # CSRF is on for the app, but not for data validated here.
        assert "csrf_token" not in data
        _, errors = validate_form_data(Publish, None)
        assert set(errors) == {"title", "kind", "agree"}


def test_flask_form_in_an_app_context(app: Flask) -> None:
    with app.app_context():
        assert (
            validate_form_data(Publish, {"title": "Hi", "kind": "a", "agree": True})[1]
            == {}
        )


def test_flask_form_without_a_context() -> None:
    assert (
        validate_form_data(Publish, {"title": "Hi", "kind": "a", "agree": True})[1]
        == {}
    )
    assert validate_form_data(Publish, {"kind": "b", "agree": True})[1] == {
        "title": ["This field is required."]
    }


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
    with app.test_request_context(
        method="POST", data={"title": "Hi", "kind": "a", "agree": "y"}
    ):
        form = bind_form(Publish)
        assert not form.validate()
        assert "csrf_token" in form.errors


def test_bind_form_with_given_data() -> None:
    class F(Form):
        count = fields.IntegerField()

    assert bind_form(F, {"count": 3}).count.data == 3
    assert bind_form(F, MultiDict([("count", "4")])).count.data == 4
    assert bind_form(F, data={"count": 5}).count.data == 5
