"""Throughput of the content-hash data store on each backend.

Run with ``python bench/store.py``. For payloads of about 100 B, 10 KiB and
1 MiB it times, per backend:

-   store new: ``serialize_payload`` of content not stored yet;
-   store dup: the same payload again (the write finds the blob present);
-   resolve: ``resolve_payload`` with the cache off, so it reads, verifies
    and unpacks the blob;
-   LRU hit: ``resolve_payload`` of a cached blob;

beside the raw limit measured in the same run: ``msgpack.packb`` plus
``hashlib.sha256`` (and the reverse, hash plus ``msgpack.unpackb``) alone,
and per backend the same with that backend's own I/O (``backend.write`` of
the packed bytes under their hash, ``backend.read`` before the hash and
unpack): what the store adds over the same I/O (its canonical form, checks,
dedup and cache), not only over none.
Each figure is the median over several rounds, after a warm-up round.

PostgreSQL and Redis come from ``STATEMGR_TEST_POSTGRES`` and
``STATEMGR_TEST_REDIS`` (the test suite's defaults otherwise); a backend
that cannot be reached is reported and skipped.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import typing as t
import uuid

import msgpack
import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flask_statemgr import serialization
from flask_statemgr.exceptions import StoreUnavailable
from flask_statemgr.store import (
    DatabaseBackend,
    DataStore,
    FileSystemBackend,
    MemoryBackend,
    RedisBackend,
    StoreBackend,
)
from flask_statemgr.tables import (
    blob_table,
    metadata,
)

POSTGRES_URL = os.environ.get("STATEMGR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("STATEMGR_TEST_REDIS", "redis://127.0.0.1:6379/15")
ROUNDS = 5
ROUND_SECONDS = 0.06

Payload = dict[str, t.Any]


def small(n: int) -> Payload:
    return {
        "comment": "Reviewed, looks good to me.",
        "n": n,
        "approved": True,
        "at": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC),
        "reviewer": "editor@example.com",
    }


TEXT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 180)[: 10 * 1024]
FILE = os.urandom(1024 * 1024)


def medium(n: int) -> Payload:
    return {"comment": "Edited the body.", "body": f"{n:016d}{TEXT[16:]}"}


def large(n: int) -> Payload:
    return {"comment": "Attached the scan.", "file": n.to_bytes(16, "big") + FILE[16:]}


SIZES: list[tuple[str, t.Callable[[int], Payload]]] = [
    ("100 B", small),
    ("10 KiB", medium),
    ("1 MiB", large),
]


def timed(prepare: t.Callable[[int], list[t.Any]], run: t.Callable[[t.Any], object]) -> float:
    """Median nanoseconds per call of ``run`` over ``ROUNDS`` rounds; the
    arguments of a round are made by ``prepare(count)`` outside the timer.
    The first, shorter round warms up and sizes the others."""
    items = prepare(3)
    start = time.perf_counter_ns()
    for item in items:
        run(item)
    per_call = max((time.perf_counter_ns() - start) / 3, 1)
    count = max(3, min(5000, int(ROUND_SECONDS * 1e9 / per_call)))
    samples = []
    for _ in range(ROUNDS):
        items = prepare(count)
        start = time.perf_counter_ns()
        for item in items:
            run(item)
        samples.append((time.perf_counter_ns() - start) / count)
    return statistics.median(samples)


class Counter:
    """Hands out numbers never used before, so "new" content is new."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> range:
        numbers = range(self.next, self.next + count)
        self.next += count
        return numbers


def repeat(item: object) -> t.Callable[[int], list[object]]:
    """A ``prepare`` for :func:`timed` that passes the same item every time."""
    return lambda count: [item] * count


def bench_size(
    store: DataStore,
    cold: DataStore,
    counter: Counter,
    make: t.Callable[[int], Payload],
) -> list[float]:
    written: list[bytes] = []

    def new_payloads(count: int) -> list[Payload]:
        # Keep the store small: only the latest round's blobs stay, and the
        # resolve timings read those.
        store.purge()
        written.clear()
        return [make(n) for n in counter.take(count)]

    def store_new(payload: Payload) -> None:
        written.append(store.serialize_payload(payload))

    def cycle(count: int) -> list[bytes]:
        return [written[i % len(written)] for i in range(count)]

    store_new_ns = timed(new_payloads, store_new)
    store_dup_ns = timed(repeat(make(10**9)), store.serialize_payload)
    resolve_ns = timed(cycle, cold.resolve_payload)
    store.resolve_payload(written[0])
    hit_ns = timed(repeat(written[0]), store.resolve_payload)
    return [store_new_ns, store_dup_ns, resolve_ns, hit_ns]


def bench_backend(backend: StoreBackend) -> dict[str, list[float]]:
    store = DataStore(backend)
    cold = DataStore(backend, cache_size=0)
    counter = Counter()
    results = {label: bench_size(store, cold, counter, make) for label, make in SIZES}
    store.purge()
    return results


def pack_hash(value: Payload) -> bytes:
    return hashlib.sha256(msgpack.packb(value, use_bin_type=True, datetime=True)).digest()


def hash_unpack(data: bytes) -> object:
    hashlib.sha256(data).digest()
    return msgpack.unpackb(data, timestamp=3)


def bench_raw() -> dict[str, list[float]]:
    results = {}
    for label, make in SIZES:
        payload = make(0)
        packed = msgpack.packb(payload, use_bin_type=True, datetime=True)
        pack_ns = timed(repeat(payload), pack_hash)
        unpack_ns = timed(repeat(packed), hash_unpack)
        results[label] = [pack_ns, math.nan, unpack_ns, math.nan]
    return results


def bench_raw_io(backend: StoreBackend) -> dict[str, list[float]]:
    """:func:`bench_raw` with ``backend``'s own I/O: pack, hash and write
    the bytes; read them back, hash and unpack."""
    counter = Counter()
    # content the store's own rounds never made
    counter.next = 10**12
    results = {}
    for label, make in SIZES:
        keys: list[str] = []

        def new_payloads(count: int, make: t.Callable[[int], Payload] = make) -> list[Payload]:
            return [make(n) for n in counter.take(count)]

        def write(payload: Payload) -> None:
            data = msgpack.packb(payload, use_bin_type=True, datetime=True)
            key = f"sha256:{hashlib.sha256(data).hexdigest()}"
            backend.write(key, data)
            keys.append(key)

        def read(key: str) -> object:
            data = backend.read(key)
            assert data is not None
            return hash_unpack(data)

        write_ns = timed(new_payloads, write)
        read_ns = timed(lambda count: [keys[i % len(keys)] for i in range(count)], read)
        results[label] = [write_ns, math.nan, read_ns, math.nan]
    DataStore(backend).purge()
    return results


@contextlib.contextmanager
def memory_backend() -> t.Iterator[StoreBackend]:
    yield MemoryBackend()


@contextlib.contextmanager
def filesystem_backend() -> t.Iterator[StoreBackend]:
    with tempfile.TemporaryDirectory() as directory:
        yield FileSystemBackend(directory)


@contextlib.contextmanager
def sqlite_backend() -> t.Iterator[StoreBackend]:
    with tempfile.TemporaryDirectory() as directory:
        engine = sa.create_engine(f"sqlite:///{directory}/blobs.sqlite")
        try:
            metadata.create_all(engine, tables=[blob_table])
            yield DatabaseBackend(engine)
        finally:
            engine.dispose()


@contextlib.contextmanager
def postgres_backend() -> t.Iterator[StoreBackend]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    engine = sa.create_engine(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        metadata.create_all(engine, tables=[blob_table])
        yield DatabaseBackend(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def redis_backend() -> t.Iterator[StoreBackend]:
    prefix = f"bench:{uuid.uuid4().hex}:"
    backend = RedisBackend(REDIS_URL, prefix=prefix)
    try:
        yield backend
    finally:
        with contextlib.suppress(StoreUnavailable):
            DataStore(backend).purge()
        backend.close()


BACKENDS: list[tuple[str, t.Callable[[], t.ContextManager[StoreBackend]]]] = [
    ("memory", memory_backend),
    ("filesystem", filesystem_backend),
    ("sqlite file", sqlite_backend),
    ("postgresql", postgres_backend),
    ("redis", redis_backend),
]


def fmt(ns: float) -> str:
    if math.isnan(ns):  # not applicable
        return "-"
    return f"{ns / 1000:,.1f}"


def rate(ns: float) -> str:
    return f"{1e9 / ns:,.0f}"


def print_table(results: dict[str, dict[str, list[float]]]) -> None:
    header = (
        f"{'payload':<8} {'backend':<20} {'store new µs':>13} {'ops/s':>8}"
        f" {'store dup µs':>13} {'resolve µs':>11} {'ops/s':>8} {'LRU hit µs':>11}"
    )
    print(header)
    print("-" * len(header))
    for label, _ in SIZES:
        for name, by_size in results.items():
            new, dup, resolve, hit = by_size[label]
            print(
                f"{label:<8} {name:<20} {fmt(new):>13} {rate(new):>8}"
                f" {fmt(dup):>13} {fmt(resolve):>11} {rate(resolve):>8} {fmt(hit):>11}"
            )
        print()


def print_cache_choice() -> None:
    """Why the cache keeps verified bytes and unpacks per hit."""
    values = {
        "10 KiB form": {f"field_{i}": f"value {i} " * 25 for i in range(40)},
        "1 MiB rows": {"rows": [{"id": i, "name": f"row {i}", "tags": ["a", "b"]} for i in range(30000)]},
    }
    print("LRU entry for a mutable value, per hit (µs):")
    print(f"  {'value':<12} {'unpack bytes':>13} {'copy.deepcopy':>14}")
    for name, value in values.items():
        packed = serialization.pack(value)
        unpack_ns = timed(repeat(packed), unpack_verified)
        copy_ns = timed(repeat(value), copy.deepcopy)
        print(f"  {name:<12} {fmt(unpack_ns):>13} {fmt(copy_ns):>14}  ({len(packed):,} bytes)")


def unpack_verified(data: bytes) -> object:
    # What a cache hit does with bytes that were checked when first read.
    return serialization.unpack(data, check_depth=False)


def main() -> None:
    # The 1 MiB payload is over STATEMGR_STORE_WARN_SIZE on every write.
    logging.getLogger("flask_statemgr.store").setLevel(logging.ERROR)
    started = time.perf_counter()
    results = {"raw packb+sha256": bench_raw()}
    for name, factory in BACKENDS:
        try:
            with factory() as backend:
                results[name] = bench_backend(backend)
                results[f"{name}: raw I/O"] = bench_raw_io(backend)
        except (sa.exc.OperationalError, StoreUnavailable) as e:
            print(f"{name}: unavailable ({e})")
    print(
        "Median µs per operation; the raw row is msgpack.packb + sha256 (store)"
        " and sha256 + msgpack.unpackb (resolve) alone; a backend's raw I/O row adds"
        " that backend's own write and read of the bytes."
    )
    print()
    print_table(results)
    print_cache_choice()
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
