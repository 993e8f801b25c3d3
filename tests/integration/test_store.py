from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import typing as t
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from flask_statemgr.exceptions import (
    BlobNotFound,
    CorruptBlobError,
    PayloadTooLarge,
    SerializationError,
    StoreUnavailable,
)
from flask_statemgr.serialization import pack
from flask_statemgr.store import (
    FRESHEN_AFTER,
    DatabaseBackend,
    DataStore,
    FileSystemBackend,
    GCResult,
    MemoryBackend,
    RedisBackend,
    StoreBackend,
    create_store,
)
from flask_statemgr.tables import blob_table, metadata

HOUR = dt.timedelta(hours=1)
BIG = b"attachment " * 500  # packs to well over the default min_size
KEY = "sha256:" + "ab" * 32


def key_of(data: bytes) -> str:
    return f"sha256:{__import__('hashlib').sha256(data).hexdigest()}"


@pytest.fixture
def db_engine(database_url: str) -> t.Iterator[sa.Engine]:
    engine = sa.create_engine(database_url)
    metadata.create_all(engine, tables=[blob_table])
    yield engine
    metadata.drop_all(engine, tables=[blob_table])
    engine.dispose()


class Aging:
    """Moves a blob's created time back, each backend in its own way."""

    def __init__(self, backend: StoreBackend, engine: sa.Engine | None = None) -> None:
        self.backend = backend
        self.engine = engine

    def __call__(self, key: str, age: dt.timedelta) -> None:
        when = dt.datetime.now(dt.UTC) - age
        backend = self.backend
        if isinstance(backend, MemoryBackend):
            data, _ = backend._blobs[key]
            backend._blobs[key] = (data, when)
        elif isinstance(backend, FileSystemBackend):
            os.utime(backend._path(key), (when.timestamp(), when.timestamp()))
        elif isinstance(backend, RedisBackend):
            backend._client.zadd(backend._index, {key: when.timestamp()}, xx=True)
        else:
            assert self.engine is not None
            with self.engine.begin() as conn:
                conn.execute(sa.update(blob_table).where(blob_table.c.key == key).values(created_at=when))


BACKENDS = [
    "memory",
    "filesystem",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=BACKENDS)
def backend_and_aging(request: pytest.FixtureRequest, tmp_path: t.Any) -> t.Iterator[tuple[StoreBackend, Aging]]:
    name = request.param
    if name == "memory":
        backend: StoreBackend = MemoryBackend()
        yield backend, Aging(backend)
    elif name == "filesystem":
        backend = FileSystemBackend(tmp_path / "blobs")
        yield backend, Aging(backend)
    elif name == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"test:{uuid.uuid4().hex}:"
        redis_backend = RedisBackend(url, prefix=prefix)
        yield redis_backend, Aging(redis_backend)
        client = redis_backend._client
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        redis_backend.close()
    else:
        if name == "sqlite":
            url = f"sqlite:///{tmp_path / 'blobs.sqlite'}"
        else:
            url = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(url)
        metadata.create_all(engine, tables=[blob_table])
        database_backend = DatabaseBackend(engine)
        yield database_backend, Aging(database_backend, engine)
        metadata.drop_all(engine, tables=[blob_table])
        engine.dispose()


@pytest.fixture
def backend(backend_and_aging: tuple[StoreBackend, Aging]) -> StoreBackend:
    return backend_and_aging[0]


@pytest.fixture
def age(backend_and_aging: tuple[StoreBackend, Aging]) -> Aging:
    return backend_and_aging[1]


@pytest.fixture
def store(backend: StoreBackend) -> DataStore:
    return DataStore(backend)


def keys(backend: StoreBackend) -> set[str]:
    return {info.key for info in backend.scan()}


def tamper(backend: StoreBackend, key: str, data: bytes) -> None:
    backend.delete([key])
    backend.write(key, data)


# The backend contract, on every backend.


def test_backend_read_write(backend: StoreBackend) -> None:
    assert backend.read(KEY) is None
    backend.write(KEY, b"first")
    assert backend.read(KEY) == b"first"
    # Present: not rewritten.
    backend.write(KEY, b"second")
    assert backend.read(KEY) == b"first"


def test_backend_scan(backend: StoreBackend) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    backend.write(KEY, b"12345")
    [info] = backend.scan()
    assert info.key == KEY
    assert info.size == 5
    assert before <= info.created_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)


def test_backend_delete(backend: StoreBackend, age: Aging) -> None:
    other = "sha256:" + "cd" * 32
    backend.write(KEY, b"a")
    backend.write(other, b"b")
    age(KEY, 2 * HOUR)
    cutoff = dt.datetime.now(dt.UTC) - HOUR
    assert backend.delete([KEY, other], older_than=cutoff) == [KEY]
    assert keys(backend) == {other}
    assert backend.delete([KEY, other]) == [other]
    assert backend.delete([KEY]) == []
    assert keys(backend) == set()


def test_backend_freshens_an_old_blob_written_again(backend: StoreBackend, age: Aging) -> None:
    backend.write(KEY, b"a")
    age(KEY, 2 * HOUR)
    backend.write(KEY, b"a")
    [info] = backend.scan()
    assert dt.datetime.now(dt.UTC) - info.created_at < dt.timedelta(minutes=1)


def test_backend_many_keys(backend: StoreBackend) -> None:
    many = [f"sha256:{i:064x}" for i in range(1200)]
    for key in many:
        backend.write(key, b"x")
    assert keys(backend) == set(many)
    assert sorted(backend.delete(many)) == sorted(many)


# The store on every backend.


def test_dedup_of_identical_payloads(store: DataStore) -> None:
    stored = {store.serialize_payload({"file": BIG, "n": 1}) for _ in range(1000)}
    assert len(stored) == 1
    assert len(keys(store.backend)) == 1


def test_dedup_of_a_large_field_beside_small_ones_that_differ(store: DataStore) -> None:
    stored = [store.serialize_payload({"file": BIG, "n": n}) for n in range(100)]
    assert len(set(stored)) == 100
    assert keys(store.backend) == {key_of(pack(BIG))}
    assert all(store.payload_keys(data) == {key_of(pack(BIG))} for data in stored)
    assert store.resolve_payload(stored[42]) == {"file": BIG, "n": 42}


def test_dedup_ignores_key_order(store: DataStore) -> None:
    one = {f"k{i}": "v" * 20 for i in range(100)}
    two = dict(reversed(list(one.items())))
    assert list(one) != list(two)
    assert store.serialize(one) == store.serialize(two)
    assert store.serialize_payload({"form": one}) == store.serialize_payload({"form": two})
    assert len(keys(store.backend)) == 1


def test_round_trip_through_the_backend(store: DataStore) -> None:
    value = {
        "when": dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        "tags": {"a", "b"},
        "pair": (1, 2),
        "blob": BIG,
    }
    data = store.serialize(value)
    assert store.is_reference(data)
    store.clear_cache()
    assert store.resolve(data) == value
    payload = store.serialize_payload(value)
    store.clear_cache()
    assert store.resolve_payload(payload) == value
    assert store.resolve(payload) == value


def test_a_flipped_byte_is_detected(store: DataStore) -> None:
    data = store.serialize(BIG)
    store.resolve(data)
    key = store.payload_keys(data).pop()
    blob = store.backend.read(key)
    assert blob is not None
    tamper(store.backend, key, blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    # The cache holds verified bytes, so clear it to read the blob again.
    store.clear_cache()
    with pytest.raises(CorruptBlobError, match=key):
        store.resolve(data)
    with pytest.raises(CorruptBlobError):
        store.resolve_payload(store.serialize_payload({"file": BIG}))


def test_a_truncated_blob_is_detected(store: DataStore) -> None:
    data = store.serialize(BIG)
    key = store.payload_keys(data).pop()
    tamper(store.backend, key, (store.backend.read(key) or b"")[:-1])
    with pytest.raises(CorruptBlobError):
        store.resolve(data)


def test_a_missing_blob_raises(store: DataStore) -> None:
    data = store.serialize(BIG)
    payload = store.serialize_payload({"n": 1, "file": BIG})
    store.backend.delete(store.payload_keys(data))
    with pytest.raises(BlobNotFound):
        store.resolve(data)
    with pytest.raises(BlobNotFound):
        store.resolve_payload(payload)


def test_gc(store: DataStore, age: Aging) -> None:
    values = {name: name.encode() * 1000 for name in ("kept", "young", "old", "older")}
    refs = {name: store.serialize(value) for name, value in values.items()}
    key = {name: store.payload_keys(ref).pop() for name, ref in refs.items()}
    age(key["kept"], 10 * HOUR)
    age(key["old"], 2 * HOUR)
    age(key["older"], 30 * HOUR)
    referenced = {key["kept"]}
    total = sum(len(store.backend.read(k) or b"") for k in key.values())

    dry = store.collect_garbage(referenced, dry_run=True)
    assert dry.deleted == 2 and dry.young == 1 and dry.dry_run
    assert keys(store.backend) == set(key.values())

    result = store.collect_garbage(referenced)
    assert result == GCResult(
        examined=4,
        examined_bytes=total,
        deleted=2,
        deleted_bytes=dry.deleted_bytes,
        young=1,
        dry_run=False,
    )
    assert keys(store.backend) == {key["kept"], key["young"]}
    assert store.resolve(refs["kept"]) == values["kept"]
    with pytest.raises(BlobNotFound):
        store.resolve(refs["old"])
    # A shorter grace lets the young one go, never the referenced one.
    store.collect_garbage(referenced, grace=dt.timedelta(0))
    assert keys(store.backend) == {key["kept"]}


def test_gc_keeps_an_old_blob_a_transition_writes_again(store: DataStore, age: Aging) -> None:
    data = store.serialize(BIG)
    key = store.payload_keys(data).pop()
    age(key, 2 * HOUR)
    # The mark ran before this transition's record existed ...
    referenced: set[str] = set()
    # ... and the transition stores the same attachment again.
    assert store.serialize(BIG) == data
    assert store.collect_garbage(referenced).deleted == 0
    assert keys(store.backend) == {key}


def test_gc_does_not_delete_a_blob_freshened_during_the_sweep(backend: StoreBackend, age: Aging) -> None:
    backend.write(KEY, b"x")
    age(KEY, 2 * HOUR)
    cutoff = dt.datetime.now(dt.UTC) - HOUR
    # Listed as old, then written again before the delete.
    assert [info.key for info in backend.scan() if info.created_at < cutoff] == [KEY]
    backend.write(KEY, b"x")
    assert backend.delete([KEY], older_than=cutoff) == []


def test_purge(store: DataStore) -> None:
    data = store.serialize(BIG)
    store.serialize(BIG * 2)
    store.resolve(data)
    store.purge()
    assert keys(store.backend) == set()
    with pytest.raises(BlobNotFound):
        store.resolve(data)


# Framing, limits and the cache (the memory backend is enough).


@pytest.fixture
def memory_store() -> DataStore:
    return DataStore(MemoryBackend())


def test_small_values_stay_inline(memory_store: DataStore) -> None:
    data = memory_store.serialize({"a": 1})
    assert data == pack({"a": 1})
    assert not memory_store.is_reference(data)
    assert memory_store.resolve(data) == {"a": 1}
    assert memory_store.payload_keys(data) == set()
    assert keys(memory_store.backend) == set()


def test_min_size_boundary() -> None:
    store = DataStore(MemoryBackend(), min_size=1024)
    assert len(pack(b"x" * 1020)) == 1023
    assert not store.is_reference(store.serialize(b"x" * 1020))
    assert store.is_reference(store.serialize(b"x" * 1021))


def test_reference_framing(memory_store: DataStore) -> None:
    data = memory_store.serialize(BIG)
    digest = bytes.fromhex(key_of(pack(BIG))[7:])
    assert data == b"\xc1\x01" + digest + len(pack(BIG)).to_bytes(4, "big")
    assert memory_store.payload_keys(data) == {key_of(pack(BIG))}


def test_max_size() -> None:
    store = DataStore(MemoryBackend(), min_size=10, max_size=2000)
    assert store.resolve(store.serialize(b"x" * 1997)) == b"x" * 1997
    with pytest.raises(PayloadTooLarge, match="STATEMGR_STORE_MAX_SIZE") as info:
        store.serialize(b"x" * 1998)
    assert info.value.http_status == 413
    with pytest.raises(PayloadTooLarge, match=r'payload\["file"\] serializes to 2.0 KiB \(2001 bytes\)'):
        store.serialize_payload({"a": "small", "file": b"x" * 1998})
    # Each field fits; together they do not.
    with pytest.raises(PayloadTooLarge, match="The payload serializes"):
        store.serialize_payload({"a": b"x" * 1500, "b": b"y" * 1500})
    # A refused payload stores nothing.
    assert keys(store.backend) == {key_of(pack(b"x" * 1997))}


def test_warn_size(caplog: pytest.LogCaptureFixture) -> None:
    store = DataStore(MemoryBackend(), warn_size=5600)
    with caplog.at_level(logging.WARNING, logger="flask_statemgr.store"):
        store.serialize_payload({"small": BIG, "big": b"x" * 6000})
    [record] = caplog.records
    assert record.name == "flask_statemgr.store"
    assert 'payload["big"] serializes to 5.9 KiB (6003 bytes)' in record.getMessage()
    assert "STATEMGR_STORE_WARN_SIZE is 5.5 KiB (5600 bytes)" in record.getMessage()


def test_inline_fields_stay_inline(memory_store: DataStore) -> None:
    data = memory_store.serialize_payload({"file": BIG, "other": BIG + b"!"}, inline={"file"})
    assert memory_store.payload_keys(data) == {key_of(pack(BIG + b"!"))}
    assert keys(memory_store.backend) == {key_of(pack(BIG + b"!"))}
    assert memory_store.resolve_payload(data) == {"file": BIG, "other": BIG + b"!"}


def test_payload_errors_name_the_field(memory_store: DataStore) -> None:
    with pytest.raises(SerializationError, match=r'payload\["attachments"\]\[2\]'):
        memory_store.serialize_payload({"attachments": [b"a", b"b", object()]})
    with pytest.raises(SerializationError, match="field names must be str"):
        memory_store.serialize_payload({1: "x"})  # type: ignore[dict-item]


def test_empty_payload(memory_store: DataStore) -> None:
    data = memory_store.serialize_payload({})
    assert memory_store.resolve_payload(data) == {}
    assert memory_store.payload_keys(data) == set()


def test_user_data_can_never_become_a_reference(memory_store: DataStore) -> None:
    secret = memory_store.serialize(b"someone else's attachment " * 100)
    key = memory_store.payload_keys(secret).pop()
    forgeries = [
        secret,  # the reference bytes themselves, as a value
        secret.decode("latin-1"),
        key,
        key + " " * 2000,  # large enough to be stored itself
        {"$ref": key},
        [secret],
    ]
    for value in forgeries:
        data = memory_store.serialize(value)
        assert memory_store.resolve(data) == value
        assert memory_store.payload_keys(data) <= {key_of(pack(value))}
        payload = memory_store.serialize_payload({"field": value})
        assert memory_store.resolve_payload(payload) == {"field": value}
        assert key not in memory_store.payload_keys(payload)


CORRUPT_FRAMES = {
    "unknown kind": b"\xc1\x09",
    "lone marker": b"\xc1",
    "short reference": b"\xc1\x01" + b"\x00" * 10,
    "long reference": b"\xc1\x01" + b"\x00" * 40,
    "payload not a map": b"\xc1\x02" + pack([1]),
    "payload entry not bytes": b"\xc1\x02" + pack({"a": 1}),
    "payload in a payload": b"\xc1\x02" + pack({"a": b"\xc1\x02" + pack({})}),
    "payload entry broken reference": b"\xc1\x02" + pack({"a": b"\xc1\x01"}),
    "payload garbage": b"\xc1\x02\xc1",
}


@pytest.mark.parametrize("data", CORRUPT_FRAMES.values(), ids=CORRUPT_FRAMES.keys())
def test_corrupt_frames(memory_store: DataStore, data: bytes) -> None:
    with pytest.raises(CorruptBlobError):
        memory_store.resolve(data)
    with pytest.raises(CorruptBlobError):
        memory_store.payload_keys(data)


def test_resolve_payload_refuses_other_frames(memory_store: DataStore) -> None:
    with pytest.raises(CorruptBlobError, match="Not a serialized payload"):
        memory_store.resolve_payload(memory_store.serialize({"a": 1}))


class CountingBackend(MemoryBackend):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, key: str, *, session: t.Any = None) -> bytes | None:
        self.reads += 1
        return super().read(key, session=session)


def test_cache_hands_out_fresh_objects() -> None:
    store = DataStore(CountingBackend())
    value = {"rows": [{"id": i, "tags": ["a"]} for i in range(100)]}
    data = store.serialize(value)
    first = store.resolve(data)
    first["rows"][0]["tags"].append("mutated")
    first["extra"] = True
    second = store.resolve(data)
    assert second == value
    assert second is not first
    assert store.backend.reads == 1  # type: ignore[attr-defined]


def test_cache_hands_out_immutable_values_as_they_are() -> None:
    store = DataStore(CountingBackend())
    data = store.serialize(BIG)
    assert store.resolve(data) is store.resolve(data)
    assert store.backend.reads == 1  # type: ignore[attr-defined]


def test_cache_is_an_lru() -> None:
    backend = CountingBackend()
    store = DataStore(backend, cache_size=2)
    a, b, c = (store.serialize([name] * 600) for name in "abc")
    store.resolve(a)
    store.resolve(b)
    store.resolve(a)  # a is now the most recent
    store.resolve(c)  # evicts b
    assert backend.reads == 3
    store.resolve(a)
    assert backend.reads == 3
    store.resolve(b)
    assert backend.reads == 4


def test_cache_can_be_disabled() -> None:
    backend = CountingBackend()
    store = DataStore(backend, cache_size=0)
    data = store.serialize(BIG)
    store.resolve(data)
    store.resolve(data)
    assert backend.reads == 2


def test_gc_evicts_deleted_blobs_from_the_cache(memory_store: DataStore) -> None:
    data = memory_store.serialize(BIG)
    memory_store.resolve(data)
    memory_store.collect_garbage(set(), grace=dt.timedelta(0))
    with pytest.raises(BlobNotFound):
        memory_store.resolve(data)


def test_cache_is_thread_safe() -> None:
    store = DataStore(MemoryBackend(), cache_size=3)
    values = [{"n": n, "pad": "x" * 2000} for n in range(8)]
    refs = [store.serialize(value) for value in values]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(300):
                n = (i + offset) % len(refs)
                result = store.resolve(refs[n])
                assert result == values[n]
                result["n"] = -1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store._cache) <= 3


def test_invalid_sizes() -> None:
    with pytest.raises(ValueError):
        DataStore(MemoryBackend(), min_size=10, max_size=5)
    with pytest.raises(ValueError):
        DataStore(MemoryBackend(), max_size=2**31)
    with pytest.raises(ValueError):
        DataStore(MemoryBackend(), cache_size=-1)


# The filesystem backend.

BAD_KEYS = [
    "../../etc/passwd",
    "/etc/passwd",
    "sha256:../../../../etc/passwd",
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "A" * 64,
    "sha256:" + "a" * 63 + "\x00",
    "sha256:" + "a" * 64 + "\n",
    "sha256:" + "a" * 62 + "/.",
    "md5:" + "a" * 64,
    "",
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_filesystem_refuses_bad_keys(tmp_path: t.Any, key: str) -> None:
    backend = FileSystemBackend(tmp_path / "blobs")
    with pytest.raises(ValueError, match="Not a blob key"):
        backend.write(key, b"x")
    with pytest.raises(ValueError):
        backend.read(key)
    with pytest.raises(ValueError):
        backend.delete([key])
    assert sorted(os.listdir(tmp_path)) == ["blobs"]
    assert os.listdir(tmp_path / "blobs") == []


def test_filesystem_layout(tmp_path: t.Any) -> None:
    backend = FileSystemBackend(tmp_path, fsync=False)
    backend.write(KEY, b"data")
    path = tmp_path / "ab" / "ab" / ("ab" * 32)
    assert path.read_bytes() == b"data"
    assert os.listdir(tmp_path / "ab" / "ab") == ["ab" * 32]
    # Leftover temporary files and strangers are not blobs.
    (tmp_path / "ab" / "ab" / ".tmp-123").write_bytes(b"partial")
    (tmp_path / "ab" / "README").write_text("hi")
    (tmp_path / "cd" / "cd").mkdir(parents=True)
    (tmp_path / "cd" / "cd" / ("ab" * 32)).write_bytes(b"wrong shard")
    assert keys(backend) == {KEY}


def test_filesystem_write_failure_leaves_no_temporary_file(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FileSystemBackend(tmp_path)

    def fail(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        backend.write(KEY, b"data")
    assert os.listdir(tmp_path / "ab" / "ab") == []


# The database backend.


def test_database_write_rolled_back_with_the_session(db_engine: sa.Engine) -> None:
    store = DataStore(DatabaseBackend(db_engine))
    with orm.Session(db_engine) as session:
        data = store.serialize(BIG, session=session)
        assert store.resolve(data, session=session) == BIG
        session.rollback()
    assert keys(store.backend) == set()


def test_database_write_in_a_savepoint_that_fails(db_engine: sa.Engine) -> None:
    store = DataStore(DatabaseBackend(db_engine))
    with orm.Session(db_engine) as session, session.begin():
        kept = store.serialize(b"kept" * 1000, session=session)
        with pytest.raises(RuntimeError), session.begin_nested():
            store.serialize_payload({"file": BIG}, session=session)
            raise RuntimeError("an execute hook fails")
    assert keys(store.backend) == store.payload_keys(kept)


def test_database_session_getter_joins_its_transaction(db_engine: sa.Engine) -> None:
    session = orm.Session(db_engine)
    store = DataStore(DatabaseBackend(lambda: session))
    data = store.serialize_payload({"file": BIG})
    assert store.resolve_payload(data) == {"file": BIG}
    with db_engine.connect() as other:
        assert other.execute(sa.select(sa.func.count()).select_from(blob_table)).scalar() == 0
    session.commit()
    with db_engine.connect() as other:
        assert other.execute(sa.select(sa.func.count()).select_from(blob_table)).scalar() == 1
    session.close()


def test_database_without_bind_needs_a_session(db_engine: sa.Engine) -> None:
    store = create_store({})
    assert isinstance(store.backend, DatabaseBackend)
    with pytest.raises(RuntimeError, match="pass session="):
        store.serialize(BIG)
    with orm.Session(db_engine) as session, session.begin():
        data = store.serialize(BIG, session=session)
        assert store.resolve(data, session=session) == BIG


def test_database_reuses_one_connection(db_engine: sa.Engine) -> None:
    connects = []
    sa.event.listen(db_engine, "connect", lambda *args: connects.append(args))
    db_engine.dispose()
    store = DataStore(DatabaseBackend(db_engine), cache_size=0)
    for n in range(50):
        store.resolve(store.serialize([n] * 500))
    store.collect_garbage(set(), grace=dt.timedelta(0))
    assert len(connects) == 1


def test_database_unreachable() -> None:
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    backend = DatabaseBackend(engine)
    with pytest.raises(StoreUnavailable):
        backend.read(KEY)
    with pytest.raises(StoreUnavailable):
        backend.write(KEY, b"x")


def test_database_freshen_does_not_touch_a_recent_blob(db_engine: sa.Engine) -> None:
    backend = DatabaseBackend(db_engine)
    aging = Aging(backend, db_engine)
    backend.write(KEY, b"x")
    aging(KEY, FRESHEN_AFTER / 2)
    [before] = backend.scan()
    backend.write(KEY, b"x")
    [after] = backend.scan()
    assert after.created_at == before.created_at


# Redis.


@pytest.mark.redis
def test_redis_unreachable() -> None:
    backend = RedisBackend("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable):
        backend.read(KEY)
    with pytest.raises(StoreUnavailable):
        backend.write(KEY, b"x")
    with pytest.raises(StoreUnavailable):
        list(backend.scan())


# Configuration.


def test_create_store_defaults() -> None:
    def getter() -> orm.Session:
        raise AssertionError("not called")

    store = create_store({}, session_getter=getter)
    assert isinstance(store.backend, DatabaseBackend)
    assert store.backend._session_getter is getter
    assert (store.min_size, store.max_size, store.warn_size, store.cache_size) == (
        1024,
        16 * 1024 * 1024,
        1024 * 1024,
        1024,
    )


def test_create_store_sizes() -> None:
    store = create_store(
        {
            "STATEMGR_STORE": "memory",
            "STATEMGR_STORE_MIN_SIZE": 10,
            "STATEMGR_STORE_MAX_SIZE": "100",
            "STATEMGR_STORE_WARN_SIZE": 50,
            "STATEMGR_STORE_CACHE_SIZE": 0,
        }
    )
    assert isinstance(store.backend, MemoryBackend)
    assert (store.min_size, store.max_size, store.warn_size, store.cache_size) == (
        10,
        100,
        50,
        0,
    )


def test_create_store_directories(tmp_path: t.Any) -> None:
    store = create_store({"STATEMGR_STORE": str(tmp_path / "a")})
    assert isinstance(store.backend, FileSystemBackend)
    assert store.backend.directory == str(tmp_path / "a")
    store = create_store({"STATEMGR_STORE": f"file://{tmp_path}/b%20c"})
    assert isinstance(store.backend, FileSystemBackend)
    assert store.backend.directory == str(tmp_path / "b c")
    store = create_store({"STATEMGR_STORE": f"file://localhost{tmp_path}/d"})
    assert store.backend.directory == str(tmp_path / "d")  # type: ignore[attr-defined]


@pytest.mark.redis
def test_create_store_redis(redis_url: str) -> None:
    store = create_store({"STATEMGR_STORE": redis_url, "STATEMGR_STORE_REDIS_PREFIX": "x:"})
    assert isinstance(store.backend, RedisBackend)
    assert store.backend.prefix == "x:"
    store.close()


def test_create_store_backend_instance() -> None:
    backend = MemoryBackend()
    assert create_store({"STATEMGR_STORE": backend}).backend is backend


@pytest.mark.parametrize(
    "spec",
    ["relative/dir", "ftp://host/x", "file://otherhost/x", "file:relative", ""],
)
def test_create_store_refuses(spec: str) -> None:
    with pytest.raises(ValueError, match="STATEMGR_STORE"):
        create_store({"STATEMGR_STORE": spec})


def test_create_store_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="STATEMGR_STORE"):
        create_store({"STATEMGR_STORE": 42})
