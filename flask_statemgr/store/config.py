"""The store an application's config asks for: :func:`create_store`."""

from __future__ import annotations

import collections.abc as cabc
import os
import types
import typing as t
from urllib.parse import unquote, urlsplit

from .backend import Executor, StoreBackend
from .database import DatabaseBackend
from .filesystem import FileSystemBackend
from .memory import MemoryBackend
from .redis import DEFAULT_PREFIX, RedisBackend
from .store import CACHE_SIZE, MAX_SIZE, MIN_SIZE, WARN_SIZE, DataStore

#: Every ``STATEMGR_STORE*`` key with its default: the one place these
#: defaults are written.
CONFIG_DEFAULTS: cabc.Mapping[str, t.Any] = types.MappingProxyType(
    {
        "STATEMGR_STORE": "database",
        "STATEMGR_STORE_MIN_SIZE": MIN_SIZE,
        "STATEMGR_STORE_MAX_SIZE": MAX_SIZE,
        "STATEMGR_STORE_WARN_SIZE": WARN_SIZE,
        "STATEMGR_STORE_CACHE_SIZE": CACHE_SIZE,
        "STATEMGR_STORE_REDIS_PREFIX": DEFAULT_PREFIX,
    }
)

_REDIS_SCHEMES = frozenset(("redis", "rediss", "unix"))


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
    (default 1024, 0 disables the cache). A key left out takes its default
    from :data:`CONFIG_DEFAULTS`.

    :raise ValueError: ``STATEMGR_STORE`` is not one of these.
    """

    def setting(key: str) -> t.Any:
        return config.get(key, CONFIG_DEFAULTS[key])

    return DataStore(
        _backend(setting("STATEMGR_STORE"), setting("STATEMGR_STORE_REDIS_PREFIX"), session_getter),
        min_size=int(setting("STATEMGR_STORE_MIN_SIZE")),
        max_size=int(setting("STATEMGR_STORE_MAX_SIZE")),
        warn_size=int(setting("STATEMGR_STORE_WARN_SIZE")),
        cache_size=int(setting("STATEMGR_STORE_CACHE_SIZE")),
    )


def _backend(spec: t.Any, redis_prefix: str, session_getter: t.Callable[[], Executor] | None) -> StoreBackend:
    if isinstance(spec, StoreBackend):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"STATEMGR_STORE must be a string, not {spec!r}")
    if spec == "database":
        return DatabaseBackend(session_getter)
    if spec == "memory":
        return MemoryBackend()
    scheme = spec.partition("://")[0].lower() if "://" in spec else ""
    if scheme in _REDIS_SCHEMES:
        return RedisBackend(spec, redis_prefix)
    return FileSystemBackend(_directory(spec, scheme))


def _directory(spec: str, scheme: str) -> str:
    """The absolute directory a ``file:`` URL or a path names."""
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
    return spec
