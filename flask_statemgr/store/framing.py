"""The bytes the store hands out: inline msgpack, or a frame.

Inline data is plain msgpack. Everything else starts with ``0xC1``, the one
byte msgpack never uses, so no value can be mistaken for a frame, and no user
string, whatever it holds, can ever be read as a reference: frames are told
apart by their first byte, never by what a value contains. The second byte
says what the frame is (:class:`Frame`):

``C1 01`` + 32-byte SHA-256 digest + 4-byte big-endian size
    a reference to one blob (38 bytes). Its key is ``"sha256:" + hex``.

``C1 02`` + a msgpack map of field name to ``bin``
    a payload (:meth:`~flask_statemgr.store.DataStore.serialize_payload`).
    Each ``bin`` holds what :meth:`~flask_statemgr.store.DataStore.serialize`
    would return for that field alone: inline msgpack or a reference. Only
    the top-level fields are routed, and a field can never hold a payload
    frame.
"""

from __future__ import annotations

import enum
import re
import struct

from .. import serialization
from ..exceptions import CorruptBlobError

#: The first byte of every frame.
MARKER = 0xC1
#: The size field is 32 bits and the database column a signed 32-bit integer.
SIZE_LIMIT = 2**31 - 1

_REFERENCE = struct.Struct(">BB32sI")
_KEY = re.compile(r"sha256:[0-9a-f]{64}")


class Frame(enum.IntEnum):
    """A frame's second byte: what it holds."""

    REFERENCE = 0x01
    PAYLOAD = 0x02


_KINDS = frozenset(Frame)
_REFERENCE_HEADER = bytes((MARKER, Frame.REFERENCE))
_PAYLOAD_HEADER = bytes((MARKER, Frame.PAYLOAD))


def check_key(key: str) -> str:
    """Return ``key`` if it is a blob key: ``"sha256:"`` and 64 lowercase hex
    digits.

    :raise ValueError: it is anything else.
    """
    if type(key) is not str or _KEY.fullmatch(key) is None:
        raise ValueError(f"Not a blob key: {key!r}")
    return key


def frame_kind(data: bytes) -> Frame | None:
    """``None`` for inline msgpack, else what the frame holds.

    :raise CorruptBlobError: it is a frame of no known kind.
    """
    if not data or data[0] != MARKER:
        return None
    if len(data) < 2 or data[1] not in _KINDS:
        raise CorruptBlobError(f"Unknown frame {bytes(data[:2])!r}")
    return Frame(data[1])


def is_reference(data: bytes) -> bool:
    """Whether ``data`` is a reference frame (not inline, not a payload)."""
    return data[:2] == _REFERENCE_HEADER


def reference(digest: bytes, size: int) -> bytes:
    """The reference frame to the blob of ``size`` bytes with this SHA-256
    ``digest``."""
    return _REFERENCE.pack(MARKER, Frame.REFERENCE, digest, size)


def parse_reference(data: bytes) -> tuple[str, bytes, int]:
    """The key, digest and size a reference frame names.

    :raise CorruptBlobError: ``data`` is not a whole reference frame.
    """
    if len(data) != _REFERENCE.size or data[1] != Frame.REFERENCE:
        raise CorruptBlobError(f"Not a blob reference: {bytes(data[: _REFERENCE.size])!r}")
    _, _, digest, size = _REFERENCE.unpack(data)
    return f"sha256:{digest.hex()}", digest, size


def payload_frame(fields: dict[str, bytes]) -> bytes:
    """The payload frame of fields already serialized one by one."""
    return _PAYLOAD_HEADER + serialization.pack(fields)


def payload_fields(data: bytes) -> dict[str, bytes]:
    """The serialized fields of a payload frame, by name.

    :raise CorruptBlobError: ``data`` is not a well-formed payload frame.
    """
    if data[:2] != _PAYLOAD_HEADER:
        raise CorruptBlobError("Not a serialized payload")
    fields = serialization.unpack(data[2:])
    if type(fields) is not dict or not all(
        type(name) is str and type(entry) is bytes and entry[:2] != _PAYLOAD_HEADER for name, entry in fields.items()
    ):
        raise CorruptBlobError("A payload must map field names to serialized values")
    return fields
