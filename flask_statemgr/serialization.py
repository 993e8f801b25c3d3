"""Canonical msgpack serialization for transition payloads.

:func:`pack` turns a value into bytes and :func:`unpack` turns them back.
Besides msgpack's own types (``None``, ``bool``, ``int``, ``float``,
``str``, ``bytes``, ``list``, ``dict``) these round-trip with their exact
type and value through msgpack extension types: naive and aware
:class:`~datetime.datetime`, :class:`~datetime.date`,
:class:`~datetime.time`, :class:`~decimal.Decimal`, :class:`~uuid.UUID`,
``set``, ``frozenset``, ``tuple``, and integers outside 64 bits.

The bytes are canonical, so equal values pack to equal bytes and the store
can deduplicate by content hash: map keys are sorted (recursively) and set
members are sorted by their packed bytes. "Equal" means equal type and
representation, which is stricter than ``==`` in a few places, and those
values pack apart on purpose because they unpack apart:

-   ``1``, ``1.0`` and ``True`` (msgpack has distinct int, float and bool);
-   ``Decimal("1.0")`` and ``Decimal("1.00")``;
-   aware datetimes for the same instant at different UTC offsets.

An aware datetime or time keeps its UTC offset, not its ``tzinfo`` object:
a :class:`zoneinfo.ZoneInfo` comes back as the fixed
:class:`~datetime.timezone` that was in effect (``timezone.utc`` for offset
zero). Map keys must be ``str`` or ``bytes``: that is what msgpack's
``strict_map_key`` accepts, which keeps unpacking safe from keys with cheap
hash collisions (such as ints).

:func:`unpack` treats its input as untrusted: sizes are bounded by the input
length, nesting by :data:`MAX_DEPTH`, and anything malformed raises
:class:`~flask_statemgr.exceptions.CorruptBlobError`.
"""

from __future__ import annotations

import collections.abc as cabc
import datetime as dt
import json
import reprlib
import struct
import typing as t
import uuid
from decimal import Decimal

import msgpack

from .exceptions import CorruptBlobError, SerializationError

#: How deeply containers may nest, counting the outermost one as 1. Far
#: deeper than any form, and shallow enough that recursive consumers of a
#: resolved value (``copy.deepcopy``, ``json.dumps``) stay well inside
#: Python's recursion limit.
MAX_DEPTH = 64

# Extension type codes. They are part of the stored format: never reuse one.
_EXT_DATETIME = 1
_EXT_DATETIME_TZ = 2
_EXT_DATE = 3
_EXT_TIME = 4
_EXT_TIME_TZ = 5
_EXT_DECIMAL = 6
_EXT_UUID = 7
_EXT_SET = 8
_EXT_FROZENSET = 9
_EXT_TUPLE = 10
_EXT_BIGINT = 11

# year, month, day, hour, minute, second, microsecond, fold
_DATETIME = struct.Struct(">HBBBBBIB")
# the same followed by the UTC offset in microseconds
_DATETIME_TZ = struct.Struct(">HBBBBBIBq")
_DATE = struct.Struct(">HBB")
# hour, minute, second, microsecond, fold
_TIME = struct.Struct(">BBBIB")
_TIME_TZ = struct.Struct(">BBBIBq")

_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1

# Immutable types msgpack packs natively; str and int need a check first.
_NATIVE = frozenset({bytes, float, bool, type(None)})


class _Unserializable(Exception):
    """Raised deep in :func:`_canon` and given its path on the way up, so a
    successful pack pays nothing for building paths."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.segments: list[str] = []


def pack(value: t.Any, *, name: str = "value") -> bytes:
    """Serialize ``value`` to canonical msgpack bytes.

    :param value: the value, made of the supported types.
    :param name: how error messages name the value, such as
        ``payload["files"]``.
    :raise SerializationError: a part of the value has an unsupported type,
        a map key is not ``str`` or ``bytes``, a string is not valid
        Unicode, or the value nests deeper than :data:`MAX_DEPTH`. The
        message names the path to the part, such as
        ``payload["attachments"][2]``.
    """
    try:
        canonical = _canon(value, 1)
    except _Unserializable as e:
        path = name + "".join(reversed(e.segments))
        raise SerializationError(f"Cannot serialize {path}: {e.problem}") from None
    return msgpack.packb(canonical, use_bin_type=True)  # type: ignore[no-any-return]


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return repr(cls.__qualname__)
    return f"'{cls.__module__}.{cls.__qualname__}'"


def _key_segment(key: str | bytes) -> str:
    if isinstance(key, str):
        return f"[{json.dumps(key, ensure_ascii=False)}]"
    return f"[{key!r}]"


def _is_unicode(value: str) -> bool:
    # Only non-ASCII text can hold a lone surrogate (from JSON's "\ud800" or
    # surrogateescape), which msgpack could not encode as UTF-8.
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _canon(value: t.Any, depth: int) -> t.Any:
    """Return what msgpack should pack for ``value``: the same value with
    maps sorted and extension types encoded."""
    cls = type(value)
    if cls in _NATIVE:
        return value
    if cls is str:
        if not _is_unicode(value):
            raise _Unserializable("the string is not valid Unicode")
        return value
    if cls is int:
        if _INT64_MIN <= value <= _UINT64_MAX:
            return value
        size = (value.bit_length() + 8) // 8
        return msgpack.ExtType(_EXT_BIGINT, value.to_bytes(size, "big", signed=True))
    if cls in _CONTAINERS:
        return _canon_container(value, depth)
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        raise _Unserializable(f"unsupported type {_type_name(value)}")
    return encoder(value)


def _canon_container(value: t.Any, depth: int) -> t.Any:
    """:func:`_canon` of a dict, list, tuple, set or frozenset at ``depth``."""
    if depth > MAX_DEPTH:
        raise _Unserializable(f"nested deeper than {MAX_DEPTH} levels")
    cls = type(value)
    if cls is dict:
        return _canon_dict(value, depth)
    if cls is list:
        return _canon_items(value, depth)
    if cls is tuple:
        items = msgpack.packb(_canon_items(value, depth), use_bin_type=True)
        return msgpack.ExtType(_EXT_TUPLE, items)
    code = _EXT_SET if cls is set else _EXT_FROZENSET
    return msgpack.ExtType(code, _pack_set(value, depth))


def _canon_dict(value: dict[t.Any, t.Any], depth: int) -> dict[t.Any, t.Any]:
    for key in value:
        if type(key) is str:
            if not _is_unicode(key):
                raise _Unserializable(f"the key {reprlib.repr(key)} is not valid Unicode")
        elif type(key) is not bytes:
            raise _Unserializable(
                f"the key {reprlib.repr(key)} has the unsupported type {_type_name(key)} (keys must be str or bytes)"
            )
    try:
        keys = sorted(value)
    except TypeError:
        # A mix of str and bytes keys: str first, each kind in its own order.
        keys = sorted(value, key=lambda k: (type(k) is bytes, k))
    out = {}
    for key in keys:
        try:
            out[key] = _canon(value[key], depth + 1)
        except _Unserializable as e:
            e.segments.append(_key_segment(key))
            raise
    return out


def _canon_items(value: cabc.Iterable[t.Any], depth: int) -> list[t.Any]:
    out = []
    for index, item in enumerate(value):
        try:
            out.append(_canon(item, depth + 1))
        except _Unserializable as e:
            e.segments.append(f"[{index}]")
            raise
    return out


def _pack_set(value: cabc.Set[t.Any], depth: int) -> bytes:
    members = []
    for item in value:
        try:
            members.append(msgpack.packb(_canon(item, depth + 1), use_bin_type=True))
        except _Unserializable as e:
            e.segments.append("[<set member>]")
            raise
    # Iteration order depends on hashes (and on PYTHONHASHSEED for str), so
    # order the members by something that only depends on their content.
    members.sort()
    packer = msgpack.Packer()
    return packer.pack_array_header(len(members)) + b"".join(members)  # type: ignore[no-any-return]


def _utcoffset_us(value: dt.datetime | dt.time) -> int | None:
    if value.tzinfo is None:
        return None
    offset = value.utcoffset()
    if offset is None:
        raise _Unserializable(f"{type(value).__name__} has a tzinfo without a fixed UTC offset")
    return offset // dt.timedelta(microseconds=1)


def _encode_datetime(value: dt.datetime) -> msgpack.ExtType:
    fields = (
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        value.fold,
    )
    offset = _utcoffset_us(value)
    if offset is None:
        return msgpack.ExtType(_EXT_DATETIME, _DATETIME.pack(*fields))
    return msgpack.ExtType(_EXT_DATETIME_TZ, _DATETIME_TZ.pack(*fields, offset))


def _encode_date(value: dt.date) -> msgpack.ExtType:
    return msgpack.ExtType(_EXT_DATE, _DATE.pack(value.year, value.month, value.day))


def _encode_time(value: dt.time) -> msgpack.ExtType:
    fields = (value.hour, value.minute, value.second, value.microsecond, value.fold)
    offset = _utcoffset_us(value)
    if offset is None:
        return msgpack.ExtType(_EXT_TIME, _TIME.pack(*fields))
    return msgpack.ExtType(_EXT_TIME_TZ, _TIME_TZ.pack(*fields, offset))


def _encode_decimal(value: Decimal) -> msgpack.ExtType:
    # str() is exact: it keeps the exponent, the sign of zero and NaN payloads.
    return msgpack.ExtType(_EXT_DECIMAL, str(value).encode("ascii"))


def _encode_uuid(value: uuid.UUID) -> msgpack.ExtType:
    return msgpack.ExtType(_EXT_UUID, value.bytes)


_CONTAINERS = frozenset({dict, list, tuple, set, frozenset})
_ENCODERS: dict[type, t.Callable[[t.Any], msgpack.ExtType]] = {
    dt.datetime: _encode_datetime,
    dt.date: _encode_date,
    dt.time: _encode_time,
    Decimal: _encode_decimal,
    uuid.UUID: _encode_uuid,
}


def unpack(data: bytes, *, check_depth: bool = True) -> t.Any:
    """Deserialize bytes made by :func:`pack`.

    The input is treated as untrusted: no string, array, map or extension
    may claim more than the input holds (so a short header cannot make
    msgpack allocate gigabytes), and containers may not nest deeper than
    :data:`MAX_DEPTH`.

    :param data: the bytes.
    :param check_depth: pass ``False`` only for bytes that were unpacked
        with the check before; it costs about as much as unpacking when
        the value holds many small containers.
    :raise CorruptBlobError: the bytes are not a valid serialized value.
    """
    try:
        value = _unpackb(data, 1)
        if check_depth:
            _check_depth(value)
    except CorruptBlobError:
        raise
    except (ValueError, TypeError, ArithmeticError, struct.error) as e:
        # ValueError covers msgpack's FormatError, StackError, ExtraData and
        # its limits, bad UTF-8, and impossible dates.
        raise CorruptBlobError(f"Cannot deserialize {len(data)} bytes: {e}") from e
    return value


def _unpackb(data: bytes, depth: int) -> t.Any:
    # unpackb holds the whole input already, so the input's own length is the
    # buffer limit (what max_buffer_size bounds for a streaming Unpacker) and
    # every other limit derives from it.
    size = len(data)
    return msgpack.unpackb(
        data,
        ext_hook=_EXT_HOOKS[depth],
        raw=False,
        strict_map_key=True,
        # The timestamp extension bypasses ext_hook; pack never writes it, so
        # any seen here comes from crafted input: decode it as an aware
        # datetime rather than let msgpack's own Timestamp type through.
        timestamp=3,
        max_str_len=size,
        max_bin_len=size,
        max_array_len=size,
        max_map_len=size // 2,
        max_ext_len=size,
    )


def _check_depth(value: t.Any) -> None:
    # msgpack's own limit is 1024 levels per unpackb call, and set and tuple
    # extensions nest unpackb calls, so measure the real depth: breadth
    # first, one level of containers at a time, without recursion.
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise CorruptBlobError(f"Containers nest deeper than {MAX_DEPTH} levels")
        level = [
            child
            for item in level
            for child in (item.values() if type(item) is dict else item)
            if type(child) in _CONTAINERS
        ]


def _decode_datetime(data: bytes) -> dt.datetime:
    *fields, fold = _DATETIME.unpack(data)
    return dt.datetime(*fields, fold=fold)


def _decode_datetime_tz(data: bytes) -> dt.datetime:
    year, month, day, hour, minute, second, us, fold, offset = _DATETIME_TZ.unpack(data)
    return dt.datetime(year, month, day, hour, minute, second, us, _timezone(offset), fold=fold)


def _decode_date(data: bytes) -> dt.date:
    return dt.date(*_DATE.unpack(data))


def _decode_time(data: bytes) -> dt.time:
    *fields, fold = _TIME.unpack(data)
    return dt.time(*fields, fold=fold)


def _decode_time_tz(data: bytes) -> dt.time:
    hour, minute, second, us, fold, offset = _TIME_TZ.unpack(data)
    return dt.time(hour, minute, second, us, _timezone(offset), fold=fold)


def _timezone(offset_us: int) -> dt.timezone:
    # timezone() returns the timezone.utc singleton for a zero offset.
    return dt.timezone(dt.timedelta(microseconds=offset_us))


def _decode_decimal(data: bytes) -> Decimal:
    return Decimal(data.decode("ascii"))


def _decode_uuid(data: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=data)


def _decode_bigint(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


_DECODERS: dict[int, t.Callable[[bytes], t.Any]] = {
    _EXT_DATETIME: _decode_datetime,
    _EXT_DATETIME_TZ: _decode_datetime_tz,
    _EXT_DATE: _decode_date,
    _EXT_TIME: _decode_time,
    _EXT_TIME_TZ: _decode_time_tz,
    _EXT_DECIMAL: _decode_decimal,
    _EXT_UUID: _decode_uuid,
    _EXT_BIGINT: _decode_bigint,
}


def _make_ext_hook(depth: int) -> t.Callable[[int, bytes], t.Any]:
    """The ext hook for an unpackb call whose outermost value sits at
    ``depth``; containers inside it unpack with the hook one level down."""

    def ext_hook(code: int, data: bytes) -> t.Any:
        if code in (_EXT_SET, _EXT_FROZENSET, _EXT_TUPLE):
            # Bounding these nested unpackb calls bounds the recursion
            # before _check_depth sees the whole value.
            if depth > MAX_DEPTH:
                raise CorruptBlobError(f"Containers nest deeper than {MAX_DEPTH} levels")
            items = _unpackb(data, depth + 1)
            if type(items) is not list:
                raise CorruptBlobError(f"Extension {code} does not hold an array")
            if code == _EXT_TUPLE:
                return tuple(items)
            return set(items) if code == _EXT_SET else frozenset(items)
        decoder = _DECODERS.get(code)
        if decoder is None:
            raise CorruptBlobError(f"Unknown extension type {code}")
        return decoder(data)

    return ext_hook


# Index n is the hook for depth n; the last one refuses any container.
_EXT_HOOKS = [_make_ext_hook(depth) for depth in range(MAX_DEPTH + 2)]
