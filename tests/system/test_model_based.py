"""Model-based testing: Hypothesis drives random sequences of transitions
(random users, payloads and cascades, through the Python API and the JSON
API) against a plain-Python reference model of the reliability app's
managers. After every step the database's states and columns, every
``check()`` answer and the history must agree with the reference."""

from __future__ import annotations

import dataclasses
import json
import typing as t

import hypothesis.strategies as st
import pytest
import sqlalchemy as sa
from feed import settled
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from reliability_app import USERS, Document, Folder, User, db

from flask_statemgr import TransitionError, query_history
from flask_statemgr.tables import blob_table, history_table

ACTORS: list[User | None] = [None, *USERS.values()]


@dataclasses.dataclass(frozen=True)
class Rule:
    """One transition as the reference model knows it."""

    sources: frozenset[str]
    target: str
    role: str
    requires_open_folder: bool = False
    form: bool = False


FOLDER_RULES = {
    "lock": Rule(frozenset({"OPEN"}), "LOCKED", "owner"),
    "unlock": Rule(frozenset({"LOCKED"}), "OPEN", "owner"),
    "archive": Rule(frozenset({"OPEN", "LOCKED"}), "ARCHIVED", "owner"),
    "reopen": Rule(frozenset({"ARCHIVED"}), "OPEN", "owner"),
}
DOCUMENT_RULES = {
    "submit": Rule(frozenset({"DRAFT"}), "REVIEW", "author", form=True),
    "reject": Rule(frozenset({"REVIEW"}), "DRAFT", "reviewer", form=True),
    "publish": Rule(frozenset({"REVIEW"}), "PUBLISHED", "reviewer", requires_open_folder=True),
    "archive": Rule(frozenset({"DRAFT", "REVIEW", "PUBLISHED"}), "ARCHIVED", "author"),
    "restore": Rule(frozenset({"ARCHIVED"}), "DRAFT", "author", requires_open_folder=True),
}
RULES = {"folder": FOLDER_RULES, "document": DOCUMENT_RULES}
STATE_VALUES = {
    "folder": {"OPEN": 1, "LOCKED": 2, "ARCHIVED": 3},
    "document": {"DRAFT": 1, "REVIEW": 2, "PUBLISHED": 3, "ARCHIVED": 4},
}
CLASS_NAMES = {"folder": "Folder", "document": "Document"}


@dataclasses.dataclass
class RefFolder:
    id: int
    owner: int
    private: bool
    state: str = "OPEN"


@dataclasses.dataclass
class RefDocument:
    id: int
    folder: RefFolder
    author: int
    title: str
    embargo: str | None
    fault: str | None
    state: str = "DRAFT"
    pages: int | None = None
    archives: int = 0


RefObject = RefFolder | RefDocument


@dataclasses.dataclass
class RefRecord:
    kind: str
    object_id: int
    transition: str
    source: str
    target: str
    user_id: str | None
    payload: dict[str, t.Any] | None
    #: index in the reference history of the record that caused it
    parent: int | None


class Reference:
    """The same rules as reliability_app, written as plain Python."""

    def __init__(self, folders: list[RefFolder], documents: list[RefDocument]) -> None:
        self.folders = folders
        self.documents = documents
        self.history: list[RefRecord] = []

    def objects(self) -> t.Iterator[tuple[str, RefObject]]:
        yield from (("folder", f) for f in self.folders)
        yield from (("document", d) for d in self.documents)

    def can_view(self, kind: str, obj: t.Any, user: User | None) -> bool:
        folder = obj if kind == "folder" else obj.folder
        if not folder.private or (user is not None and user.id == folder.owner):
            return True
        return kind == "document" and user is not None and user.id == obj.author

    def roles(self, kind: str, obj: t.Any, user: User | None) -> set[str]:
        if user is None:
            return set()
        if kind == "folder":
            return {"owner"} if user.id == obj.owner else set()
        roles = {"author"} if user.id == obj.author else set()
        return roles | {"reviewer"} if user.reviewer else roles

    def role_holders(self, kind: str, obj: t.Any, name: str) -> list[User | None]:
        """The users holding the role ``name`` needs (else anyone)."""
        role = RULES[kind][name].role
        return [u for u in ACTORS if role in self.roles(kind, obj, u)] or ACTORS

    def failure(self, kind: str, obj: t.Any, name: str, user: User | None) -> tuple[int, str] | None:
        """The status and reason code of the first failing check of one step."""
        rule = RULES[kind][name]
        if obj.state not in rule.sources:
            return 409, "state"
        if rule.requires_open_folder and obj.folder.state != "OPEN":
            return 409, "requires"
        denied = 401 if user is None else 403
        if rule.role not in self.roles(kind, obj, user):
            return denied, "permission"
        if name == "publish" and obj.author == user.id:  # type: ignore[union-attr]
            return denied, "permission"
        if name == "submit" and not obj.title.strip():
            return 409, "precondition"
        if name == "publish" and obj.embargo is not None:
            return 409, "precondition"
        return None

    def plan(
        self, kind: str, obj: t.Any, name: str, user: User | None
    ) -> tuple[tuple[int, str] | None, list[tuple[str, t.Any]]]:
        """(the refusal or ``None``, every step in order)."""
        failed = self.failure(kind, obj, name, user)
        if failed is not None:
            return failed, []
        steps: list[tuple[str, t.Any]] = [(kind, obj)]
        if kind == "folder" and name == "archive":
            blocker = None
            for document in (d for d in self.documents if d.folder is obj):
                if document.state == "ARCHIVED":
                    continue
                child = self.failure("document", document, "archive", user)
                if child is None:
                    steps.append(("document", document))
                elif blocker is None:
                    blocker = (child[0], "cascade")
            if blocker is not None:
                return blocker, []
        return None, steps

    def cleaned(self, kind: str, name: str, data: dict[str, t.Any] | None) -> dict[str, t.Any] | None:
        """What the form makes of ``data`` (``None`` when it refuses it)."""
        data = data or {}
        if name == "submit" and kind == "document":
            summary = data.get("summary", "")
            pages = data.get("pages")
            if len(summary) > 4000:
                return None
            # the form's JSON Schema: an integer, not null and not its text
            if "pages" in data and (not isinstance(pages, int) or isinstance(pages, bool) or not 1 <= pages <= 10_000):
                return None
            # unknown fields ("extra") are dropped by the form, never stored
            return {"summary": summary, "pages": pages}
        if name == "reject":
            reason = data.get("reason", "")
            if not reason.strip() or not 3 <= len(reason) <= 4000:
                return None
            return {"reason": reason}
        # a NUL no database stores, in a key or a value, is a field error
        return None if _holds_nul(data) else dict(data)

    def apply(self, steps: list[tuple[str, t.Any]], name: str, user: User | None, data: dict[str, t.Any]) -> None:
        root = len(self.history)
        for i, (kind, obj) in enumerate(steps):
            transition = name if i == 0 else "archive"
            target = RULES[kind][transition].target
            self.history.append(
                RefRecord(
                    kind,
                    obj.id,
                    transition,
                    obj.state,
                    target,
                    None if user is None else str(user.id),
                    (data or None) if i == 0 else None,
                    None if i == 0 else root,
                )
            )
            obj.state = target
            if kind == "document" and transition == "archive":
                obj.archives += 1
            if kind == "document" and transition == "submit":
                obj.pages = data["pages"]


def _holds_nul(value: t.Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_holds_nul, value))


text = st.sampled_from(["", "  ", "ok", "Not good enough", "<script>alert(1)</script>", "ü" * 700, "x" * 1500])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
free_payloads = st.none() | st.dictionaries(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=8).filter(lambda k: k != "confirm"),
    json_values,
    max_size=3,
)
submit_payloads = st.fixed_dictionaries(
    {"summary": text | st.just("y" * 4001)},
    optional={
        "pages": st.none() | st.integers(1, 10_000) | st.sampled_from([0, 10_001, "7", "seven"]),
        "extra": st.just("never stored"),
    },
)
reject_payloads = st.fixed_dictionaries({"reason": text | st.just("w" * 4001)})


class Machine(RuleBasedStateMachine):
    """Subclassed per test with the app to drive."""

    app: Flask

    def __init__(self) -> None:
        super().__init__()
        self.client = self.app.test_client()
        self.ref = Reference([], [])

    @initialize(
        folders=st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=3),
        documents=st.lists(
            st.tuples(
                st.integers(0, 2),
                st.integers(1, 3),
                st.sampled_from(["Doc", "", "  ", "<script>alert(1)</script>"]),
                st.sampled_from([None, None, "<b>soon</b>"]),
                st.sampled_from([None, None, None, "raise"]),
            ),
            min_size=2,
            max_size=6,
        ),
    )
    def populate(
        self, folders: list[tuple[int, bool]], documents: list[tuple[int, int, str, str | None, str | None]]
    ) -> None:
        folder_refs = [RefFolder(i + 1, owner, private) for i, (owner, private) in enumerate(folders)]
        document_refs = [
            RefDocument(i + 1, folder_refs[f % len(folder_refs)], author, title, embargo, fault)
            for i, (f, author, title, embargo, fault) in enumerate(documents)
        ]
        self.ref = Reference(folder_refs, document_refs)
        with self.app.app_context():
            session = db.session
            for table in (history_table, blob_table, Document.__table__, Folder.__table__):
                session.execute(sa.delete(table))
            session.add_all(Folder(id=f.id, name=f"F{f.id}", owner_id=f.owner, private=f.private) for f in folder_refs)
            session.flush()
            session.add_all(
                Document(
                    id=d.id,
                    folder_id=d.folder.id,
                    title=d.title,
                    author_id=d.author,
                    embargo=d.embargo,
                    fault=d.fault,
                )
                for d in document_refs
            )
            session.commit()

    def pick(self, kind: str, index: int) -> RefObject:
        pool: list[t.Any] = self.ref.folders if kind == "folder" else self.ref.documents
        return pool[index % len(pool)] if pool else self.ref.folders[index % len(self.ref.folders)]

    @rule(
        data=st.data(),
        kind=st.sampled_from(["folder", "document", "document"]),
        index=st.integers(0, 8),
        via_http=st.booleans(),
        confirm=st.booleans(),
    )
    def perform(self, data: st.DataObject, kind: str, index: int, via_http: bool, confirm: bool) -> None:
        obj = self.pick(kind, index)
        kind = "folder" if isinstance(obj, RefFolder) else "document"
        # half the time a transition that starts from the current state, and
        # a user who holds its role, so that sequences get somewhere
        possible = sorted(n for n, r in RULES[kind].items() if obj.state in r.sources)
        name = data.draw(st.sampled_from(possible) | st.sampled_from(sorted(RULES[kind])), label="transition")
        user = data.draw(
            st.sampled_from(self.ref.role_holders(kind, obj, name)) | st.sampled_from(ACTORS), label="user"
        )
        payload = data.draw(
            submit_payloads
            if (kind, name) == ("document", "submit")
            else reject_payloads
            if name == "reject"
            else free_payloads,
            label="payload",
        )
        refused, steps = self.ref.plan(kind, obj, name, user)
        cleaned = self.ref.cleaned(kind, name, payload)
        if via_http and not self.ref.can_view(kind, obj, user):
            # an object the user may not view is indistinguishable from none
            refused = (404, "invisible")
        if refused is None and via_http and len(steps) > 1 and not confirm:
            refused = (409, "confirmation")
        if refused is None and cleaned is None:
            refused = (422, "validation")
        archived = [o for i, (k, o) in enumerate(steps) if k == "document" and (i or name == "archive")]
        fault = any(o.fault == "raise" for o in archived)
        status, outcome = (
            self._via_http(kind, obj, name, user, payload, confirm)
            if via_http
            else self._via_python(kind, obj, name, user, payload)
        )
        if refused is not None:
            assert status == refused[0], (refused, outcome)
            if refused[1] not in ("invisible", "confirmation", "validation"):
                assert {r["code"] for r in outcome["reasons"]} == {refused[1]}
            return
        if fault:
            assert status == 500, outcome
            return
        assert status == 200, outcome
        assert cleaned is not None
        first = len(self.ref.history)
        self.ref.apply(steps, name, user, cleaned)
        record = outcome["record"]
        expected = self.ref.history[first]
        assert (record["model"], record["object_id"], record["transition"]) == (CLASS_NAMES[kind], str(obj.id), name)
        assert (record["source"], record["target"], record["user_id"]) == (
            expected.source,
            expected.target,
            expected.user_id,
        )
        assert outcome["steps"] == len(steps)

    def _via_python(
        self, kind: str, obj: RefObject, name: str, user: User | None, payload: dict[str, t.Any] | None
    ) -> tuple[int, dict[str, t.Any]]:
        model = Folder if kind == "folder" else Document
        with self.app.app_context():
            instance = db.session.get(model, obj.id)
            try:
                result = getattr(instance.state, name)(user=user, data=payload)
                db.session.commit()
            except TransitionError as e:
                db.session.rollback()
                return e.http_status, {"reasons": [r.to_dict() for r in e.reasons]}
            except RuntimeError as e:
                db.session.rollback()
                return 500, {"error": str(e)}
            record = result.record.to_dict()
            return 200, {"record": record, "steps": len(result.steps)}

    def _via_http(
        self,
        kind: str,
        obj: RefObject,
        name: str,
        user: User | None,
        payload: dict[str, t.Any] | None,
        confirm: bool,
    ) -> tuple[int, dict[str, t.Any]]:
        body = dict(payload or {})
        if confirm:
            body["confirm"] = True
        response = self.client.post(
            f"/_statemgr/objects/{kind}/{obj.id}/state/{name}",
            headers={"X-User": user.name} if user else {},
            data=json.dumps(body),
            content_type="application/json",
        )
        answer = response.get_json()
        if response.status_code != 200:
            assert response.mimetype == "application/problem+json"
            return response.status_code, answer
        return 200, answer["result"]

    @rule(kind=st.sampled_from(["folder", "document"]), index=st.integers(0, 8), user=st.sampled_from(ACTORS))
    def observe(self, kind: str, index: int, user: User | None) -> None:
        """The object JSON, its history and the events as the JSON API shows
        them to ``user``."""
        self._object(kind, index, user)
        self._events(user)

    def _object(self, kind: str, index: int, user: User | None) -> None:
        obj = self.pick(kind, index)
        kind = "folder" if isinstance(obj, RefFolder) else "document"
        headers = {"X-User": user.name} if user else {}
        response = self.client.get(f"/_statemgr/objects/{kind}/{obj.id}", headers=headers)
        history = self.client.get(f"/_statemgr/objects/{kind}/{obj.id}/history", headers=headers)
        if not self.ref.can_view(kind, obj, user):
            assert response.status_code == history.status_code == 404
            return
        manager = response.get_json()["managers"]["state"]
        assert manager["state"] == obj.state
        for name, entry in manager["transitions"].items():
            refused, steps = self.ref.plan(kind, obj, name, user)
            assert entry["available"] is (refused is None)
            assert entry["status"] == (200 if refused is None else refused[0])
            assert {r["code"] for r in entry["reasons"]} == (set() if refused is None else {refused[1]})
        if user is None:
            # a history is for signed-in users (can_view_history)
            assert history.status_code == 401
            return
        records = history.get_json()["records"]
        mine = [r for r in self.ref.history if (r.kind, r.object_id) == (kind, obj.id)]
        assert [(r["transition"], r["source"], r["target"], r["user_id"]) for r in records] == [
            (r.transition, r.source, r.target, r.user_id) for r in mine
        ]

    def _events(self, user: User | None) -> None:
        """Every event of an object ``user`` may view, and no other."""
        headers = {"X-User": user.name} if user else {}
        seen: list[tuple[str, str, str]] = []
        cursor = 0
        while True:
            body = settled(self.client, f"/_statemgr/events?after={cursor}&limit=7", headers)
            seen.extend((e["model"], e["object_id"], e["transition"]) for e in body["events"])
            if body["cursor"] == cursor:
                break
            cursor = body["cursor"]
        by_key = {(k, o.id): o for k, o in self.ref.objects()}
        assert seen == [
            (r.kind, str(r.object_id), r.transition)
            for r in self.ref.history
            if self.ref.can_view(r.kind, by_key[(r.kind, r.object_id)], user)
        ]

    @invariant()
    def database_agrees(self) -> None:
        with self.app.app_context():
            folders = {f.id: f for f in db.session.scalars(sa.select(Folder))}
            documents = {d.id: d for d in db.session.scalars(sa.select(Document))}
            for f in self.ref.folders:
                assert folders[f.id]._state == STATE_VALUES["folder"][f.state]
            for d in self.ref.documents:
                row = documents[d.id]
                assert (row._state, row.pages, row.archives) == (STATE_VALUES["document"][d.state], d.pages, d.archives)
            for kind, ref in self.ref.objects():
                instance = (folders if kind == "folder" else documents)[ref.id]
                for user in ACTORS:
                    for name in RULES[kind]:
                        availability = getattr(instance.state, name).check(user)
                        refused, _ = self.ref.plan(kind, ref, name, user)
                        assert availability.ok is (refused is None), (kind, ref, name, user)
                        if refused is not None:
                            assert availability.error is not None
                            assert availability.error.http_status == refused[0]
                            assert {r.code for r in availability.reasons} == {refused[1]}
            records = query_history(db.session)
            ids = [r.id for r in records]
            assert [
                (
                    r.model,
                    r.object_id,
                    r.manager,
                    r.transition,
                    r.source,
                    r.target,
                    r.user_id,
                    r.payload,
                    None if r.parent_id is None else ids.index(r.parent_id),
                )
                for r in records
            ] == [
                (
                    CLASS_NAMES[r.kind],
                    str(r.object_id),
                    "state",
                    r.transition,
                    r.source,
                    r.target,
                    r.user_id,
                    r.payload,
                    r.parent,
                )
                for r in self.ref.history
            ]


@pytest.mark.slow
def test_random_transitions_agree_with_the_reference(reliability: t.Callable[..., Flask]) -> None:
    run_state_machine_as_test(
        type("ReliabilityMachine", (Machine,), {"app": reliability()}),
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
