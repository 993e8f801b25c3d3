"""Text no database can be trusted to store: PostgreSQL refuses a NUL
character in any text value, and no database driver (nor msgpack) encodes a
lone surrogate. Submitted data holding either is refused as a field error
before anything is written, on every database, so an app behaves on
PostgreSQL as it did on SQLite."""

from __future__ import annotations

import re
import typing as t
from collections import abc

from .i18n import N_, gettext

_SURROGATE = re.compile("[\ud800-\udfff]")

NUL_MESSAGE = N_("Holds a NUL character, which cannot be stored.")
SURROGATE_MESSAGE = N_("Holds a lone surrogate, which is not valid Unicode and cannot be stored.")


def _problem(text: str) -> str | None:
    if "\x00" in text:
        return gettext(NUL_MESSAGE)
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return gettext(SURROGATE_MESSAGE)
    return None


def unstorable_text(data: t.Mapping[str, t.Any]) -> dict[str, list[str]]:
    """Error messages by field path (``note``, ``address.city``, ``tags.0``,
    as the form errors name them) for every string in ``data``, keys
    included, that cannot be stored."""
    if not data:
        return {}
    errors: dict[str, list[str]] = {}
    # a stack, not recursion: a formless JSON body may nest as deep as the
    # JSON parser allows
    stack: list[tuple[str, t.Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            message = _problem(value)
            if message is not None and message not in errors.get(path, ()):
                errors.setdefault(path, []).append(message)
        # collections.abc, not typing: typing's aliases check more slowly
        elif isinstance(value, abc.Mapping):
            for key, item in value.items():
                inner = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    stack.append((inner, key))
                stack.append((inner, item))
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend((f"{path}.{index}" if path else str(index), item) for index, item in enumerate(value))
    return dict(sorted(errors.items()))


def storable(form: t.Any, field: t.Any) -> None:
    """A WTForms validator refusing text that cannot be stored, for an app's
    own forms (a transition's form is checked already)::

        title = StringField("Title", validators=[DataRequired(), storable])
    """
    from wtforms.validators import StopValidation

    problems = unstorable_text({"": field.data})
    if problems:
        # the first of one field's messages; it stops the other validators,
        # which could choke on the text themselves
        raise StopValidation(problems[""][0])
