"""The content-hash data store that keeps transition payloads.

- :mod:`~flask_statemgr.store.framing`: the bytes handed out, inline or a
  frame (a reference, a payload);
- :mod:`~flask_statemgr.store.backend`: what a backend is, and
  :mod:`~flask_statemgr.store.memory`,
  :mod:`~flask_statemgr.store.filesystem`,
  :mod:`~flask_statemgr.store.redis` and
  :mod:`~flask_statemgr.store.database`, one backend each;
- :mod:`~flask_statemgr.store.cache`: the LRU of resolved blobs;
- :mod:`~flask_statemgr.store.store`: :class:`DataStore`, which serializes,
  resolves, collects garbage and verifies;
- :mod:`~flask_statemgr.store.config`: :func:`create_store` from an app's
  config.
"""

from __future__ import annotations

from .backend import FRESHEN_AFTER, UNAVAILABLE, BlobInfo, Executor, StoreBackend
from .cache import BlobCache
from .config import CONFIG_DEFAULTS, create_store
from .database import DatabaseBackend
from .filesystem import FileSystemBackend
from .framing import check_key
from .memory import MemoryBackend
from .redis import RedisBackend
from .store import DataStore, GCResult, KiB, MiB, VerifyResult

__all__ = [
    "CONFIG_DEFAULTS",
    "FRESHEN_AFTER",
    "UNAVAILABLE",
    "BlobCache",
    "BlobInfo",
    "DataStore",
    "DatabaseBackend",
    "Executor",
    "FileSystemBackend",
    "GCResult",
    "KiB",
    "MemoryBackend",
    "MiB",
    "RedisBackend",
    "StoreBackend",
    "VerifyResult",
    "check_key",
    "create_store",
]
