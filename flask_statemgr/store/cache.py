"""The least-recently-used cache of resolved blobs: :class:`BlobCache`."""

from __future__ import annotations

import collections
import collections.abc as cabc
import datetime as dt
import threading
import typing as t
import uuid
from decimal import Decimal

from .. import serialization

#: What :meth:`BlobCache.get` returns for a key it does not hold.
MISSING: t.Final[t.Any] = object()

# A resolved value of one of these types cannot be changed by a caller, so
# the cache can hand out the object itself.
_IMMUTABLE = frozenset(
    {
        str,
        bytes,
        int,
        float,
        bool,
        type(None),
        Decimal,
        uuid.UUID,
        dt.datetime,
        dt.date,
        dt.time,
        frozenset,
    }
)


class _Verified:
    """Cached bytes that matched their hash and unpacked cleanly."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class BlobCache:
    """The values of up to ``size`` blobs by key, for this process; safe to
    share between threads. A size of 0 keeps nothing.

    Each hit gives the caller its own objects: a mutable value is kept as its
    verified bytes and unpacked again. Unpacking the cached bytes on each hit
    measured faster than :func:`copy.deepcopy` of the value in every run of
    ``bench/store.py`` (2x for a 10 KiB form, 1.4-4x for 1 MiB of rows).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: collections.OrderedDict[str, t.Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> t.Any:
        """The value of the blob ``key``, or :data:`MISSING`."""
        if not self.size:
            return MISSING
        with self._lock:
            entry = self._entries.get(key, MISSING)
            if entry is not MISSING:
                self._entries.move_to_end(key)
        if type(entry) is _Verified:
            return serialization.unpack(entry.data, check_depth=False)
        return entry

    def put(self, key: str, blob: bytes, value: t.Any) -> None:
        """Keep ``value``, read from the verified ``blob`` stored under
        ``key``, dropping the least recently used beyond the size."""
        if not self.size:
            return
        entry = value if type(value) in _IMMUTABLE else _Verified(blob)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def discard(self, keys: cabc.Iterable[str]) -> None:
        """Forget these blobs, if held."""
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget every blob."""
        with self._lock:
            self._entries.clear()
