"""WTForms forms as JSON Schema, and validating plain data with a form:
:mod:`~flask_statemgr.forms.schema` gives a form's schema and hints,
:mod:`~flask_statemgr.forms.data` checks and binds data with a form.

No maintained library converts WTForms forms to JSON Schema, so this package
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

from .data import bind_form, validate_form_data
from .schema import form_schema, form_ui

__all__ = ["bind_form", "form_schema", "form_ui", "validate_form_data"]
