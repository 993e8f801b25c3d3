"""The content-hash data store that keeps transition payloads:
:class:`DataStore`.

A value is serialized with :mod:`flask_statemgr.serialization`. Small
serialized values stay inline, in the bytes :meth:`DataStore.serialize`
returns; larger ones are stored once in a backend under their SHA-256 key
and the bytes returned are a reference to them (see
:mod:`~flask_statemgr.store.framing`).
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import hashlib
import json
import typing as t

from .. import serialization
from ..exceptions import (
    BlobNotFound,
    CorruptBlobError,
    PayloadTooLarge,
    SerializationError,
)
from . import framing
from .backend import Executor, StoreBackend, logger
from .cache import MISSING, BlobCache
from .framing import Frame

KiB = 1024
MiB = 1024 * KiB

#: The defaults of :class:`DataStore`'s sizes, and so of the
#: ``STATEMGR_STORE_*`` sizes.
MIN_SIZE = 1 * KiB
MAX_SIZE = 16 * MiB
WARN_SIZE = 1 * MiB
CACHE_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class GCResult:
    """What :meth:`DataStore.collect_garbage` found and removed."""

    #: Blobs in the store, and their total size.
    examined: int
    examined_bytes: int
    #: Unreferenced blobs removed (or that would be, in a dry run).
    deleted: int
    deleted_bytes: int
    #: Unreferenced blobs kept because they are younger than the grace period.
    young: int
    dry_run: bool


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """What :meth:`DataStore.verify` found."""

    #: Blobs in the store, hashed again.
    examined: int
    #: Keys of stored blobs whose bytes no longer match their key or size.
    corrupt: list[str]
    #: Referenced keys the store does not have.
    missing: list[str]

    @property
    def ok(self) -> bool:
        """Nothing corrupt and nothing missing."""
        return not self.corrupt and not self.missing


class DataStore:
    """Serializes values and payloads, keeping large ones in a backend under
    their content hash.

    :param backend: where blobs go.
    :param min_size: a serialized value smaller than this many bytes stays
        inline. Default 1 KiB.
    :param max_size: a serialized value (or payload) larger than this raises
        :class:`~flask_statemgr.exceptions.PayloadTooLarge`. Default 16 MiB.
    :param warn_size: a serialized value larger than this logs a warning on
        the ``flask_statemgr.store`` logger. Default 1 MiB.
    :param cache_size: how many resolved blobs to keep in an LRU cache in
        this process; 0 disables it. Default 1024.
    """

    def __init__(
        self,
        backend: StoreBackend,
        *,
        min_size: int = MIN_SIZE,
        max_size: int = MAX_SIZE,
        warn_size: int = WARN_SIZE,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        if not 0 <= min_size <= max_size <= framing.SIZE_LIMIT:
            raise ValueError(
                f"Need 0 <= min_size <= max_size <= {framing.SIZE_LIMIT}, got min_size={min_size}, max_size={max_size}"
            )
        if warn_size < 0 or cache_size < 0:
            raise ValueError("warn_size and cache_size cannot be negative")
        self.backend = backend
        self.min_size = min_size
        self.max_size = max_size
        self.warn_size = warn_size
        self.cache_size = cache_size
        self._cache = BlobCache(cache_size)

    def serialize(self, value: t.Any, *, session: Executor | None = None) -> bytes:
        """Serialize ``value``: inline bytes when small, else a reference to a
        blob written to the backend.

        :param session: where the database backend writes.
        :raise SerializationError: the value holds an unsupported type.
        :raise PayloadTooLarge: it serializes to more than ``max_size``.
        """
        packed = serialization.pack(value)
        self._check_size(len(packed), "The value")
        return self._place(packed, session)

    def resolve(self, data: bytes, *, session: Executor | None = None) -> t.Any:
        """Return the value ``data`` stands for: inline data, a reference, or
        a payload from :meth:`serialize_payload`.

        :param session: where the database backend reads.
        :raise BlobNotFound: a referenced blob is missing.
        :raise CorruptBlobError: the data or a blob is damaged.
        """
        kind = framing.frame_kind(data)
        if kind is None:
            return serialization.unpack(data)
        if kind is Frame.REFERENCE:
            return self._fetch(data, session)
        return self.resolve_payload(data, session=session)

    def is_reference(self, data: bytes) -> bool:
        """Whether ``data`` (from :meth:`serialize`) refers to a stored blob
        rather than holding the value inline."""
        return framing.is_reference(data)

    def serialize_payload(
        self,
        payload: cabc.Mapping[str, t.Any],
        *,
        inline: cabc.Collection[str] = (),
        session: Executor | None = None,
    ) -> bytes:
        """Serialize a payload field by field.

        Each top-level field is inline or stored on its own, so a large field
        deduplicates even when the small fields beside it differ.

        :param payload: field names to values.
        :param inline: fields to keep inline whatever their size.
        :param session: where the database backend writes.
        :raise SerializationError: a field holds an unsupported type; the
            message names it.
        :raise PayloadTooLarge: a field, or all of them together, serialize
            to more than ``max_size``.
        """
        fields = {}
        for name, value in payload.items():
            if type(name) is not str:
                raise SerializationError(f"Payload field names must be str, not {type(name).__name__}: {name!r}")
            label = _field_label(name)
            packed = serialization.pack(value, name=label)
            self._check_size(len(packed), label)
            fields[name] = packed
        total = sum(map(len, fields.values()))
        if total > self.max_size:
            raise PayloadTooLarge(
                f"The payload serializes to {_describe(total)}; STATEMGR_STORE_MAX_SIZE is {_describe(self.max_size)}"
            )
        # Nothing is written until every field passed, so a refused payload
        # leaves no blob behind.
        framed = {name: packed if name in inline else self._place(packed, session) for name, packed in fields.items()}
        return framing.payload_frame(framed)

    def resolve_payload(self, data: bytes, *, session: Executor | None = None) -> dict[str, t.Any]:
        """Return the payload dict ``data`` (from :meth:`serialize_payload`)
        stands for.

        :param session: where the database backend reads.
        :raise BlobNotFound: a referenced blob is missing.
        :raise CorruptBlobError: the data or a blob is damaged.
        """
        result = {}
        for name, entry in framing.payload_fields(data).items():
            if framing.frame_kind(entry) is None:
                result[name] = serialization.unpack(entry)
            else:
                result[name] = self._fetch(entry, session)
        return result

    def payload_keys(self, data: bytes) -> set[str]:
        """Return the keys of the blobs ``data`` refers to, without reading
        them: a payload's references, a reference's own key, or nothing for
        inline data.

        :raise CorruptBlobError: the data is damaged, so its references are
            unknown; a collection must not go on without them.
        """
        kind = framing.frame_kind(data)
        if kind is None:
            return set()
        if kind is Frame.REFERENCE:
            return {framing.parse_reference(data)[0]}
        return {
            framing.parse_reference(entry)[0]
            for entry in framing.payload_fields(data).values()
            if framing.frame_kind(entry) is not None
        }

    def purge(self, *, session: Executor | None = None) -> None:
        """Delete every blob in the backend and empty the cache.

        Records that refer to blobs can no longer be resolved afterwards:
        this is for tests and for starting over, not for cleaning up (see
        :meth:`collect_garbage`).
        """
        keys = [info.key for info in self.backend.scan(session=session)]
        self.backend.delete(keys, session=session)
        self.clear_cache()

    def clear_cache(self) -> None:
        """Forget every resolved blob this process keeps."""
        self._cache.clear()

    def collect_garbage(
        self,
        referenced: cabc.Set[str],
        *,
        grace: dt.timedelta = dt.timedelta(hours=1),
        dry_run: bool = False,
        session: Executor | None = None,
    ) -> GCResult:
        """Delete blobs that nothing references and that are older than
        ``grace`` (mark and sweep, as ``git prune`` does).

        :param referenced: the keys records refer to (the mark), gathered
            with :meth:`payload_keys` *before* this call.
        :param grace: how old an unreferenced blob must be to go.
        :param dry_run: count what would go, delete nothing.
        :param session: where the database backend runs; its caller commits.
        """
        # A transition writes its blobs before its record commits, so at the
        # mark the record is invisible while its blobs already exist; a
        # young blob may be one of those. Freshly written blobs, and old
        # ones a transition just wrote again (see StoreBackend.write), are
        # younger than the grace period, so they survive as long as no
        # transition takes longer than the grace (less FRESHEN_AFTER). Each
        # backend checks the age again as it deletes, so a blob freshened
        # during the sweep survives too.
        cutoff = dt.datetime.now(dt.UTC) - grace
        examined = examined_bytes = young = 0
        candidates: dict[str, int] = {}
        # The scan is consumed before deleting: SQLite would refuse a write
        # while a read on another connection is still open.
        for info in self.backend.scan(session=session):
            examined += 1
            examined_bytes += info.size
            if info.key in referenced:
                continue
            if info.created_at >= cutoff:
                young += 1
            else:
                candidates[info.key] = info.size
        if dry_run:
            deleted = list(candidates)
        else:
            deleted = self.backend.delete(candidates, older_than=cutoff, session=session)
            self._cache.discard(deleted)
        result = GCResult(
            examined=examined,
            examined_bytes=examined_bytes,
            deleted=len(deleted),
            deleted_bytes=sum(candidates[key] for key in deleted),
            young=young,
            dry_run=dry_run,
        )
        logger.info("Garbage collection: %s", result)
        return result

    def verify(self, referenced: cabc.Set[str], *, session: Executor | None = None) -> VerifyResult:
        """Hash every stored blob again, as ``git fsck`` does, and look for
        the referenced ones the store lacks. The cache is not consulted.

        :param referenced: the keys records refer to (see
            :meth:`payload_keys`).
        :param session: where the database backend reads.
        """
        # listed first: SQLite and PostgreSQL keep one cursor per connection
        # easily, not a scan and a read at once
        listed = [(info.key, info.size) for info in self.backend.scan(session=session)]
        corrupt = []
        present = set()
        for key, size in listed:
            blob = self.backend.read(key, session=session)
            if blob is None:
                # deleted since the scan; missing only if something needs it
                continue
            present.add(key)
            if len(blob) != size or f"sha256:{hashlib.sha256(blob).hexdigest()}" != key:
                corrupt.append(key)
        result = VerifyResult(examined=len(listed), corrupt=corrupt, missing=sorted(referenced - present))
        if not result.ok:
            logger.error("Store verification: %s", result)
        return result

    def close(self) -> None:
        """Release the backend's connections."""
        self.backend.close()

    def _check_size(self, size: int, label: str) -> None:
        if size > self.max_size:
            raise PayloadTooLarge(
                f"{label} serializes to {_describe(size)}; STATEMGR_STORE_MAX_SIZE is {_describe(self.max_size)}"
            )
        if size > self.warn_size:
            logger.warning(
                "%s serializes to %s; STATEMGR_STORE_WARN_SIZE is %s",
                label,
                _describe(size),
                _describe(self.warn_size),
            )

    def _place(self, packed: bytes, session: Executor | None) -> bytes:
        """Return ``packed`` itself when small, else store it and return a
        reference."""
        if len(packed) < self.min_size:
            return packed
        digest = hashlib.sha256(packed).digest()
        self.backend.write(f"sha256:{digest.hex()}", packed, session=session)
        return framing.reference(digest, len(packed))

    def _fetch(self, reference: bytes, session: Executor | None) -> t.Any:
        key, digest, size = framing.parse_reference(reference)
        value = self._cache.get(key)
        if value is not MISSING:
            return value
        blob = self.backend.read(key, session=session)
        if blob is None:
            raise BlobNotFound(key)
        if len(blob) != size or hashlib.sha256(blob).digest() != digest:
            raise CorruptBlobError(f"The blob {key} does not match its content hash")
        value = serialization.unpack(blob)
        self._cache.put(key, blob, value)
        return value


def _field_label(name: str) -> str:
    # json.dumps would cost more than packing a small field.
    if name.isidentifier():
        return f'payload["{name}"]'
    return f"payload[{json.dumps(name, ensure_ascii=False)}]"


def _describe(size: int) -> str:
    for unit, scale in (("MiB", MiB), ("KiB", KiB)):
        if size >= scale:
            return f"{size / scale:.1f} {unit} ({size} bytes)"
    return f"{size} bytes"
