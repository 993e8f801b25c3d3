"""What a backend of the store is: :class:`StoreBackend`, and what every
backend shares."""

from __future__ import annotations

import abc
import collections.abc as cabc
import dataclasses
import datetime as dt
import logging
import typing as t

import sqlalchemy as sa

# not ``from sqlalchemy import orm``: pyright --verifytypes then types
# the session aliases below as unknown (microsoft/pyright#11196)
import sqlalchemy.orm as orm

#: Where the store logs; one logger for the whole package, which operators
#: configure by this name.
logger: logging.Logger = logging.getLogger("flask_statemgr.store")

#: What runs the database backend's SQL: a session, a scoped session such as
#: Flask-SQLAlchemy's ``db.session``, or a connection.
Executor = t.Union[orm.Session, "orm.scoped_session[orm.Session]", sa.Connection]

#: What :class:`~flask_statemgr.exceptions.StoreUnavailable` says; the
#: backends log where they failed to connect, since a client has no use for
#: the store's host and port.
UNAVAILABLE = "The payload store is unavailable; try again later"

#: A blob that already exists gets its created time moved to now when it is
#: written again and is older than this; see :meth:`StoreBackend.write`.
FRESHEN_AFTER = dt.timedelta(minutes=10)

#: Batches for statements that name many keys, under every database's limit
#: on bound parameters.
BATCH = 500

_T = t.TypeVar("_T")


def batches(items: cabc.Iterable[_T]) -> cabc.Iterator[list[_T]]:
    """``items`` in lists of at most :data:`BATCH`."""
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclasses.dataclass(frozen=True)
class BlobInfo:
    """A stored blob, as :meth:`StoreBackend.scan` lists it."""

    #: ``"sha256:" + hex``
    key: str
    #: Length of the stored bytes.
    size: int
    #: When it was stored, or last freshened (aware, UTC).
    created_at: dt.datetime


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

    def close(self) -> None:  # noqa: B027 - not abstract: most backends hold none
        """Release connections the backend holds."""
