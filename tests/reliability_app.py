"""The app of the reliability and security tests: folders of documents owned
by different users, a cascade that can reach other users' documents, hooks
that fail or stop at a gate on demand, and a way to serve it with gunicorn.

It is deliberately hostile in places: a transition title and description
hold markup, and the ``embargo`` column is free text that a precondition
echoes, so the output-safety tests see it rendered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import sqlalchemy as sa
from apps import create_app, database
from flask import Flask, current_app, request
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import Form, IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from flask_statemgr import State, StateManager, StateMgr, Transition

db = database()
#: unhandled errors become 500 responses (not ``TESTING``'s propagation),
#: as they would in production
CONFIG = {"TESTING": False}


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    name: str
    #: reviewers may publish or reject any document but their own
    reviewer: bool = False


ALICE = User(1, "alice", reviewer=True)
BOB = User(2, "bob", reviewer=True)
CAROL = User(3, "carol")
USERS = {u.name: u for u in (ALICE, BOB, CAROL)}


class SubmitForm(Form):
    summary = StringField("Summary", validators=[Length(max=4000)])
    pages = IntegerField("Pages", validators=[Optional(), NumberRange(min=1, max=10_000)])


class RejectForm(Form):
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(min=3, max=4000)])


class FolderState(StateManager):
    OPEN = State(1, "Open")
    LOCKED = State(2, "Locked")
    ARCHIVED = State(3, "Archived")

    lock = Transition(OPEN, LOCKED, "Lock <b>&</b> freeze", '<img src=x onerror="alert(1)">', roles={"owner"})
    unlock = Transition(LOCKED, OPEN, "Unlock", roles={"owner"})
    archive = Transition({OPEN, LOCKED}, ARCHIVED, "Archive", roles={"owner"}, cascade={"documents": "archive"})
    reopen = Transition(ARCHIVED, OPEN, "Reopen", roles={"owner"})


class DocumentState(StateManager):
    DRAFT = State(1, "Draft")
    REVIEW = State(2, "In review")
    PUBLISHED = State(3, "Published")
    ARCHIVED = State(4, "Archived")

    submit = Transition(DRAFT, REVIEW, "Submit", roles={"author"}, form=SubmitForm)
    reject = Transition(REVIEW, DRAFT, "Reject", roles={"reviewer"}, form=RejectForm)
    publish = Transition(REVIEW, PUBLISHED, "Publish", roles={"reviewer"}, requires={"folder.state": FolderState.OPEN})
    archive = Transition({DRAFT, REVIEW, PUBLISHED}, ARCHIVED, "Archive", roles={"author"})
    restore = Transition(ARCHIVED, DRAFT, "Restore", roles={"author"}, requires={"folder.state": FolderState.OPEN})


@DocumentState.publish.permission
def _not_own_work(obj: Document, user: User | None) -> bool:
    return user is not None and obj.author_id != user.id


class Folder(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "rel_folder"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    owner_id: Mapped[int]
    private: Mapped[bool] = mapped_column(default=False)
    _state: Mapped[int] = FolderState.column(default=FolderState.OPEN)
    state = FolderState("_state")
    documents: Mapped[list[Document]] = orm.relationship(back_populates="folder", order_by="Document.id")

    def __str__(self) -> str:
        return self.name or f"Folder {self.id}"

    def roles_for(self, user: User | None) -> set[str]:
        return {"owner"} if user is not None and user.id == self.owner_id else set()

    def can_view(self, user: User | None) -> bool:
        return not self.private or (user is not None and user.id == self.owner_id)


class Document(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "rel_document"
    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(sa.ForeignKey("rel_folder.id"))
    folder: Mapped[Folder] = orm.relationship(back_populates="documents")
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    author_id: Mapped[int]
    #: free text a precondition of publish shows to the user
    embargo: Mapped[str | None] = mapped_column(sa.String(200))
    #: set by the submit hook from the form
    pages: Mapped[int | None]
    #: counted by the archive hook
    archives: Mapped[int] = mapped_column(default=0)
    #: ``"raise"``: the archive hook raises; ``"wait"``: it stops at the gate
    fault: Mapped[str | None] = mapped_column(sa.String(10))
    _state: Mapped[int] = DocumentState.column(default=DocumentState.DRAFT)
    state = DocumentState("_state")

    def __str__(self) -> str:
        return self.title or f"Document {self.id}"

    def roles_for(self, user: User | None) -> set[str]:
        roles = set()
        if user is not None:
            if user.id == self.author_id:
                roles.add("author")
            if user.reviewer:
                roles.add("reviewer")
        return roles

    def can_view(self, user: User | None) -> bool:
        return self.folder.can_view(user) or (user is not None and user.id == self.author_id)

    @DocumentState.submit.precondition
    def _has_title(self) -> bool | str:
        return bool(self.title.strip()) or "A title is required"

    @DocumentState.publish.precondition
    def _not_embargoed(self) -> bool | str:
        return self.embargo is None or f"Embargoed: {self.embargo}"

    @DocumentState.submit.execute
    def _take_pages(self, data: dict[str, t.Any]) -> None:
        self.pages = data.get("pages")

    @DocumentState.archive.execute
    def _count_and_fault(self, data: dict[str, t.Any]) -> None:
        self.archives += 1
        if self.fault == "raise":
            raise RuntimeError(f"archive hook of document {self.id} failed on purpose")
        if self.fault == "wait":
            wait_at_gate()


def wait_at_gate() -> None:
    """Stop while ``RELIABILITY_GATE``/``closed`` exists (at most 30 s), after
    writing this process's id to ``RELIABILITY_GATE``/``entered`` (and, on
    PostgreSQL, the id of the backend serving the transaction to
    ``backend``): the fault tests kill or cut off a worker that is inside a
    transition."""
    gate = current_app.config.get("RELIABILITY_GATE")
    if not gate:
        return
    folder = Path(gate)
    if db.session.get_bind().dialect.name == "postgresql":
        # the backend holding the transaction, for pg_terminate_backend;
        # asked without flushing, so the gate writes nothing of its own
        with db.session.no_autoflush:
            backend = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        (folder / "backend").write_text(str(backend))
    (folder / "entered").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while (folder / "closed").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def setup(app: Flask, statemgr: StateMgr) -> None:
    """Expose folders and documents; the acting user is named by the
    ``X-User`` header."""
    statemgr.expose(Folder, name="folder")
    statemgr.expose(Document, name="document")

    @statemgr.user_loader
    def load_user() -> User | None:
        return USERS.get(request.headers.get("X-User", ""))

    if app.config.get("WTF_CSRF_ENABLED"):
        from flask_wtf import CSRFProtect

        CSRFProtect(app)


def from_environ() -> Flask:
    """The app gunicorn serves: ``RELIABILITY_DATABASE_URL``, and every
    ``STATEMGR_*``/``RELIABILITY_*`` variable as config."""
    config = {k: v for k, v in os.environ.items() if k.startswith(("STATEMGR_", "RELIABILITY_"))}
    app, _ = create_app(sys.modules[__name__], config.pop("RELIABILITY_DATABASE_URL"), **config)
    return app


@dataclasses.dataclass
class Population:
    """Seeded objects: folder ``i`` is owned by ``owners[i]``; ``documents``
    lists (folder index, author id) per document."""

    owners: list[int]
    documents: list[tuple[int, int]]


def seed(population: Population, *, private: t.Collection[int] = ()) -> None:
    """Insert a population (inside an app context) with ids from 1, titled
    so every document may be submitted."""
    folders = [
        Folder(id=i + 1, name=f"Folder {i + 1}", owner_id=owner, private=i in private)
        for i, owner in enumerate(population.owners)
    ]
    db.session.add_all(folders)
    db.session.add_all(
        Document(id=i + 1, folder=folders[f], title=f"Document {i + 1}", author_id=author)
        for i, (f, author) in enumerate(population.documents)
    )
    db.session.commit()


def call(
    base: str, path: str, user: User | None = None, body: t.Any = None, *, timeout: float = 60
) -> tuple[int, str, t.Any]:
    """POST ``body`` as JSON (GET without one) to ``base + path`` as
    ``user``; answer the status, the content type and the decoded body,
    whatever the status."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if user is not None:
        req.add_header("X-User", user.name)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    ctype = headers.get_content_type()
    return status, ctype, json.loads(raw) if ctype.endswith("json") else raw


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(
    database_url: str, *, workers: int, host: str = "127.0.0.1", threads: int = 0, **environ: str
) -> t.Iterator[str]:
    """Serve :func:`from_environ` with gunicorn's sync workers (``gthread``
    ones with ``threads``) on a free port of ``host`` and yield its base
    URL; stop it on exit."""
    port = free_port(host)
    env = {
        **os.environ,
        "RELIABILITY_DATABASE_URL": database_url,
        "PYTHONPATH": str(Path(__file__).parent),
        **environ,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            *(("--worker-class", "gthread", "--threads", str(threads)) if threads else ()),
            "--bind",
            f"{host}:{port}",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
            "reliability_app:from_environ()",
        ],
        env=env,
    )
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_statemgr/schema", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
