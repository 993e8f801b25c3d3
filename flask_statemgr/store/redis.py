"""The backend that keeps blobs in Redis: :class:`RedisBackend`."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import datetime as dt
import time
import typing as t

from ..exceptions import StoreUnavailable
from .backend import (
    BATCH,
    UNAVAILABLE,
    BlobInfo,
    Executor,
    StoreBackend,
    batches,
    logger,
)

if t.TYPE_CHECKING:
    import redis

#: Where the Redis keys go unless ``STATEMGR_STORE_REDIS_PREFIX`` says.
DEFAULT_PREFIX = "statemgr:blob:"

# Deletes the blobs named in KEYS[2:] (their index members in ARGV[2:])
# whose index score is below ARGV[1], or all of them when ARGV[1] is empty;
# as a script, the age check and the delete are one atomic step.
_DELETE = """
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

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("The Redis store needs the redis package: pip install 'flask-statemgr[redis]'") from e

        self.prefix = prefix
        self._index = f"{prefix}index"
        self._client: redis.Redis = redis.Redis.from_url(url)
        self._delete_script = self._client.register_script(_DELETE)
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
            for batch in batches(keys):
                names = [self._index, *(self.prefix + key for key in batch)]
                result = self._delete_script(keys=names, args=[cutoff, *batch])
                deleted.extend(member.decode() for member in result)
        return deleted

    def scan(self, *, session: Executor | None = None) -> cabc.Iterator[BlobInfo]:
        with self._unavailable():
            entries = self._client.zscan_iter(self._index, count=BATCH)
            for batch in batches(entries):
                with self._client.pipeline(transaction=False) as pipe:
                    for member, _ in batch:
                        pipe.strlen(self.prefix + member.decode())
                    sizes = pipe.execute()
                for (member, score), size in zip(batch, sizes):
                    created_at = dt.datetime.fromtimestamp(score, dt.UTC)
                    yield BlobInfo(member.decode(), size, created_at)

    def close(self) -> None:
        self._client.close()
