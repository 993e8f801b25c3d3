"""The JSON shapes of date and time fields: fixed strings, whatever the
field's :func:`~time.strftime` formats (see :mod:`flask_statemgr.forms.schema`)."""

from __future__ import annotations

import dataclasses
import re
import typing as t
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

from wtforms.fields import DateField, MonthField, TimeField, WeekField

from .patterns import END


@dataclasses.dataclass(frozen=True)
class Temporal:
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
        int(text[0:4]),
        int(text[5:7]),
        int(text[8:10]),
        int(text[11:13]),
        int(text[14:16]),
        int(text[17:19]),
        micro,
        tzinfo=zone,
    )


def _render_date_time(value: datetime) -> str:
    text = value.isoformat(timespec="seconds")
    # A naive datetime is taken as UTC, as a naive value given is.
    return text + "Z" if value.tzinfo is None else text.replace("+00:00", "Z")


_DATE_TIME = Temporal(
    "date-time",
    f"^{_YEAR}-{_DAY}T{_CLOCK}:[0-5][0-9](?:\\.[0-9]+)?(?:Z|[+-]{_CLOCK}){END}",
    _parse_date_time,
    _render_date_time,
)
_DATE = Temporal(
    "date",
    f"^{_YEAR}-{_DAY}{END}",
    lambda m: date.fromisoformat(m.group(0)),
    date.isoformat,
)
_TIME = Temporal(
    None,
    f"^{_CLOCK}(?::[0-5][0-9])?{END}",
    lambda m: time.fromisoformat(m.group(0)),
    lambda value: value.strftime("%H:%M:%S" if value.second else "%H:%M"),
)
_MONTH = Temporal(
    None,
    f"^{_YEAR}-(?:0[1-9]|1[0-2]){END}",
    lambda m: date.fromisoformat(m.group(0) + "-01"),
    lambda value: value.strftime("%Y-%m"),
)
_WEEK = Temporal(
    None,
    f"^{_YEAR}-W(?:[0-4][0-9]|5[0-3]){END}",
    # WTForms reads its %W week this way, Monday first.
    lambda m: datetime.strptime(m.group(0) + "-1", "%Y-W%W-%w").date(),
    lambda value: value.strftime("%Y-W%W"),
)


def temporal(field: t.Any) -> Temporal:
    """The shape of a date or time field's JSON value."""
    if isinstance(field, MonthField):
        return _MONTH

    if isinstance(field, WeekField):
        return _WEEK

    if isinstance(field, DateField):
        return _DATE

    if isinstance(field, TimeField):
        return _TIME

    return _DATE_TIME
