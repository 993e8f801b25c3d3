from __future__ import annotations

import datetime as dt
import math
import os
import struct
import subprocess
import sys
import time
import typing as t
import uuid
import zoneinfo
from decimal import Decimal

import msgpack
import pytest
from bombs import BOMBS, crafted_tuple_chain, raw_ext
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_statemgr.exceptions import CorruptBlobError, SerializationError
from flask_statemgr.serialization import MAX_DEPTH, pack, unpack


def assert_same(a: t.Any, b: t.Any) -> None:
    """Equal with the same types all the way down."""
    assert type(a) is type(b), (a, b)
    if type(a) in (list, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif type(a) is dict:
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif type(a) is float and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def round_trip(value: t.Any) -> t.Any:
    packed = pack(value)
    result = unpack(packed)
    assert_same(value, result)
    # Canonical and exact: what came back packs to the very same bytes, which
    # also pins what == cannot see (Decimal exponents, UTC offsets, -0.0,
    # the types of set members).
    assert pack(result) == packed
    return result


PARIS = zoneinfo.ZoneInfo("Europe/Paris")
PLUS_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        2**64,
        -(2**63) - 1,
        10**40,
        -(10**40),
        0.0,
        -0.0,
        1.5,
        math.inf,
        "",
        "héllo ✓",
        b"",
        b"\x00\xff",
        [],
        [1, [2, [3]]],
        (),
        (1, "a", (2.0,)),
        {},
        {"a": 1, b"k": 2},
        set(),
        {1, "a", (1, 2), frozenset({3})},
        frozenset(),
        frozenset({b"x", None}),
        dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=PLUS_0530),
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(2024, 10, 27, 2, 30, fold=1),
        dt.date(2024, 2, 29),
        dt.time(0, 0),
        dt.time(23, 59, 59, 999999, fold=1),
        dt.time(12, 30, tzinfo=PLUS_0530),
        Decimal("12.50"),
        Decimal("-0.000"),
        Decimal("1E+400"),
        Decimal("Infinity"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ],
    ids=repr,
)
def test_round_trip(value: t.Any) -> None:
    round_trip(value)


def test_nan_round_trips() -> None:
    assert math.isnan(unpack(pack(math.nan)))
    assert unpack(pack(Decimal("NaN"))).is_nan()
    assert unpack(pack(Decimal("-sNaN"))).is_snan()


def test_aware_datetime_keeps_its_offset() -> None:
    value = dt.datetime(2024, 7, 1, 12, 0, tzinfo=PARIS)
    result = unpack(pack(value))
    assert result == value
    assert result.utcoffset() == dt.timedelta(hours=2)
    assert result.replace(tzinfo=None) == value.replace(tzinfo=None)
    assert unpack(pack(dt.datetime.now(dt.UTC))).tzinfo is dt.UTC


def test_tuple_and_set_types_survive_nesting() -> None:
    value = {"t": (1, [2, (3,)]), "s": [{1, 2}, frozenset({"a"})]}
    result = round_trip(value)
    assert type(result["t"][1][1]) is tuple
    assert type(result["s"][0]) is set


def test_map_keys_are_sorted_recursively() -> None:
    one = {"b": 1, "a": {"y": 2, "x": [{"d": 1, "c": 2}]}}
    two = {"a": {"x": [{"c": 2, "d": 1}], "y": 2}, "b": 1}
    assert pack(one) == pack(two)
    assert pack({"b": 1, b"a": 2, "a": 3}) == pack({b"a": 2, "a": 3, "b": 1})


def test_sets_pack_in_content_order() -> None:
    members = [f"member-{i}" for i in range(50)]
    backwards = set()
    for member in members[::-1]:
        backwards.add(member)
    assert pack(set(members)) == pack(backwards)
    assert pack(frozenset(members)) != pack(set(members))


@pytest.mark.parametrize("seed", ["1", "2"])
def test_set_bytes_do_not_depend_on_the_hash_seed(seed: str) -> None:
    code = (
        "import sys; from flask_statemgr.serialization import pack;"
        "sys.stdout.write(pack({'alpha', 'beta', 'gamma', 'delta', ('x', 1)}).hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert bytes.fromhex(out) == pack({"alpha", "beta", "gamma", "delta", ("x", 1)})


def test_equal_but_different_values_pack_apart() -> None:
    # msgpack keeps int, float and bool apart, and so do we.
    assert len({pack(1), pack(1.0), pack(True)}) == 3
    assert pack(Decimal("1.0")) != pack(Decimal("1.00"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"attachments": [b"ok", b"ok", object()]},
            "payload[\"attachments\"][2]: unsupported type 'object'",
        ),
        (
            {"a": {"b": (1, complex(1, 2))}},
            'payload["a"]["b"][1]: unsupported type \'complex\'',
        ),
        (
            {"tags": {1, 2.5j}},
            "payload[\"tags\"][<set member>]: unsupported type 'complex'",
        ),
        ({"a": {1: "x"}}, "payload[\"a\"]: the key 1 has the unsupported type 'int'"),
        ({"a": ["\ud800"]}, 'payload["a"][0]: the string is not valid Unicode'),
        ({"\udcff": 1}, "payload: the key '\\udcff' is not valid Unicode"),
        ({"a": bytearray(b"x")}, "unsupported type 'bytearray'"),
        ({"a": msgpack.ExtType(1, b"x")}, "unsupported type 'msgpack.ext.ExtType'"),
        (
            {"a": dt.time(1, tzinfo=PARIS)},
            "time has a tzinfo without a fixed UTC offset",
        ),
    ],
)
def test_unsupported_values_name_their_path(value: t.Any, message: str) -> None:
    with pytest.raises(SerializationError) as info:
        pack(value, name="payload")
    assert message in str(info.value)


def test_subclasses_are_refused_rather_than_changed() -> None:
    class Name(str):
        pass

    with pytest.raises(SerializationError, match="unsupported type"):
        pack([Name("x")])


def nested_list(depth: int) -> list[t.Any]:
    value: list[t.Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_tuple(depth: int) -> tuple[t.Any, ...]:
    value: tuple[t.Any, ...] = ()
    for _ in range(depth - 1):
        value = (value,)
    return value


@pytest.mark.parametrize("make", [nested_list, nested_tuple])
def test_depth_limit(make: t.Callable[[int], t.Any]) -> None:
    round_trip(make(MAX_DEPTH))
    with pytest.raises(SerializationError, match="nested deeper"):
        pack(make(MAX_DEPTH + 1))


@pytest.mark.parametrize("data", BOMBS.values(), ids=BOMBS.keys())
def test_bombs_are_refused_quickly(data: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(CorruptBlobError):
        unpack(data)
    assert time.perf_counter() - start < 0.5


def test_limits_allow_the_deepest_valid_value() -> None:
    assert unpack(b"\x91" * (MAX_DEPTH - 1) + b"\x90") == nested_list(MAX_DEPTH)
    assert unpack(crafted_tuple_chain(MAX_DEPTH)) == nested_tuple(MAX_DEPTH)


MALFORMED = {
    "empty": b"",
    "never used byte": b"\xc1",
    "truncated": pack({"a": "text"})[:-1],
    "extra data": pack(1) + pack(2),
    "bad utf-8": b"\xa2\xff\xfe",
    "int map key": msgpack.packb({1: 2}),
    "unknown extension": raw_ext(99, b""),
    "negative extension": b"\xd4\xfb\x00",
    "short datetime": raw_ext(1, b"\x00"),
    "month 13": raw_ext(1, struct.pack(">HBBBBBIB", 2024, 13, 1, 0, 0, 0, 0, 0)),
    "day offset": raw_ext(2, struct.pack(">HBBBBBIBq", 2024, 1, 1, 0, 0, 0, 0, 0, 86_400_000_000)),
    "decimal": raw_ext(6, b"twelve"),
    "decimal non-ascii": raw_ext(6, "١".encode()),
    "uuid": raw_ext(7, b"short"),
    "set of lists": raw_ext(8, msgpack.packb([[1], [2]])),
    "set not an array": raw_ext(8, msgpack.packb({"a": 1})),
    "tuple garbage": raw_ext(10, b"\xc1"),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_raises_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptBlobError):
        unpack(data)


def test_msgpack_timestamps_come_back_as_datetimes() -> None:
    # pack never writes msgpack's timestamp extension; crafted input with one
    # yields a supported type, not msgpack.Timestamp.
    data = msgpack.packb(msgpack.Timestamp(1_700_000_000, 5000))
    assert unpack(data) == dt.datetime(2023, 11, 14, 22, 13, 20, 5, tzinfo=dt.UTC)


offsets = st.timedeltas(
    min_value=-dt.timedelta(hours=24) + dt.timedelta(microseconds=1),
    max_value=dt.timedelta(hours=24) - dt.timedelta(microseconds=1),
).map(dt.timezone)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.datetimes(),
    st.datetimes(timezones=offsets),
    st.dates(),
    st.times(),
    st.times(timezones=offsets),
    st.decimals(allow_nan=False),
    st.uuids(),
)
hashables = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text() | st.binary(), inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_supported_value_round_trips(value: t.Any) -> None:
    round_trip(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(), values, max_size=6), st.randoms())
def test_key_order_never_changes_the_bytes(value: dict[str, t.Any], random: t.Any) -> None:
    items = list(value.items())
    random.shuffle(items)
    assert pack(dict(items)) == pack(value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_unpack_or_raise_corrupt(data: bytes) -> None:
    try:
        unpack(data)
    except CorruptBlobError:
        pass
