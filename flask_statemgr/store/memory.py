"""The backend that keeps blobs in this process: :class:`MemoryBackend`."""

from __future__ import annotations

import collections.abc as cabc
import datetime as dt
import threading

from .backend import FRESHEN_AFTER, BlobInfo, Executor, StoreBackend


class MemoryBackend(StoreBackend):
    """Blobs in a dict in this process: for tests and single-process tools."""

    def __init__(self) -> None:
        self._blobs: dict[str, tuple[bytes, dt.datetime]] = {}
        self._lock = threading.Lock()

    def read(self, key: str, *, session: Executor | None = None) -> bytes | None:
        with self._lock:
            entry = self._blobs.get(key)
        return None if entry is None else entry[0]

    def write(self, key: str, data: bytes, *, session: Executor | None = None) -> None:
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            entry = self._blobs.get(key)
            if entry is None:
                self._blobs[key] = (bytes(data), now)
            elif entry[1] < now - FRESHEN_AFTER:
                self._blobs[key] = (entry[0], now)

    def delete(
        self,
        keys: cabc.Iterable[str],
        *,
        older_than: dt.datetime | None = None,
        session: Executor | None = None,
    ) -> list[str]:
        deleted = []
        with self._lock:
            for key in keys:
                entry = self._blobs.get(key)
                if entry is not None and (older_than is None or entry[1] < older_than):
                    del self._blobs[key]
                    deleted.append(key)
        return deleted

    def scan(self, *, session: Executor | None = None) -> cabc.Iterator[BlobInfo]:
        with self._lock:
            items = list(self._blobs.items())
        for key, (data, created_at) in items:
            yield BlobInfo(key, len(data), created_at)
