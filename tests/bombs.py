"""msgpack input that claims or nests far more than it holds: what
:func:`~flask_statemgr.serialization.unpack` must refuse quickly
(tests/unit/test_serialization.py), and the store's readers with it
(tests/integration/test_hostile.py)."""

from __future__ import annotations

import typing as t

import msgpack

from flask_statemgr.serialization import MAX_DEPTH


def raw_ext(code: int, data: bytes) -> bytes:
    return t.cast(bytes, msgpack.packb(msgpack.ExtType(code, data)))


def crafted_tuple_chain(depth: int) -> bytes:
    data = raw_ext(10, msgpack.packb([]))
    for _ in range(depth - 1):
        data = raw_ext(10, b"\x91" + data)
    return data


BOMBS = {
    # Headers that claim far more than the input holds.
    "array32": b"\xdd\xff\xff\xff\xff",
    "map32": b"\xdf\xff\xff\xff\xff",
    "str32": b"\xdb\xff\xff\xff\xff" + b"a" * 10,
    "bin32": b"\xc6\xff\xff\xff\xff" + b"a" * 10,
    "ext32": b"\xc9\xff\xff\xff\xff\x01" + b"a" * 10,
    "nested array claims": b"\x91" * 50 + b"\xdd\xff\xff\xff\xff",
    # Nesting beyond our limit but within msgpack's own.
    "deep arrays": b"\x91" * MAX_DEPTH + b"\x90",
    "deep maps": b"\x81\xa1k" * MAX_DEPTH + b"\x80",
    # Nesting beyond msgpack's own limit.
    "very deep arrays": b"\x91" * 100_000 + b"\xc0",
    # Nesting through extensions, which nest unpackb calls.
    "deep tuples": crafted_tuple_chain(MAX_DEPTH + 1),
    "very deep tuples": crafted_tuple_chain(5000),
    "tuples and arrays": raw_ext(10, b"\x91" * 1000 + b"\x90"),
}
