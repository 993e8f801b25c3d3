"""The content-hash data store that keeps transition payloads.

A value is serialized with :mod:`flask_statemgr.serialization`. Small
serialized values stay inline, in the bytes :meth:`DataStore.serialize`
returns; larger ones are stored once in a backend under their SHA-256 key
and the bytes returned are a reference to them.

Framing
-------

Inline data is plain msgpack. Everything else starts with ``0xC1``, the one
byte msgpack never uses, so no value can be mistaken for a frame, and no user
string, whatever it holds, can ever be read as a reference: frames are told
apart by their first byte, never by what a value contains. The second byte
says what the frame is:

``C1 01`` + 32-byte SHA-256 digest + 4-byte big-endian size
    a reference to one blob (38 bytes). Its key is ``"sha256:" + hex``.

``C1 02`` + a msgpack map of field name to ``bin``
    a payload (:meth:`DataStore.serialize_payload`). Each ``bin`` holds what
    :meth:`DataStore.serialize` would return for that field alone: inline
    msgpack or a reference. Only the top-level fields are routed, and a field
    can never hold a payload frame.
"""

from __future__ import annotations

import abc
import collections
import collections.abc as cabc
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import threading
import time
import typing as t
import uuid
from decimal import Decimal
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
# not ``from sqlalchemy import orm``: pyright --verifytypes then types
# the session aliases below as unknown (microsoft/pyright#11196)
import sqlalchemy.orm as orm
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite

from . import serialization
from .exceptions import (
    BlobNotFound,
    CorruptBlobError,
    PayloadTooLarge,
    SerializationError,
    StoreUnavailable,
)
from .tables import blob_table

if t.TYPE_CHECKING:
    import redis

logger: logging.Logger = logging.getLogger("flask_statemgr.store")

KiB = 1024
MiB = 1024 * KiB

#: What runs the database backend's SQL: a session, a scoped session such as
#: Flask-SQLAlchemy's ``db.session``, or a connection.
Executor = t.Union[orm.Session, "orm.scoped_session[orm.Session]", sa.Connection]

#: What :class:`StoreUnavailable` says; the backends log where they failed
#: to connect, since a client has no use for the store's host and port.
UNAVAILABLE = "The payload store is unavailable; try again later"

#: A blob that already exists gets its created time moved to now when it is
#: written again and is older than this; see :meth:`StoreBackend.write`.
FRESHEN_AFTER = dt.timedelta(minutes=10)

_FRAME = 0xC1
_KIND_SHA256 = 0x01
_KIND_PAYLOAD = 0x02
_REFERENCE_HEADER = bytes((_FRAME, _KIND_SHA256))
_PAYLOAD_HEADER = bytes((_FRAME, _KIND_PAYLOAD))
_REFERENCE = struct.Struct(">BB32sI")
# The size field is 32 bits and the database column a signed 32-bit integer.
_SIZE_LIMIT = 2**31 - 1
_KEY = re.compile(r"sha256:[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]{64}")
# Batches for statements that name many keys, under every database's limit
# on bound parameters.
_BATCH = 500

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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back the naive UTC time it was given.
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def check_key(key: str) -> str:
    """Return ``key`` if it is a blob key: ``"sha256:"`` and 64 lowercase hex
    digits.

    :raise ValueError: it is anything else.
    """
    if type(key) is not str or _KEY.fullmatch(key) is None:
        raise ValueError(f"Not a blob key: {key!r}")
    return key


@dataclasses.dataclass(frozen=True)
class BlobInfo:
    """A stored blob, as :meth:`StoreBackend.scan` lists it."""

    #: ``"sha256:" + hex``
    key: str
    #: Length of the stored bytes.
    size: int
    #: When it was stored, or last freshened (aware, UTC).
    created_at: dt.datetime


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


class StoreBackend(abc.ABC):
    """Where blobs live. Keys are ``"sha256:" + hex``.

    Every method takes a keyword-only ``session``: the database backend runs
    its SQL there (inside the caller's transaction); the others ignore it.
    """

    #: whether a write through a ``session`` rolls back with its transaction
    transactional: t.ClassVar[bool] = False

    @abc.abstractmethod
    def read(self, key: str, *, session: Executor | None = None) -> bytes | None:
        """Return the blob stored under ``key``, or ``None``."""

    @abc.abstractmethod
    def write(self, key: str, data: bytes, *, session: Executor | None = None) -> None:
        """Store ``data`` under ``key``, unless a blob is there already.

        An existing blob is not rewritten, but its created time moves to now
        when it is older than :data:`FRESHEN_AFTER` (as git freshens the
        mtime of an object it writes again). Without that, a transition that
        reuses an old, unreferenced blob could lose it to a garbage
        collection that marked before the transition's record existed.
        """

    @abc.abstractmethod
    def delete(
        self,
        keys: cabc.Iterable[str],
        *,
        older_than: dt.datetime | None = None,
        session: Executor | None = None,
    ) -> list[str]:
        """Delete these blobs and return the keys of those that were there.

        :param older_than: only delete a blob created before this time, as it
            is when it is deleted, not as it was when it was listed.
        """

    @abc.abstractmethod
    def scan(self, *, session: Executor | None = None) -> cabc.Iterator[BlobInfo]:
        """List every stored blob."""

    def close(self) -> None:
        """Release connections the backend holds."""


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
        now = _now()
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


class FileSystemBackend(StoreBackend):
    """One file per blob under ``directory``, at ``ab/cd/<hex digest>``.

    A blob is written to a temporary file in its final directory and moved
    into place with :func:`os.replace`, so a reader never sees a partial
    blob. Its modification time is its created time.

    :param directory: where the blobs go; created if missing.
    :param fsync: flush each new blob and its directory to disk before
        :meth:`write` returns, so a committed record never references a blob
        that a power loss took back.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, fsync: bool = True
    ) -> None:
        self.directory: str = os.path.abspath(os.fspath(directory))
        self.fsync = fsync
        os.makedirs(self.directory, exist_ok=True)

    def _path(self, key: str) -> str:
        # The strict key check is what makes joining it into a path safe: no
        # separators, no "..", no NUL, nothing absolute.
        digest = check_key(key)[7:]
        return os.path.join(self.directory, digest[:2], digest[2:4], digest)

    def read(self, key: str, *, session: Executor | None = None) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes, *, session: Executor | None = None) -> None:
        path = self._path(key)
        try:
            if os.stat(path).st_mtime < time.time() - FRESHEN_AFTER.total_seconds():
                os.utime(path)
            return
        except FileNotFoundError:
            # Absent, or removed by a collection between stat and utime.
            pass
        shard = os.path.dirname(path)
        os.makedirs(shard, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=shard, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        if self.fsync and os.name == "posix":
            dir_fd = os.open(shard, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def delete(
        self,
        keys: cabc.Iterable[str],
        *,
        older_than: dt.datetime | None = None,
        session: Executor | None = None,
    ) -> list[str]:
        cutoff = None if older_than is None else older_than.timestamp()
        deleted = []
        for key in keys:
            path = self._path(key)
            try:
                # A file has no compare-and-delete; checking the age right
                # before unlinking leaves only a window of microseconds.
                if cutoff is not None and os.stat(path).st_mtime >= cutoff:
                    continue
                os.unlink(path)
            except FileNotFoundError:
                continue
            deleted.append(key)
        return deleted

    def scan(self, *, session: Executor | None = None) -> cabc.Iterator[BlobInfo]:
        for first in _scandir(self.directory):
            if not first.is_dir() or len(first.name) != 2:
                continue
            for second in _scandir(first.path):
                if not second.is_dir() or len(second.name) != 2:
                    continue
                for entry in _scandir(second.path):
                    name = entry.name
                    # Skips temporary files and anything else that is not a
                    # blob in its right shard.
                    if (
                        _HEX.fullmatch(name) is None
                        or name[:4] != first.name + second.name
                    ):
                        continue
                    try:
                        stat = entry.stat()
                    except FileNotFoundError:
                        continue
                    created_at = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                    yield BlobInfo(f"sha256:{name}", stat.st_size, created_at)


def _scandir(path: str) -> list[os.DirEntry[str]]:
    # A collection may run while blobs are written and removed.
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


# Deletes the blobs named in KEYS[2:] (their index members in ARGV[2:])
# whose index score is below ARGV[1], or all of them when ARGV[1] is empty;
# as a script, the age check and the delete are one atomic step.
_REDIS_DELETE = """
local cutoff = tonumber(ARGV[1])
local deleted = {}
for i = 2, #KEYS do
    local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if not cutoff or (score and tonumber(score) < cutoff) then
        if redis.call('DEL', KEYS[i]) == 1 then
            table.insert(deleted, ARGV[i])
        end
        redis.call('ZREM', KEYS[1], ARGV[i])
    end
end
return deleted
"""


class RedisBackend(StoreBackend):
    """Blobs as Redis strings at ``prefix + key``, with their created times in
    a sorted set at ``prefix + "index"``.

    The client's connection pool is reused for every operation. Run it on a
    Redis that does not evict keys (``maxmemory-policy noeviction``) and do
    not share a prefix between applications: a collection deletes whatever
    its application does not reference. Needs Redis 6.2 or later.

    :param url: a ``redis://``, ``rediss://`` or ``unix://`` URL.
    :param prefix: prepended to every Redis key the backend uses.
    :raise StoreUnavailable: from any method, when Redis cannot be reached.
    """

    def __init__(self, url: str, prefix: str = "statemgr:blob:") -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError(
                "The Redis store needs the redis package: pip install 'flask-statemgr[redis]'"
            ) from e

        self.prefix = prefix
        self._index = f"{prefix}index"
        self._client: redis.Redis = redis.Redis.from_url(url)
        self._delete_script = self._client.register_script(_REDIS_DELETE)
        self._errors = (redis.ConnectionError, redis.TimeoutError)

    @contextlib.contextmanager
    def _unavailable(self) -> cabc.Generator[None, None, None]:
        try:
            yield
        except self._errors as e:
            # the address is for the operator, not for whoever sent the request
            logger.error("The Redis store is not reachable: %s", e)
            raise StoreUnavailable(UNAVAILABLE) from e

    def read(self, key: str, *, session: Executor | None = None) -> bytes | None:
        with self._unavailable():
            return t.cast("bytes | None", self._client.get(self.prefix + key))

    def write(self, key: str, data: bytes, *, session: Executor | None = None) -> None:
        with self._unavailable(), self._client.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + key, data, nx=True)
            # GT only ever moves a time forward, and adds a missing member: a
            # rewrite always freshens, which costs Redis next to nothing.
            pipe.zadd(self._index, {key: time.time()}, gt=True)
            pipe.execute()

    def delete(
        self,
        keys: cabc.Iterable[str],
        *,
        older_than: dt.datetime | None = None,
        session: Executor | None = None,
    ) -> list[str]:
        cutoff = "" if older_than is None else repr(older_than.timestamp())
        deleted: list[str] = []
        with self._unavailable():
            for batch in _batches(keys):
                names = [self._index, *(self.prefix + key for key in batch)]
                result = self._delete_script(keys=names, args=[cutoff, *batch])
                deleted.extend(member.decode() for member in result)
        return deleted

    def scan(self, *, session: Executor | None = None) -> cabc.Iterator[BlobInfo]:
        with self._unavailable():
            entries = self._client.zscan_iter(self._index, count=_BATCH)
            for batch in _batches(entries):
                with self._client.pipeline(transaction=False) as pipe:
                    for member, _ in batch:
                        pipe.strlen(self.prefix + member.decode())
                    sizes = pipe.execute()
                for (member, score), size in zip(batch, sizes):
                    created_at = dt.datetime.fromtimestamp(score, dt.UTC)
                    yield BlobInfo(member.decode(), size, created_at)

    def close(self) -> None:
        self._client.close()


_T = t.TypeVar("_T")


def _batches(items: cabc.Iterable[_T]) -> cabc.Iterator[list[_T]]:
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


_INSERTS: dict[str, t.Callable[[sa.Table], t.Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


class DatabaseBackend(StoreBackend):
    """Blobs in the ``statemgr_blob`` table, on PostgreSQL or SQLite.

    Where the SQL runs, first match wins:

    1.  the ``session`` passed to a method: the write is part of the
        caller's transaction (or savepoint) and commits or rolls back with
        it;
    2.  the session the getter returns (such as Flask-SQLAlchemy's
        ``db.session``), likewise inside its current transaction, which the
        application commits;
    3.  a connection from the engine's pool, committed by the backend.

    Each operation checks out the worker's pooled connection, never a new
    one. That measured within 5% of holding one connection per thread (a
    checkout costs tens of µs, a committed write about a millisecond), and
    holding them would tie up a connection per thread of a threaded server.

    Writes are ``INSERT ... ON CONFLICT DO NOTHING``: an existing blob is not
    rewritten.

    :param engine_or_session_getter: an :class:`~sqlalchemy.Engine`, a
        callable that returns a session, or ``None`` if every call passes its
        own ``session``.
    """

    transactional = True

    def __init__(
        self,
        engine_or_session_getter: sa.Engine | t.Callable[[], Executor] | None = None,
    ) -> None:
        self._engine: sa.Engine | None = None
        self._session_getter: t.Callable[[], Executor] | None = None
        if isinstance(engine_or_session_getter, sa.Engine):
            self._engine = engine_or_session_getter
        else:
            self._session_getter = engine_or_session_getter

    @contextlib.contextmanager
    def _executor(
        self, session: Executor | None, *, commit: bool
    ) -> cabc.Generator[Executor, None, None]:
        try:
            if session is not None:
                yield session
            elif self._session_getter is not None:
                yield self._session_getter()
            elif self._engine is not None:
                try:
                    connection = self._engine.connect()
                except exc.DBAPIError as e:
                    logger.error("The database store is not reachable: %s", e)
                    raise StoreUnavailable(UNAVAILABLE) from e
                with connection:
                    if commit:
                        with connection.begin():
                            yield connection
                    else:
                        yield connection
            else:
                raise RuntimeError(
                    "This DatabaseBackend has no engine or session getter;"
                    " pass session= to every store call."
                )
        except exc.DBAPIError as e:
            if e.connection_invalidated:
                logger.error("The database store's connection was lost: %s", e)
                raise StoreUnavailable(UNAVAILABLE) from e
            raise

    def read(self, key: str, *, session: Executor | None = None) -> bytes | None:
        statement = sa.select(blob_table.c.data).where(blob_table.c.key == key)
        with self._executor(session, commit=False) as executor:
            data = executor.execute(statement).scalar_one_or_none()
        return None if data is None else bytes(data)

    def write(self, key: str, data: bytes, *, session: Executor | None = None) -> None:
        now = _now()
        with self._executor(session, commit=True) as executor:
            insert = _INSERTS.get(_dialect(executor))
            if insert is None:
                raise NotImplementedError(
                    f"The database store supports PostgreSQL and SQLite, not"
                    f" {_dialect(executor)}; set STATEMGR_STORE to a Redis URL"
                    " or a directory."
                )
            statement = (
                insert(blob_table)
                .values(key=key, size=len(data), data=data, created_at=now)
                .on_conflict_do_nothing(index_elements=[blob_table.c.key])
                # Says whether the row went in (rowcount is not kept for
                # INSERT by every driver).
                .returning(blob_table.c.key)
            )
            if executor.execute(statement).first() is None:
                # Present already. Updating only when stale keeps the common
                # case free of row locks and writes.
                executor.execute(
                    sa.update(blob_table)
                    .where(blob_table.c.key == key)
                    .where(blob_table.c.created_at < now - FRESHEN_AFTER)
                    .values(created_at=now)
                )

    def delete(
        self,
        keys: cabc.Iterable[str],
        *,
        older_than: dt.datetime | None = None,
        session: Executor | None = None,
    ) -> list[str]:
        deleted: list[str] = []
        with self._executor(session, commit=True) as executor:
            for batch in _batches(keys):
                statement = sa.delete(blob_table).where(blob_table.c.key.in_(batch))
                if older_than is not None:
                    # Checked by the DELETE itself: on PostgreSQL it waits
                    # for a transaction freshening the row and then sees its
                    # new time.
                    statement = statement.where(
                        blob_table.c.created_at < _as_utc(older_than)
                    )
                result = executor.execute(statement.returning(blob_table.c.key))
                deleted.extend(result.scalars())
        return deleted

    def scan(self, *, session: Executor | None = None) -> cabc.Iterator[BlobInfo]:
        statement = sa.select(
            blob_table.c.key, blob_table.c.size, blob_table.c.created_at
        ).execution_options(yield_per=1000)
        with self._executor(session, commit=False) as executor:
            for key, size, created_at in executor.execute(statement):
                yield BlobInfo(key, size, _as_utc(created_at))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _dialect(executor: Executor) -> str:
    if isinstance(executor, sa.Connection):
        return executor.dialect.name
    return executor.get_bind(clause=blob_table).dialect.name


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
        min_size: int = 1 * KiB,
        max_size: int = 16 * MiB,
        warn_size: int = 1 * MiB,
        cache_size: int = 1024,
    ) -> None:
        if not 0 <= min_size <= max_size <= _SIZE_LIMIT:
            raise ValueError(
                f"Need 0 <= min_size <= max_size <= {_SIZE_LIMIT},"
                f" got min_size={min_size}, max_size={max_size}"
            )
        if warn_size < 0 or cache_size < 0:
            raise ValueError("warn_size and cache_size cannot be negative")
        self.backend = backend
        self.min_size = min_size
        self.max_size = max_size
        self.warn_size = warn_size
        self.cache_size = cache_size
        self._cache: collections.OrderedDict[str, t.Any] = collections.OrderedDict()
        self._cache_lock = threading.Lock()

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
        kind = _frame_kind(data)
        if kind is None:
            return serialization.unpack(data)
        if kind == _KIND_SHA256:
            return self._fetch(data, session)
        return self.resolve_payload(data, session=session)

    def is_reference(self, data: bytes) -> bool:
        """Whether ``data`` (from :meth:`serialize`) refers to a stored blob
        rather than holding the value inline."""
        return data[:2] == _REFERENCE_HEADER

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
                raise SerializationError(
                    f"Payload field names must be str, not {type(name).__name__}: {name!r}"
                )
            label = _field_label(name)
            packed = serialization.pack(value, name=label)
            self._check_size(len(packed), label)
            fields[name] = packed
        total = sum(map(len, fields.values()))
        if total > self.max_size:
            raise PayloadTooLarge(
                f"The payload serializes to {_describe(total)};"
                f" STATEMGR_STORE_MAX_SIZE is {_describe(self.max_size)}"
            )
        # Nothing is written until every field passed, so a refused payload
        # leaves no blob behind.
        framed = {
            name: packed if name in inline else self._place(packed, session)
            for name, packed in fields.items()
        }
        return _PAYLOAD_HEADER + serialization.pack(framed)

    def resolve_payload(
        self, data: bytes, *, session: Executor | None = None
    ) -> dict[str, t.Any]:
        """Return the payload dict ``data`` (from :meth:`serialize_payload`)
        stands for.

        :param session: where the database backend reads.
        :raise BlobNotFound: a referenced blob is missing.
        :raise CorruptBlobError: the data or a blob is damaged.
        """
        result = {}
        for name, entry in _payload_fields(data).items():
            if _frame_kind(entry) is None:
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
        kind = _frame_kind(data)
        if kind is None:
            return set()
        if kind == _KIND_SHA256:
            return {_parse_reference(data)[0]}
        return {
            _parse_reference(entry)[0]
            for entry in _payload_fields(data).values()
            if _frame_kind(entry) is not None
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
        with self._cache_lock:
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
        cutoff = _now() - grace
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
            deleted = self.backend.delete(
                candidates, older_than=cutoff, session=session
            )
            with self._cache_lock:
                for key in deleted:
                    self._cache.pop(key, None)
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

    def verify(
        self, referenced: cabc.Set[str], *, session: Executor | None = None
    ) -> VerifyResult:
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
        result = VerifyResult(
            examined=len(listed), corrupt=corrupt, missing=sorted(referenced - present)
        )
        if not result.ok:
            logger.error("Store verification: %s", result)
        return result

    def close(self) -> None:
        """Release the backend's connections."""
        self.backend.close()

    def _check_size(self, size: int, label: str) -> None:
        if size > self.max_size:
            raise PayloadTooLarge(
                f"{label} serializes to {_describe(size)};"
                f" STATEMGR_STORE_MAX_SIZE is {_describe(self.max_size)}"
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
        return _REFERENCE.pack(_FRAME, _KIND_SHA256, digest, len(packed))

    def _fetch(self, reference: bytes, session: Executor | None) -> t.Any:
        key, digest, size = _parse_reference(reference)
        if self.cache_size:
            with self._cache_lock:
                entry = self._cache.get(key, _MISSING)
                if entry is not _MISSING:
                    self._cache.move_to_end(key)
            if type(entry) is _Verified:
                return serialization.unpack(entry.data, check_depth=False)
            if entry is not _MISSING:
                return entry
        blob = self.backend.read(key, session=session)
        if blob is None:
            raise BlobNotFound(key)
        if len(blob) != size or hashlib.sha256(blob).digest() != digest:
            raise CorruptBlobError(f"The blob {key} does not match its content hash")
        value = serialization.unpack(blob)
        if self.cache_size:
            # Unpacking the cached bytes on each hit measured faster than
            # copy.deepcopy of the value in every run of bench/store.py (2x
            # for a 10 KiB form, 1.4-4x for 1 MiB of rows) and gives every
            # caller its own objects; immutable values need neither.
            entry = value if type(value) in _IMMUTABLE else _Verified(blob)
            with self._cache_lock:
                self._cache[key] = entry
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return value


_MISSING = object()


class _Verified:
    """Cached bytes that matched their hash and unpacked cleanly."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


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


def _frame_kind(data: bytes) -> int | None:
    """``None`` for inline msgpack, else the frame's kind byte."""
    if not data or data[0] != _FRAME:
        return None
    if len(data) < 2 or data[1] not in (_KIND_SHA256, _KIND_PAYLOAD):
        raise CorruptBlobError(f"Unknown frame {bytes(data[:2])!r}")
    return data[1]


def _parse_reference(data: bytes) -> tuple[str, bytes, int]:
    if len(data) != _REFERENCE.size or data[1] != _KIND_SHA256:
        raise CorruptBlobError(
            f"Not a blob reference: {bytes(data[: _REFERENCE.size])!r}"
        )
    _, _, digest, size = _REFERENCE.unpack(data)
    return f"sha256:{digest.hex()}", digest, size


def _payload_fields(data: bytes) -> dict[str, bytes]:
    if data[:2] != _PAYLOAD_HEADER:
        raise CorruptBlobError("Not a serialized payload")
    fields = serialization.unpack(data[2:])
    if type(fields) is not dict or not all(
        type(name) is str and type(entry) is bytes and entry[:2] != _PAYLOAD_HEADER
        for name, entry in fields.items()
    ):
        raise CorruptBlobError("A payload must map field names to serialized values")
    return fields


def create_store(
    config: cabc.Mapping[str, t.Any],
    *,
    session_getter: t.Callable[[], Executor] | None = None,
) -> DataStore:
    """Build the data store an app's config asks for.

    ``STATEMGR_STORE`` picks the backend:

    -   ``"database"`` (the default): the ``statemgr_blob`` table, through
        ``session_getter`` (the extension passes ``db.session``); without
        one, every call must pass ``session=``;
    -   ``"memory"``: this process only;
    -   ``"file:///abs/path"`` or an absolute directory path;
    -   ``"redis://..."``, ``"rediss://..."`` or ``"unix://..."``, with keys
        under ``STATEMGR_STORE_REDIS_PREFIX`` (default ``"statemgr:blob:"``);
    -   a :class:`StoreBackend` instance.

    Sizes are in bytes: ``STATEMGR_STORE_MIN_SIZE`` (default 1024),
    ``STATEMGR_STORE_MAX_SIZE`` (default 16 MiB), ``STATEMGR_STORE_WARN_SIZE``
    (default 1 MiB); ``STATEMGR_STORE_CACHE_SIZE`` counts cached blobs
    (default 1024, 0 disables the cache).

    :raise ValueError: ``STATEMGR_STORE`` is not one of these.
    """
    return DataStore(
        _backend(config.get("STATEMGR_STORE", "database"), config, session_getter),
        min_size=int(config.get("STATEMGR_STORE_MIN_SIZE", 1 * KiB)),
        max_size=int(config.get("STATEMGR_STORE_MAX_SIZE", 16 * MiB)),
        warn_size=int(config.get("STATEMGR_STORE_WARN_SIZE", 1 * MiB)),
        cache_size=int(config.get("STATEMGR_STORE_CACHE_SIZE", 1024)),
    )


def _backend(
    spec: t.Any,
    config: cabc.Mapping[str, t.Any],
    session_getter: t.Callable[[], Executor] | None,
) -> StoreBackend:
    if isinstance(spec, StoreBackend):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"STATEMGR_STORE must be a string, not {spec!r}")
    if spec == "database":
        return DatabaseBackend(session_getter)
    if spec == "memory":
        return MemoryBackend()
    scheme = spec.partition("://")[0].lower() if "://" in spec else ""
    if scheme in ("redis", "rediss", "unix"):
        return RedisBackend(
            spec, config.get("STATEMGR_STORE_REDIS_PREFIX", "statemgr:blob:")
        )
    if scheme == "file":
        parts = urlsplit(spec)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"STATEMGR_STORE names a file on another host: {spec!r}")
        spec = unquote(parts.path)
    elif scheme:
        raise ValueError(f"STATEMGR_STORE has an unknown scheme: {spec!r}")
    if not os.path.isabs(spec):
        # Relative to what? The web workers and the CLI may not share a
        # working directory; join it with app.instance_path instead.
        raise ValueError(f"STATEMGR_STORE must be an absolute directory path: {spec!r}")
    return FileSystemBackend(spec)
