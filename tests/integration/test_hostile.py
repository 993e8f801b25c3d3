"""Hostile input through the JSON API and the default pages, on SQLite and
PostgreSQL: every refusal is a clear error (``application/problem+json``
from the API, an HTML page from the pages) and writes nothing; crafted
stored data is refused without exhausting memory; whatever the server
echoes is escaped."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import struct
import tracemalloc
import typing as t
from pathlib import Path

import msgpack
import pytest
import sqlalchemy as sa
from bombs import BOMBS
from reliability_app import Document, Folder, db
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from flask_statemgr.api import coerce_identity
from flask_statemgr.exceptions import BlobNotFound, CorruptBlobError
from flask_statemgr.store import DataStore, FileSystemBackend
from flask_statemgr.tables import history_table

API = "/_statemgr/objects"
PAGES = "/_statemgr/pages"
SUBMIT = f"{API}/document/1/state/submit"
ALICE = {"X-User": "alice"}
LIMIT = 16 * 1024
Snapshot = t.Callable[[t.Any], dict[str, t.Any]]
App = t.Callable[..., t.Any]


def assert_problem(response: t.Any, status: int, detail: str | None = None) -> dict[str, t.Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, t.Any] = response.get_json()
    assert body["status"] == status and body["type"].startswith("urn:statemgr:problem:")
    assert body["title"] and body["detail"]
    if detail is not None:
        assert detail in body["detail"]
    return body


def refused(app: t.Any, snapshot: Snapshot, send: t.Callable[[t.Any], t.Any]) -> t.Any:
    """Send a request and show it changed nothing: no state, column,
    history record or blob."""
    before = snapshot(app)
    response = send(app.test_client())
    assert snapshot(app) == before
    return response


MALFORMED = {
    "truncated": b'{"summary": "x"',
    "not an object": b"[1, 2]",
    "a string": b'"text"',
    "null": b"null",
    "NaN": b'{"pages": NaN}',
    "Infinity": b'{"pages": -Infinity}',
    "bad UTF-8": b'{"summary": "\xff\xfe"}',
    "deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "trailing data": b'{"summary": "x"} {}',
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_json(secured: App, snapshot: Snapshot, body: bytes) -> None:
    app = secured(MAX_CONTENT_LENGTH=1024 * 1024)
    response = refused(
        app, snapshot, lambda c: c.post(SUBMIT, headers=ALICE, data=body, content_type="application/json")
    )
    assert_problem(response, 400)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/vnd.api+json", "application/octet-stream", "text/json", None],
)
def test_wrong_content_types(secured: App, snapshot: Snapshot, content_type: str | None) -> None:
    app = secured()
    body = b'{"summary": "x"}'
    response = refused(app, snapshot, lambda c: c.post(SUBMIT, headers=ALICE, data=body, content_type=content_type))
    assert_problem(response, 415, "Send JSON")


def test_bodies_over_max_content_length(secured: App, snapshot: Snapshot) -> None:
    app = secured(MAX_CONTENT_LENGTH=LIMIT)
    big = "x" * LIMIT
    sends = [
        lambda c: c.post(SUBMIT, headers=ALICE, json={"summary": big}),
        lambda c: c.post(SUBMIT, headers=ALICE, data={"summary": big}),
        lambda c: c.post(SUBMIT, headers=ALICE, data={"summary": big}, content_type="multipart/form-data"),
    ]
    for send in sends:
        assert_problem(refused(app, snapshot, send), 413)
    page = refused(
        app, snapshot, lambda c: c.post(f"{PAGES}/document/1/state/submit", headers=ALICE, data={"summary": big})
    )
    assert page.status_code == 413
    # just under the limit is read (and refused by the form: 4000 at most)
    under = refused(app, snapshot, lambda c: c.post(SUBMIT, headers=ALICE, json={"summary": "x" * (LIMIT - 100)}))
    assert assert_problem(under, 422)["errors"].keys() == {"summary"}


class Body(io.RawIOBase):
    """A request body of ``size`` bytes, made only as it is read; counts what
    the server read."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b" " * n
        self.left -= n
        self.read_bytes += n
        return n


#: the size of the body that took a worker from 72 MB to 959 MB before
HUGE = 300 * 1024 * 1024


def send_huge(
    app: t.Any, path: str, user: str | None, *, length: bool = True, form: bool = False
) -> tuple[t.Any, Body, int]:
    """POST a 300 MB body (with its Content-Length, or chunked without
    one); the response, the body and the peak of memory allocated meanwhile."""
    body = Body(HUGE)
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    environ = EnvironBuilder(
        path, method="POST", headers={"X-User": user} if user else {}, content_type=content_type
    ).get_environ()
    environ["wsgi.input"] = body
    if length:
        environ["CONTENT_LENGTH"] = str(HUGE)
    else:
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        # what gunicorn says of a chunked body it decodes
        environ["wsgi.input_terminated"] = True
    tracemalloc.start()
    try:
        response = app.test_client().open(Request(environ))
        response.get_data()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, body, peak


@pytest.mark.parametrize(
    ("path", "user", "status"),
    [
        (SUBMIT, None, 401),  # anonymous
        (SUBMIT, "carol", 403),  # not the author
        (f"{API}/document/1/state/publish", "bob", 409),  # not in review
        (f"{API}/document/3/state/submit", "alice", 404),  # hidden from her
        (SUBMIT, "alice", 413),  # allowed: the body is over the limit
    ],
)
def test_a_huge_body_is_refused_before_it_is_read(
    secured: App, snapshot: Snapshot, path: str, user: str | None, status: int
) -> None:
    app = secured()  # no MAX_CONTENT_LENGTH: STATEMGR_STORE_MAX_SIZE bounds bodies
    before = snapshot(app)
    response, body, peak = send_huge(app, path, user)
    problem = assert_problem(response, status)
    if status == 413:
        assert problem["detail"] == f"The body is larger than {16 * 1024 * 1024} bytes (STATEMGR_STORE_MAX_SIZE)"
    assert body.read_bytes == 0
    assert peak < 2 * 1024 * 1024
    assert snapshot(app) == before


def test_a_huge_body_to_a_page_is_refused_before_it_is_read(secured: App) -> None:
    app = secured()
    for user, status in [(None, 401), ("alice", 413)]:
        response, body, peak = send_huge(app, f"{PAGES}/document/1/state/submit", user, form=True)
        assert response.status_code == status
        assert body.read_bytes == 0 and peak < 2 * 1024 * 1024


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_a_huge_body_without_a_length_is_read_up_to_the_limit_only(secured: App, form: bool) -> None:
    app = secured(MAX_CONTENT_LENGTH=LIMIT)
    response, body, peak = send_huge(app, SUBMIT, "alice", length=False, form=form)
    assert_problem(response, 413)
    # read in chunks of at most 64 KiB until over the limit
    assert LIMIT < body.read_bytes <= LIMIT + 64 * 1024
    assert peak < 2 * 1024 * 1024


def test_payload_over_store_max_size(secured: App, snapshot: Snapshot) -> None:
    # a body limit of its own, so that the body is read and the payload weighed
    app = secured(STATEMGR_STORE_MIN_SIZE=64, STATEMGR_STORE_MAX_SIZE=256, MAX_CONTENT_LENGTH=LIMIT)
    response = refused(app, snapshot, lambda c: c.post(SUBMIT, headers=ALICE, json={"summary": "x" * 1000}))
    assert_problem(response, 413, "STATEMGR_STORE_MAX_SIZE")
    ok = app.test_client().post(SUBMIT, headers=ALICE, json={"summary": "x" * 100})
    assert ok.status_code == 200


UNKNOWN = [
    "nothing/1/state/submit",
    "Document/1/state/submit",
    "document/1/nothing/submit",
    "document/1/_state/submit",
    "document/1/__class__/submit",
    "document/1/state/nothing",
    "document/1/state/__init__",
    "document/1/state/DRAFT",
]


@pytest.mark.parametrize("path", UNKNOWN)
def test_unknown_models_managers_and_transitions(secured: App, snapshot: Snapshot, path: str) -> None:
    app = secured()
    assert_problem(refused(app, snapshot, lambda c: c.post(f"{API}/{path}", headers=ALICE, json={})), 404)
    page = refused(app, snapshot, lambda c: c.post(f"{PAGES}/{path}", headers=ALICE))
    assert page.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"{API}/document/1/state/archive", 405),
        ("DELETE", f"{API}/document/1", 405),
        ("PUT", "/_statemgr/schema", 405),
        ("GET", f"{API}/document/a%2Fb", 404),
        ("GET", f"{API}/document/1/state/archive/more", 404),
        ("GET", "/_statemgr/nothing", 404),
    ],
)
def test_urls_no_route_matches_are_problems_too(
    secured: App, snapshot: Snapshot, method: str, path: str, status: int
) -> None:
    app = secured()
    response = refused(app, snapshot, lambda c: c.open(path, method=method, headers=ALICE, json={}))
    assert_problem(response, status)
    if status == 405:
        assert response.headers["Allow"]


def test_the_app_and_the_pages_keep_their_own_errors(secured: App) -> None:
    client = secured().test_client()
    for path in ("/nothing", "/_statemgrx/schema", f"{PAGES}/nothing"):
        assert client.get(path).mimetype == "text/html"


IDS = [
    "abc",
    "1.0",
    "1e3",
    "0x1",
    "%2B1",
    "%201",
    "%00",
    "%EF%BC%91",
    "--1",
    "-1",
    "0",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "9" * 30,
    "9" * 5000,
]


@pytest.mark.parametrize("ident", IDS, ids=lambda i: i if len(i) < 20 else f"{len(i)} digits")
def test_non_integer_and_huge_ids(secured: App, snapshot: Snapshot, ident: str) -> None:
    app = secured()
    for method, path in [
        ("GET", f"{API}/document/{ident}"),
        ("GET", f"{API}/document/{ident}/history"),
        ("POST", f"{API}/document/{ident}/state/archive"),
    ]:
        response = refused(app, snapshot, lambda c: c.open(path, method=method, headers=ALICE, json={}))
        assert_problem(response, 404)
    page = refused(app, snapshot, lambda c: c.post(f"{PAGES}/document/{ident}/state/archive", headers=ALICE))
    assert page.status_code == 404


WRONG_TYPES = [
    ({"pages": "many"}, "pages"),
    ({"pages": 1.5}, "pages"),
    ({"pages": True}, "pages"),
    ({"pages": {"n": 3}}, "pages"),
    ({"pages": 10**30}, "pages"),
    ({"pages": -(2**70)}, "pages"),
    ({"summary": "x" * 4001}, "summary"),
    # one value per single-valued field: a list's first would be kept silently
    ({"summary": ["kept", "dropped"]}, "summary"),
    ({"summary": ["one"]}, "summary"),
    ({"pages": [3, 4]}, "pages"),
]


@pytest.mark.parametrize(("body", "field"), WRONG_TYPES)
def test_payloads_of_unexpected_types(secured: App, snapshot: Snapshot, body: dict[str, t.Any], field: str) -> None:
    app = secured()
    response = refused(app, snapshot, lambda c: c.post(SUBMIT, headers=ALICE, json=body))
    problem = assert_problem(response, 422)
    assert list(problem["errors"]) == [field]
    assert all(isinstance(m, str) and m for m in problem["errors"][field])


def test_a_number_for_a_text_field_is_refused(secured: App, snapshot: Snapshot) -> None:
    # the form's JSON Schema says string: a JSON client must send one, so
    # that what the schema accepts and what the server stores agree
    app = secured()
    response = refused(app, snapshot, lambda c: c.post(SUBMIT, headers=ALICE, json={"summary": 12.5, "pages": 3.0}))
    problem = assert_problem(response, 422)
    assert problem["errors"] == {"summary": ["Not a valid value."]}
    # 3.0 is a JSON integer (JSON Schema reads the number, not its spelling)
    assert app.test_client().post(SUBMIT, headers=ALICE, json={"summary": "12.5", "pages": 3.0}).status_code == 200
    assert stored_payloads(app) == [3, {"summary": "12.5", "pages": 3}]


#: the reject hook below writes the reason to a text column
UNSTORABLE = {"NUL": "long enough\x00reason", "lone surrogate": "long enough \ud800 reason"}


@pytest.fixture
def reason_to_column() -> t.Iterator[None]:
    """Make rejecting a document write its reason to its ``embargo`` text
    column, from inside the transition, as an execute hook would."""
    from reliability_app import DocumentState

    from flask_statemgr import transition_before

    def write(sender: t.Any, obj: Document, data: dict[str, t.Any], **kwargs: t.Any) -> None:
        obj.embargo = data["reason"][:200]
        db.session.flush()

    with transition_before.connected_to(write, sender=DocumentState.reject):
        yield


@pytest.mark.usefixtures("reason_to_column")
@pytest.mark.parametrize("reason", UNSTORABLE.values(), ids=UNSTORABLE.keys())
def test_text_the_database_cannot_store_is_422_naming_the_field(secured: App, snapshot: Snapshot, reason: str) -> None:
    app = secured()
    client = app.test_client()
    assert client.post(SUBMIT, headers=ALICE, json={}).status_code == 200
    reject = f"{API}/document/1/state/reject"
    bob = {"X-User": "bob"}
    sends = [lambda c: c.post(reject, headers=bob, json={"reason": reason})]
    if "\x00" in reason:
        # a lone surrogate cannot even be sent as UTF-8 in a form
        sends.append(lambda c: c.post(reject, headers=bob, data={"reason": reason}))
    for send in sends:
        problem = assert_problem(refused(app, snapshot, send), 422, "reason: Holds a")
        assert list(problem["errors"]) == ["reason"]
    if "\x00" in reason:
        page = refused(
            app, snapshot, lambda c: c.post(f"{PAGES}/document/1/state/reject", headers=bob, data={"reason": reason})
        )
        assert page.status_code == 422
        assert '<p class="statemgr-error" data-field="reason">Holds a NUL character' in page.get_data(as_text=True)
    # what can be stored goes through, hook and all
    assert client.post(reject, headers=bob, json={"reason": "a fine reason"}).status_code == 200
    with app.app_context():
        assert db.session.get_one(Document, 1).embargo == "a fine reason"
        db.session.remove()


def test_unstorable_text_is_found_at_any_depth_and_in_keys() -> None:
    from flask_statemgr.storable import NUL_MESSAGE, SURROGATE_MESSAGE, unstorable_text

    deep: t.Any = "\x00"
    for _ in range(5000):
        deep = [deep]
    found = unstorable_text({"ok": "fine", "a": {"b\ud800": 1, "c": ["x", "y\x00"]}, "deep": deep})
    assert found == {
        "a.b\ud800": [SURROGATE_MESSAGE],
        "a.c.1": [NUL_MESSAGE],
        "deep" + ".0" * 5000: [NUL_MESSAGE],
    }


@pytest.mark.parametrize(
    ("data", "field"), [({"pages": "many"}, "pages"), ({"pages": "0"}, "pages"), ({"summary": "x" * 4001}, "summary")]
)
def test_pages_refuse_invalid_form_data(secured: App, snapshot: Snapshot, data: dict[str, str], field: str) -> None:
    app = secured()
    page = refused(app, snapshot, lambda c: c.post(f"{PAGES}/document/1/state/submit", headers=ALICE, data=data))
    assert page.status_code == 422
    assert f'<p class="statemgr-error" data-field="{field}">' in page.get_data(as_text=True)


def test_reject_reason_of_the_wrong_type_is_422(secured: App, snapshot: Snapshot) -> None:
    app = secured()
    client = app.test_client()
    assert client.post(SUBMIT, headers=ALICE, json={}).status_code == 200
    for reason in (None, "", [], ["ab", "long enough"], "ab"):
        response = refused(
            app,
            snapshot,
            lambda c: c.post(f"{API}/document/1/state/reject", headers={"X-User": "bob"}, json={"reason": reason}),
        )
        assert list(assert_problem(response, 422)["errors"]) == ["reason"]


def stored_payloads(app: t.Any) -> list[t.Any]:
    with app.app_context():
        records = app.test_client().get(f"{API}/document/1/history", headers=ALICE).get_json()["records"]
        pages = db.session.get_one(Document, 1).pages
        db.session.remove()
    return [pages, *(r["payload"] for r in records)]


def test_extra_fields_of_a_form_are_not_stored(secured: App) -> None:
    app = secured()
    client = app.test_client()
    extra = {"summary": "ok", "pages": 3, "author_id": 2, "_state": 4, "__proto__": {"x": 1}, "confirm": True}
    assert client.post(SUBMIT, headers=ALICE, json=extra).status_code == 200
    assert (
        client.post(
            f"{API}/document/1/state/reject", headers={"X-User": "bob"}, json={"reason": "again", "pages": 9}
        ).status_code
        == 200
    )
    form = {"summary": "form", "pages": "4", "csrf_token": "x", "confirm": "yes", "embargo": "forever"}
    assert client.post(SUBMIT, headers=ALICE, data=form).status_code == 200
    assert stored_payloads(app) == [
        4,
        {"summary": "ok", "pages": 3},
        {"reason": "again"},
        {"summary": "form", "pages": 4},
    ]
    with app.app_context():
        document = db.session.get_one(Document, 1)
        assert (document.author_id, document.embargo) == (1, None)
        db.session.remove()


def test_a_transition_without_a_form_keeps_the_body_as_sent(secured: App) -> None:
    # documented: with no form there is no schema to hold the body to, so the
    # JSON object is the payload (within the size limits), never a column
    app = secured()
    client = app.test_client()
    body = {"note": "<b>why</b>", "author_id": 2, "nested": {"a": [1, 2]}}
    assert client.post(f"{API}/document/1/state/archive", headers=ALICE, json=body).status_code == 200
    assert stored_payloads(app) == [None, body]
    with app.app_context():
        assert db.session.get_one(Document, 1).author_id == 1


def nested(depth: int) -> list[t.Any]:
    value: list[t.Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "detail"),
    [({"deep": nested(70)}, "nested deeper than 64 levels"), ({"text": "\ud800"}, "not valid Unicode")],
    ids=["too deep", "lone surrogate"],
)
def test_a_formless_payload_that_cannot_be_stored(
    secured: App, snapshot: Snapshot, body: dict[str, t.Any], detail: str
) -> None:
    app = secured()
    response = refused(app, snapshot, lambda c: c.post(f"{API}/document/1/state/archive", headers=ALICE, json=body))
    assert_problem(response, 422, detail)


@pytest.mark.parametrize("confirm", [1, 0, None, [True], {"yes": True}, 1.0])
def test_confirm_of_a_wrong_type(secured: App, snapshot: Snapshot, confirm: t.Any) -> None:
    app = secured()
    response = refused(
        app, snapshot, lambda c: c.post(f"{API}/folder/1/state/archive", headers=ALICE, json={"confirm": confirm})
    )
    assert_problem(response, 400, "confirm must be true or false")


def test_csrf_missing_or_wrong(secured: App, snapshot: Snapshot) -> None:
    from flask_wtf.csrf import generate_csrf

    app = secured(WTF_CSRF_ENABLED=True)
    app.add_url_rule("/token", "token", generate_csrf)
    other = app.test_client()
    stolen = other.get("/token").get_data(as_text=True)
    sends = {
        "missing": lambda c: c.post(SUBMIT, headers=ALICE, json={}),
        "forged": lambda c: c.post(SUBMIT, headers={**ALICE, "X-CSRFToken": "forged"}, json={}),
        "another session's": lambda c: c.post(SUBMIT, headers={**ALICE, "X-CSRFToken": stolen}, json={}),
        "in the JSON body": lambda c: c.post(SUBMIT, headers=ALICE, json={"csrf_token": stolen}),
        "form without": lambda c: c.post(SUBMIT, headers=ALICE, data={"summary": "x"}),
    }
    for send in sends.values():
        assert_problem(refused(app, snapshot, send), 400, "CSRF")
    page = refused(
        app, snapshot, lambda c: c.post(f"{PAGES}/document/1/state/submit", headers=ALICE, data={"summary": "x"})
    )
    assert page.status_code == 400
    # the same request with the client's own token goes through
    client = app.test_client()
    token = client.get("/token").get_data(as_text=True)
    assert client.post(SUBMIT, headers={**ALICE, "X-CSRFToken": token}, json={}).status_code == 200


# -- crafted stored data -------------------------------------------------------


def reference(blob: bytes) -> bytes:
    """A reference frame (see flask_statemgr.store) to ``blob``."""
    return b"\xc1\x01" + hashlib.sha256(blob).digest() + struct.pack(">I", len(blob))


def payload(**entries: bytes) -> bytes:
    return b"\xc1\x02" + t.cast(bytes, msgpack.packb(entries, use_bin_type=True))


@pytest.fixture
def file_store(tmp_path: Path) -> DataStore:
    return DataStore(FileSystemBackend(tmp_path / "blobs"))


@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_stored_bombs_are_refused_within_little_memory(file_store: DataStore, bomb: bytes) -> None:
    # written under their true key, so the content hash matches: only the
    # unpacking limits stand between them and the process's memory
    file_store.backend.write(f"sha256:{hashlib.sha256(bomb).hexdigest()}", bomb)
    for data in (bomb, reference(bomb), payload(field=bomb), payload(field=reference(bomb))):
        tracemalloc.start()
        try:
            with pytest.raises(CorruptBlobError):
                file_store.resolve(data)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # they claim up to 4 GiB; refusing one takes at most about 1.7 MiB
        assert peak < 4 * 1024 * 1024


def test_references_cannot_leave_the_blob_directory(tmp_path: Path) -> None:
    store = DataStore(FileSystemBackend(tmp_path / "blobs"))
    secret = tmp_path / "secret"
    secret.write_bytes(msgpack.packb("secret"))
    # a reference names a binary digest, so no path can be spelled in it
    traversal = b"\xc1\x01" + b"../../secret".ljust(32, b"\x00") + struct.pack(">I", 8)
    with pytest.raises(BlobNotFound, match=r"sha256:[0-9a-f]{64}"):
        store.resolve(traversal)
    # a blob file replaced by a link to another file does not match its hash
    store.backend.write(f"sha256:{hashlib.sha256(b'x' * 9).hexdigest()}", b"x" * 9)
    (blob,) = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    blob.unlink()
    blob.symlink_to(secret)
    with pytest.raises(CorruptBlobError, match="does not match its content hash"):
        store.resolve(reference(b"x" * 9))


def test_a_crafted_history_record_is_listed_as_corrupt(secured: App, caplog: pytest.LogCaptureFixture) -> None:
    app = secured()
    client = app.test_client()
    assert client.post(SUBMIT, headers=ALICE, json={"summary": "s"}).status_code == 200
    bomb = BOMBS["map32"]
    crafted = payload(summary=reference(bomb))
    with app.app_context():
        # the app's own store: the database backend, in this transaction
        store = app.extensions["statemgr"].store
        store.backend.write(f"sha256:{hashlib.sha256(bomb).hexdigest()}", bomb)
        db.session.execute(sa.update(history_table).values(payload=crafted))
        db.session.commit()
        with pytest.raises(CorruptBlobError, match="max_map_len"):
            store.resolve(crafted)
        db.session.remove()
    with caplog.at_level(logging.ERROR, logger="flask_statemgr.history"):
        response = client.get(f"{API}/document/1/history", headers=ALICE)
    assert response.status_code == 200
    [record] = response.get_json()["records"]
    assert (record["transition"], record["payload"], record["payload_error"]) == ("submit", None, "corrupt")
    [logged] = [r for r in caplog.records if r.name == "flask_statemgr.history"]
    assert logged.levelno == logging.ERROR and "max_map_len" in logged.getMessage()
    # the error is the record's alone: the object and other calls still work
    assert client.get(f"{API}/document/1", headers=ALICE).status_code == 200


# -- output safety ---------------------------------------------------------------

MARKUP = '<img src=x onerror="alert(1)">'


def test_pages_escape_titles_descriptions_reasons_and_values(secured: App) -> None:
    app = secured()
    client = app.test_client()
    with app.app_context():
        db.session.get_one(Folder, 1).name = MARKUP
        document = db.session.get_one(Document, 1)
        document.title, document.embargo = MARKUP, MARKUP
        db.session.commit()
    assert client.post(SUBMIT, headers=ALICE, json={}).status_code == 200
    shown = [
        # the lock transition's own title and description hold markup
        client.get(f"{PAGES}/folder/1/state/lock", headers=ALICE),
        # the publish precondition's reason echoes the embargo
        client.get(f"{PAGES}/document/1/state/publish", headers={"X-User": "bob"}),
        # a refused form shows the values sent back
        client.post(f"{PAGES}/document/1/state/reject", headers={"X-User": "bob"}, data={"reason": "<b"}),
        # the flash naming it, after the redirect to the next page
        client.post(
            f"{PAGES}/folder/1/state/lock",
            headers=ALICE,
            data={"next": f"{PAGES}/folder/1/state/unlock"},
            follow_redirects=True,
        ),
    ]
    assert [r.status_code for r in shown] == [200, 409, 422, 200]
    html = [r.get_data(as_text=True) for r in shown]
    for page in html:
        assert not re.search(r"<(img|b)[\s>]", page), page
    escaped = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"
    assert "<h1>Lock &lt;b&gt;&amp;&lt;/b&gt; freeze</h1>" in html[0]
    assert f"<p>{escaped}</p>" in html[0]  # the description
    assert f'<p class="statemgr-object">{escaped}</p>' in html[1]  # the label
    assert f'<li data-code="precondition">Embargoed: {escaped}</li>' in html[1]
    assert "&lt;b</textarea>" in html[2]
    assert "Lock &lt;b&gt;&amp;&lt;/b&gt; freeze: done</p>" in html[3]


def test_the_js_client_never_parses_server_strings_as_html() -> None:
    # test_browser.py shows it in Chromium for titles and reasons; this keeps
    # every other path (descriptions, labels, messages) from growing one
    source = (Path(__file__).parents[2] / "static" / "statemgr.js").read_text()
    assert not re.search(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser", source
    )


def test_identities_a_database_would_refuse_are_none() -> None:
    class Base(orm.DeclarativeBase):
        pass

    class Tag(Base):
        __tablename__ = "tag"
        name: Mapped[str] = mapped_column(primary_key=True)

    # PostgreSQL refuses NUL in a string parameter, and an INTEGER column a
    # value over 32 bits, with an error rather than no row
    assert coerce_identity(Tag, "a\x00b") is None
    assert coerce_identity(Tag, "a b") == "a b"
    assert coerce_identity(Document, "2147483648", "postgresql") is None
    assert coerce_identity(Document, "2147483647", "postgresql") == 2**31 - 1
    assert coerce_identity(Document, "2147483648", "sqlite") == 2**31
