"""What damaged stored data does: a corrupt or missing blob costs the
records that use it their payload (listed as unreadable, logged at ERROR)
and nothing else; ``flask statemgr verify`` finds every such blob, as
``git fsck`` does. And who may read a history at all (``can_view_history``).
"""

from __future__ import annotations

import logging
import typing as t

import pytest
import sqlalchemy as sa
from reliability_app import Document, db

from flask_statemgr.tables import blob_table, history_table

API = "/_statemgr/objects"
ALICE = {"X-User": "alice"}
#: with STATEMGR_STORE_MIN_SIZE=64, a summary this long is a blob of its own
NOTE = "a summary long enough to be stored as a blob of its own " * 3
App = t.Callable[..., t.Any]


def submitted(secured: App, *documents: int, **config: t.Any) -> t.Any:
    """The secured app whose ``documents`` (alice's: 1 and 2) were submitted
    with the same long summary, so they share one blob."""
    app = secured(STATEMGR_STORE_MIN_SIZE=64, **config)
    client = app.test_client()
    for ident in documents:
        response = client.post(
            f"{API}/document/{ident}/state/submit", headers=ALICE, json={"summary": NOTE, "pages": ident}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
    return app


def damage(app: t.Any, change: t.Callable[[bytes], bytes | None]) -> str:
    """Change the one stored blob (``None`` deletes it) behind the app's
    back, and return its key."""
    with app.app_context():
        [(key, data)] = db.session.execute(sa.select(blob_table.c.key, blob_table.c.data)).all()
        changed = change(bytes(data))
        where = blob_table.c.key == key
        if changed is None:
            db.session.execute(sa.delete(blob_table).where(where))
        else:
            db.session.execute(sa.update(blob_table).where(where).values(data=changed))
        db.session.commit()
        db.session.remove()
    return t.cast(str, key)


def flip(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


@pytest.mark.parametrize(
    ("change", "error"), [(flip, "corrupt"), (lambda data: None, "missing")], ids=["flipped", "deleted"]
)
def test_a_damaged_shared_blob_costs_each_record_its_payload_only(
    secured: App, caplog: pytest.LogCaptureFixture, change: t.Callable[[bytes], bytes | None], error: str
) -> None:
    # no cache: every read goes to the blob, as in a worker that never saw it
    app = submitted(secured, 1, 2, STATEMGR_STORE_CACHE_SIZE=0)
    client = app.test_client()
    assert (
        client.post(
            f"{API}/document/1/state/reject", headers={"X-User": "bob"}, json={"reason": "too short"}
        ).status_code
        == 200
    )
    key = damage(app, change)
    with caplog.at_level(logging.ERROR, logger="flask_statemgr.history"):
        first = client.get(f"{API}/document/1/history", headers=ALICE)
        second = client.get(f"{API}/document/2/history", headers=ALICE)
    assert first.status_code == second.status_code == 200
    records = first.get_json()["records"] + second.get_json()["records"]
    assert [(r["object_id"], r["transition"], r["payload"], r["payload_error"]) for r in records] == [
        ("1", "submit", None, error),
        ("1", "reject", {"reason": "too short"}, None),
        ("2", "submit", None, error),
    ]
    logged = [r for r in caplog.records if r.name == "flask_statemgr.history"]
    assert [r.levelno for r in logged] == [logging.ERROR, logging.ERROR]
    assert all(key in r.getMessage() for r in logged)


def verify(app: t.Any) -> t.Any:
    return app.test_cli_runner().invoke(args=["statemgr", "verify"])


def test_verify_passes_a_sound_store(secured: App) -> None:
    app = submitted(secured, 1, 2)
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert result.output == "blobs: 1, referenced: 1, problems: 0\n"


def test_verify_lists_a_corrupt_blob_and_the_records_using_it(secured: App) -> None:
    app = submitted(secured, 1, 2)
    key = damage(app, flip)
    result = verify(app)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"corrupt blob {key} (records 1, 2)",
        "blobs: 1, referenced: 1, problems: 1",
    ]


def test_verify_lists_a_missing_blob_and_a_damaged_record(secured: App) -> None:
    app = submitted(secured, 1, 2)
    key = damage(app, lambda data: None)
    with app.app_context():
        db.session.execute(sa.update(history_table).where(history_table.c.id == 2).values(payload=b"\xc1\x02\xff"))
        db.session.commit()
        db.session.remove()
    result = verify(app)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"missing blob {key} (records 1)",
        "corrupt payload in record 2",
        "blobs: 0, referenced: 1, problems: 2",
    ]


def test_verify_rehashes_past_the_cache(secured: App) -> None:
    app = submitted(secured, 1)
    # read once, so the worker's cache holds the sound value
    assert app.test_client().get(f"{API}/document/1/history", headers=ALICE).get_json()["records"][0]["payload"]
    damage(app, flip)
    assert verify(app).exit_code == 1


# -- can_view_history ----------------------------------------------------------


def test_history_is_for_signed_in_users_by_default(secured: App) -> None:
    app = submitted(secured, 1)
    client = app.test_client()
    # anyone may view document 1 (its folder is public)
    assert client.get(f"{API}/document/1").status_code == 200
    anonymous = client.get(f"{API}/document/1/history")
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"
    assert "user_id" not in anonymous.get_data(as_text=True)
    carol = client.get(f"{API}/document/1/history", headers={"X-User": "carol"})
    assert carol.status_code == 200 and carol.get_json()["records"][0]["payload"]["pages"] == 1


def test_can_view_history_decides_for_viewable_objects(secured: App) -> None:
    app = submitted(secured, 1)
    statemgr = app.extensions["statemgr"]
    asked = []

    def authors_only(obj: Document, user: t.Any) -> bool:
        asked.append((obj.id, user and user.name))
        return user is not None and user.id == obj.author_id

    statemgr.expose(Document, name="document", can_view_history=authors_only)
    try:
        client = app.test_client()
        assert client.get(f"{API}/document/1/history", headers=ALICE).status_code == 200
        refused = client.get(f"{API}/document/1/history", headers={"X-User": "carol"})
        assert refused.status_code == 403 and refused.get_json()["detail"] == "You may not read this history"
        assert client.get(f"{API}/document/1/history").status_code == 401
        # an object the user may not view stays a 404, without asking
        assert client.get(f"{API}/document/3/history", headers=ALICE).status_code == 404
        assert asked == [(1, "alice"), (1, "carol"), (1, None)]
    finally:
        statemgr.expose(Document, name="document")
