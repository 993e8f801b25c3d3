"""Performing transitions against each database: the state change, execute
hooks and their data, history, cascades, rollback on failure, and objects
that are pending, in no session, or not mapped at all."""

from __future__ import annotations

import datetime
import typing as t

import pytest
import sqlalchemy as sa
from core_models import (
    ALICE,
    BOB,
    STAMP,
    Chapter,
    ChapterState,
    HookFailure,
    Project,
    ProjectState,
    ReviewState,
    Slot,
    Ticket,
    add_project,
    count_statements,
    history_rows,
)
from sqlalchemy import orm

from flask_statemgr import (
    PreconditionFailed,
    StateConflict,
    TransitionRecord,
    TransitionResult,
    ValidationFailed,
    transition_failed,
)


def _fresh(engine: sa.Engine, project_id: int) -> dict[str, t.Any]:
    """The project's row as another connection sees it."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(Project.__table__).where(Project.id == project_id)).one()
    return dict(row._mapping)


def test_perform(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db)
    before = datetime.datetime.now(datetime.UTC)
    result = project.state.publish(BOB)
    assert isinstance(result, TransitionResult)
    assert result.source is ProjectState.DRAFT and result.target is ProjectState.PUBLISHED
    assert project.state.PUBLISHED and project._state == 2
    # the execute hook ran, and the conditional state sees its effect
    assert project.published_at == STAMP and project.state.LIVE
    assert [(s.obj, s.transition) for s in result.steps] == [(project, ProjectState.publish)]
    record = result.record
    assert isinstance(record, TransitionRecord)
    assert (record.model, record.object_id, record.manager, record.transition) == (
        "Project",
        str(project.id),
        "state",
        "publish",
    )
    assert (record.source, record.target, record.user_id) == ("DRAFT", "PUBLISHED", "2")
    assert record.payload is None and record.parent_id is None
    assert before <= record.at <= datetime.datetime.now(datetime.UTC)
    core_db.commit()
    row = _fresh(core_engine, project.id)
    assert row["_state"] == 2 and row["published_at"] == STAMP
    assert project.state.history() == [record]


def test_performed_state_is_visible_before_commit(core_db: orm.Session) -> None:
    project = add_project(core_db)
    project.state.publish(BOB)
    # the compare-and-set already ran: a query in this transaction sees it
    assert core_db.scalar(sa.select(Project.id).where(Project.state.PUBLISHED)) == project.id
    core_db.rollback()
    assert project.state.DRAFT


def test_history_oldest_first(core_db: orm.Session) -> None:
    project = add_project(core_db)
    other = add_project(core_db)
    project.state.publish(BOB)
    other.state.publish(ALICE)
    project.state.withdraw(BOB)
    project.state.redraft(None)
    project.review.approve(ALICE)
    core_db.commit()
    history = project.state.history()
    assert [(r.transition, r.source, r.target) for r in history] == [
        ("publish", "DRAFT", "PUBLISHED"),
        ("withdraw", "PUBLISHED", "WITHDRAWN"),
        ("redraft", "WITHDRAWN", "DRAFT"),
    ]
    assert [r.user_id for r in history] == ["2", "2", None]
    assert history[0].id < history[1].id < history[2].id
    assert all(r.at.tzinfo is not None for r in history)
    # per manager
    assert [r.transition for r in project.review.history()] == ["approve"]
    assert [r.transition for r in other.state.history()] == ["publish"]


def test_execute_hooks_receive_the_validated_data(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db, _review="approved")
    result = project.state.submit(ALICE, data={"note": "hello", "priority": 3.0, "extra": 1})
    # the form's cleaned data: priority coerced, unknown keys dropped
    assert project.executed == repr([("note", "hello"), ("priority", 3)])
    assert result.data == {"note": "hello", "priority": 3}
    assert result.record is not None and result.record.payload == {"note": "hello", "priority": 3}
    core_db.commit()
    (record, lock) = project.state.history() + project.review.history()
    assert record.payload == {"note": "hello", "priority": 3}
    assert lock.payload is None and lock.parent_id == record.id
    assert len(history_rows(core_engine)) == 2


def test_data_without_a_form_is_passed_through(core_db: orm.Session) -> None:
    project = add_project(core_db)
    when = datetime.datetime(2026, 5, 1, 9, 30)
    project.state.publish(BOB, data={"at": when, "tags": {"a", "b"}})
    assert project.executed == repr([("at", when), ("tags", {"a", "b"})])
    core_db.commit()
    (record,) = project.state.history()
    assert record.payload == {"at": when, "tags": {"a", "b"}}


def test_data_must_be_a_mapping(core_db: orm.Session) -> None:
    project = add_project(core_db)
    with pytest.raises(ValidationFailed) as info:
        project.state.publish(BOB, data=[("a", 1)])  # type: ignore[arg-type]
    assert info.value.errors == {"": ["data must be a mapping, not list"]}
    assert project.state.DRAFT


def test_invalid_data_changes_nothing(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db, _review="approved")
    with pytest.raises(ValidationFailed) as info:
        project.state.submit(ALICE, data={"note": "x" * 21})
    assert info.value.http_status == 422
    assert set(info.value.errors) == {"note", "priority"}
    assert project.state.DRAFT and project.review.APPROVED and project.executed is None
    core_db.commit()
    assert history_rows(core_engine) == []
    assert _fresh(core_engine, project.id)["_state"] == 1


def test_refused_transition_changes_nothing(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db, title="")
    with pytest.raises(PreconditionFailed):
        project.state.publish(BOB)
    core_db.commit()
    assert history_rows(core_engine) == [] and _fresh(core_engine, project.id)["_state"] == 1


def test_raising_execute_hook_rolls_everything_back(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db)
    chapter = Chapter(project=project)
    core_db.add(chapter)
    core_db.commit()
    failures: list[dict[str, t.Any]] = []

    def failed(sender: t.Any, **kwargs: t.Any) -> None:
        failures.append({"sender": sender, **kwargs})

    with transition_failed.connected_to(failed):
        with pytest.raises(HookFailure):
            project.state.delete(ALICE, data={"fail": "no"})
    # in memory: the state is back, and the hook's change is undone
    assert project.state.DRAFT and project._state == 1
    assert chapter.state.DRAFT
    assert project.title == "Project"
    (failure,) = failures
    assert failure["sender"] is ProjectState.delete
    assert isinstance(failure["exception"], HookFailure)
    # the application may go on and commit: nothing of the transition is there
    core_db.commit()
    with orm.Session(core_engine) as fresh:
        row = fresh.get_one(Project, project.id)
        assert row.state.DRAFT and row.title == "Project"
        assert row.chapters[0].state.DRAFT
        assert row.state.history() == [] and row.chapters[0].state.history() == []
    assert history_rows(core_engine) == []
    # and the transition still works afterwards
    project.state.delete(ALICE)
    core_db.commit()
    assert _fresh(core_engine, project.id)["_state"] == 4


@pytest.mark.parametrize("savepoint", [True, False])
def test_raising_hook_and_earlier_work_in_the_transaction(
    core_engine: sa.Engine, core_db: orm.Session, savepoint: bool
) -> None:
    project = add_project(core_db)
    other = add_project(core_db)
    project.state.publish(BOB)
    other.title = "edited before"
    with pytest.raises(HookFailure):
        if savepoint:
            # a transaction is open: the perform keeps its savepoint
            project.state.withdraw(BOB, data={"fail": "no"})
        else:
            plan = project.state.withdraw.plan(BOB)
            project.state.withdraw.perform_plan(plan, BOB, {"fail": "no"}, savepoint=False)
    core_db.commit()
    if savepoint:
        # only the failed transition's savepoint was rolled back
        assert _fresh(core_engine, project.id)["_state"] == 2
        assert _fresh(core_engine, other.id)["title"] == "edited before"
        assert [r["transition"] for r in history_rows(core_engine)] == ["publish"]
    else:
        # as documented: everything since the last commit is undone
        assert _fresh(core_engine, project.id)["_state"] == 1
        assert _fresh(core_engine, other.id)["title"] == "Project"
        assert history_rows(core_engine) == []


def test_perform_that_begins_the_transaction_needs_no_savepoint(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db)
    assert not core_db.in_transaction()
    sent = count_statements(core_engine, lambda: project.state.publish(BOB))
    assert "SAVEPOINT" not in sent and "RELEASE" not in sent
    core_db.commit()
    assert _fresh(core_engine, project.id)["_state"] == 2
    assert [r["transition"] for r in history_rows(core_engine)] == ["publish"]


def test_perform_on_an_object_loaded_in_its_transaction_needs_no_savepoint(
    core_engine: sa.Engine, core_db: orm.Session
) -> None:
    # ordinary app code: load, perform, commit
    project_id = add_project(core_db).id
    core_db.close()
    project = core_db.get_one(Project, project_id)
    assert core_db.in_transaction()
    sent = count_statements(core_engine, lambda: project.state.publish(BOB))
    assert "SAVEPOINT" not in sent and "RELEASE" not in sent
    core_db.commit()
    assert _fresh(core_engine, project_id)["_state"] == 2
    # a failure rolls back that transaction, which held nothing else
    project = core_db.get_one(Project, project_id)
    with pytest.raises(HookFailure):
        project.state.withdraw(BOB, data={"fail": "no"})
    assert not core_db.in_transaction()
    assert project.state.PUBLISHED and project.title == "Project"
    assert [r["transition"] for r in history_rows(core_engine)] == ["publish"]


@pytest.mark.parametrize(
    "write",
    [
        lambda session, pid: session.execute(sa.update(Project).where(Project.id == pid).values(title="written")),
        lambda session, pid: session.connection().execute(
            sa.text("UPDATE core_project SET title = 'written' WHERE id = :id"), {"id": pid}
        ),
    ],
    ids=["orm", "connection"],
)
def test_a_write_earlier_in_the_transaction_keeps_the_savepoint(
    core_engine: sa.Engine, core_db: orm.Session, write: t.Callable[[orm.Session, int], t.Any]
) -> None:
    project = add_project(core_db)
    project.state.publish(BOB)
    core_db.commit()
    project_id, other_id = project.id, add_project(core_db).id
    core_db.close()
    project = core_db.get_one(Project, project_id)
    write(core_db, other_id)
    with pytest.raises(HookFailure):
        project.state.withdraw(BOB, data={"fail": "no"})
    # only the transition's savepoint was rolled back
    assert core_db.in_transaction()
    core_db.commit()
    assert _fresh(core_engine, other_id)["title"] == "written"
    assert _fresh(core_engine, project_id)["_state"] == 2


def test_failure_without_savepoint_rolls_back_its_transaction(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db)
    project.state.publish(BOB)
    core_db.commit()

    with pytest.raises(HookFailure):
        project.state.withdraw(BOB, data={"fail": "no"})
    # the transaction it began is gone, and the hook's change with it
    assert not core_db.in_transaction()
    assert project.title == "Project" and project.state.PUBLISHED
    core_db.commit()
    assert _fresh(core_engine, project.id)["title"] == "Project"
    assert [r["transition"] for r in history_rows(core_engine)] == ["publish"]
    project.state.withdraw(BOB)
    core_db.commit()
    assert _fresh(core_engine, project.id)["_state"] == 3


def test_unflushed_changes_keep_the_savepoint(core_engine: sa.Engine) -> None:
    session = orm.Session(core_engine, expire_on_commit=False)
    project = add_project(session)
    project.state.publish(BOB)
    other = add_project(session)
    session.commit()
    # no transaction is open, but these wait to be flushed: a failure must
    # not take them with it
    other.title = "edited before"
    added = Project(title="added before")
    session.add(added)
    with pytest.raises(HookFailure):
        project.state.withdraw(BOB, data={"fail": "no"})
    session.commit()
    assert _fresh(core_engine, other.id)["title"] == "edited before"
    assert _fresh(core_engine, added.id)["title"] == "added before"
    assert _fresh(core_engine, project.id)["_state"] == 2
    session.close()


def test_session_joined_to_an_outer_transaction_keeps_it(core_engine: sa.Engine) -> None:
    # the test-fixture pattern: a session joined to a connection whose
    # transaction the fixture rolls back at the end
    with core_engine.connect() as conn:
        outer = conn.begin()
        session = orm.Session(bind=conn)
        project = add_project(session)
        project.state.publish(BOB)
        session.commit()
        assert not session.in_transaction()
        with pytest.raises(HookFailure):
            project.state.withdraw(BOB, data={"fail": "no"})
        # the failure undid the transition alone
        assert outer.is_active
        assert project.state.PUBLISHED
        assert [r.transition for r in project.state.history()] == ["publish"]
        session.close()
        outer.rollback()


def test_record_written_with_the_state_change(core_engine: sa.Engine, core_db: orm.Session) -> None:
    # on PostgreSQL one statement moves the row and inserts its record
    project = add_project(core_db)
    sent = count_statements(core_engine, lambda: project.state.publish(BOB, data={"note": "first"}))
    if core_engine.dialect.name == "postgresql":
        assert sent["WITH"] == 1 and "INSERT" not in sent
        # the execute hook's own columns, flushed before
        assert sent["UPDATE"] == 1
    else:
        assert sent["UPDATE"] == 2 and sent["INSERT"] == 1
    core_db.commit()
    (row,) = history_rows(core_engine)
    assert (row["model"], row["object_id"], row["manager"], row["transition"]) == (
        "Project",
        str(project.id),
        "state",
        "publish",
    )
    assert (row["source"], row["target"], row["user_id"], row["parent_id"]) == ("DRAFT", "PUBLISHED", "2", None)
    assert row["payload"] is not None
    assert project.state.history()[0].payload == {"note": "first"}


def test_stale_object_conflicts(core_engine: sa.Engine) -> None:
    # loaded earlier, with no transaction left open (on SQLite an open read
    # transaction would keep the other writer from committing)
    session = orm.Session(core_engine, expire_on_commit=False)
    project = add_project(session)
    project_id = project.id
    # somebody else publishes it meanwhile
    with orm.Session(core_engine) as elsewhere:
        elsewhere.get_one(Project, project_id).state.publish(BOB)
        elsewhere.commit()
    # this session still believes it is a draft, so the checks pass
    assert project.state.DRAFT
    with pytest.raises(StateConflict) as info:
        project.state.delete(ALICE)
    assert info.value.http_status == 409
    assert info.value.reasons[0].code == "state"
    # nothing of it was written, and the object now reads the row again
    session.commit()
    assert project.state.PUBLISHED
    assert [r["transition"] for r in history_rows(core_engine)] == ["publish"]
    session.close()


def test_conflict_stores_no_blob_outside_the_transaction(
    core_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a store the transaction cannot roll back is written only after the
    # compare-and-set succeeded
    from flask_statemgr import runtime
    from flask_statemgr.store import DataStore, MemoryBackend

    backend = MemoryBackend()
    monkeypatch.setattr(runtime.current_runtime(), "_store", DataStore(backend, min_size=0))
    session = orm.Session(core_engine, expire_on_commit=False)
    project = add_project(session)
    with orm.Session(core_engine) as elsewhere:
        elsewhere.get_one(Project, project.id).state.delete(ALICE)
        elsewhere.commit()
    with pytest.raises(StateConflict):
        project.state.publish(BOB, data={"note": "x" * 100})
    assert list(backend.scan()) == []
    session.rollback()
    add_project(session).state.publish(BOB, data={"note": "x" * 100})
    assert len(list(backend.scan())) == 1
    session.close()


def test_composite_primary_key(core_engine: sa.Engine, core_db: orm.Session) -> None:
    core_db.add_all([Slot(shelf=1, position=1), Slot(shelf=1, position=2), Slot(shelf=2, position=1)])
    core_db.commit()
    slot = core_db.get_one(Slot, (1, 2))
    result = slot.state.take(BOB)
    core_db.commit()
    assert result.record is not None and result.record.object_id == "1,2"
    with core_engine.connect() as conn:
        taken = conn.execute(sa.select(Slot.shelf, Slot.position).where(Slot.state.TAKEN)).all()
    assert taken == [(1, 2)]
    # a stale object conflicts as with a single-column key
    stale = orm.Session(core_engine, expire_on_commit=False)
    mine = stale.get_one(Slot, (2, 1))
    stale.commit()
    core_db.get_one(Slot, (2, 1)).state.take(BOB)
    core_db.commit()
    with pytest.raises(StateConflict):
        mine.state.take(BOB)
    stale.close()
    assert [r["object_id"] for r in history_rows(core_engine)] == ["1,2", "2,1"]


def test_stale_plan_conflicts(core_db: orm.Session) -> None:
    project = add_project(core_db)
    plan = project.state.publish.plan(BOB)
    project.state.delete(ALICE)
    with pytest.raises(StateConflict):
        project.state.publish.perform_plan(plan, BOB)
    assert project.state.DELETED


def test_cascade(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db)
    project.chapters = [Chapter(), Chapter(_state=2), Chapter()]
    core_db.commit()
    first, done, last = project.chapters
    result = project.state.delete(ALICE)
    assert [s.obj for s in result.steps] == [project, first, last]
    assert project.state.DELETED and all(c.state.DELETED for c in project.chapters)
    core_db.commit()
    rows = history_rows(core_engine)
    assert [(r["model"], r["object_id"], r["transition"]) for r in rows] == [
        ("Project", str(project.id), "delete"),
        ("Chapter", str(first.id), "delete"),
        ("Chapter", str(last.id), "delete"),
    ]
    assert [r["parent_id"] for r in rows] == [None, rows[0]["id"], rows[0]["id"]]
    with core_engine.connect() as conn:
        assert list(conn.scalars(sa.select(Chapter._state).order_by(Chapter.id))) == [2, 2, 2]
    assert done.state.history() == []


def test_blocked_cascade_changes_nothing(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db)
    project.chapters = [Chapter(), Chapter(_state=ChapterState.LOCKED.value)]
    core_db.commit()
    with pytest.raises(StateConflict) as info:
        project.state.delete(ALICE)
    assert info.value.reasons[0].code == "cascade"
    assert f"Chapter {project.chapters[1].id}" in info.value.reasons[0].message
    core_db.commit()
    assert history_rows(core_engine) == []
    assert project.state.DRAFT and project.chapters[0].state.DRAFT


def test_cascade_moves_two_managers(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = add_project(core_db, _review="approved")
    result = project.state.submit(ALICE, data={"priority": 1})
    assert project.state.PUBLISHED and project.review.LOCKED
    assert [s.manager for s in result.steps] == ["state", "review"]
    core_db.commit()
    row = _fresh(core_engine, project.id)
    assert (row["_state"], row["_review"]) == (2, "locked")
    # performing the other manager's transition is independent
    second = add_project(core_db)
    second.review.approve(ALICE)
    assert second.review.APPROVED and second.state.DRAFT
    assert not second.review.approve.is_available(ALICE)


def test_pending_object(core_engine: sa.Engine, core_db: orm.Session) -> None:
    project = Project(title="new")
    core_db.add(project)
    assert project.state.DRAFT
    result = project.state.publish(BOB)
    # performing flushed it: it has an id and a history record
    assert project.id is not None and project.state.PUBLISHED
    assert result.record is not None and result.record.object_id == str(project.id)
    core_db.commit()
    assert _fresh(core_engine, project.id)["_state"] == 2
    assert len(history_rows(core_engine)) == 1


def test_object_in_no_session() -> None:
    project = Project(title="loose", _state=1)
    result = project.state.publish(BOB)
    assert project.state.PUBLISHED and project.published_at == STAMP
    assert result.record is None and result.steps[0].record is None
    assert project.state.history() == []


def test_plain_object() -> None:
    ticket = Ticket()
    result = ticket.state.publish(BOB)
    assert ticket.state.PUBLISHED and ticket._state == 2
    assert ticket.executed == "ticket"
    assert result.source is ProjectState.DRAFT and result.record is None
    assert ticket.state.history() == []
    with pytest.raises(StateConflict):
        ticket.state.publish(BOB)


def test_in_memory_failure_restores_the_state() -> None:
    ticket = Ticket()
    with pytest.raises(HookFailure):
        ticket.state.publish(BOB, data={"fail": "no"})
    assert ticket.state.DRAFT and ticket._state == 1


def test_detached_object_is_refused(core_engine: sa.Engine) -> None:
    with orm.Session(core_engine) as first:
        project = add_project(first)
        assert project.state.DRAFT
    with pytest.raises(TypeError, match="is detached"):
        project.state.publish(BOB)


def test_cascade_over_many_children(core_engine: sa.Engine, core_db: orm.Session) -> None:
    projects = [add_project(core_db) for _ in range(3)]
    for project in projects:
        project.chapters = [Chapter() for _ in range(40)]
    core_db.commit()
    core_db.expire_all()
    queries: list[str] = []

    def log(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        queries.append(statement)

    sa.event.listen(core_engine, "before_cursor_execute", log)
    try:
        result = projects[0].state.delete(ALICE)
    finally:
        sa.event.remove(core_engine, "before_cursor_execute", log)
    assert len(result.steps) == 41
    # one compare-and-set per level, not one per child (on PostgreSQL the
    # root's is a WITH ... UPDATE that also inserts its record)
    updates = [q for q in queries if q.lstrip().upper().startswith(("UPDATE", "WITH"))]
    assert len(updates) == 2
    core_db.commit()
    with core_engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.select(Chapter.project_id, sa.func.count()).where(Chapter.state.DELETED).group_by(Chapter.project_id)
            ).all()
        )
    assert counts == {projects[0].id: 40}


def test_managers_on_one_model_are_independent() -> None:
    project = Project(_state=1, _review="pending", title="x", owner_id=1)
    assert project.review.transitions(ALICE).keys() == {"approve", "lock"}
    result = project.review.approve(ALICE)
    assert result.source is ReviewState.PENDING and result.target is ReviewState.APPROVED
    # state's hooks did not run
    assert project.review.APPROVED and project.state.DRAFT and project.executed is None
