"""The backend that keeps one file per blob: :class:`FileSystemBackend`."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import datetime as dt
import os
import re
import tempfile
import time

from .backend import FRESHEN_AFTER, BlobInfo, Executor, StoreBackend
from .framing import check_key

_HEX = re.compile(r"[0-9a-f]{64}")


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

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True) -> None:
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
        for prefix, shard in self._shards():
            for entry in _scandir(shard):
                name = entry.name
                # Skips temporary files and anything else that is not a blob
                # in its right shard.
                if _HEX.fullmatch(name) is None or name[:4] != prefix:
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue
                created_at = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                yield BlobInfo(f"sha256:{name}", stat.st_size, created_at)

    def _shards(self) -> cabc.Iterator[tuple[str, str]]:
        """Each ``ab/cd`` directory: the four hex digits its blobs start
        with, and its path."""
        for first in _scandir(self.directory):
            if first.is_dir() and len(first.name) == 2:
                for second in _scandir(first.path):
                    if second.is_dir() and len(second.name) == 2:
                        yield first.name + second.name, second.path


def _scandir(path: str) -> list[os.DirEntry[str]]:
    # A collection may run while blobs are written and removed.
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except FileNotFoundError:
        return []
