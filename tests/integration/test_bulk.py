"""``Model.state.<transition>.perform_all(objects)``: one transition on many
objects in one transaction, each checked, the refused skipped and reported,
and statements that do not grow with the number of objects (DESIGN.md §5)."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from core_models import (
    ALICE,
    BOB,
    CAROL,
    STAMP,
    Chapter,
    ChapterState,
    HookFailure,
    Project,
    ProjectState,
    Ticket,
    count_statements,
    history_rows,
)
from sqlalchemy import orm

from flask_statemgr import (
    BulkResult,
    PermissionDenied,
    PreconditionFailed,
    StateConflict,
    ValidationFailed,
    transition_after,
    transition_before,
    transition_failed,
)


def add_projects(session: orm.Session, count: int, **kwargs: t.Any) -> list[Project]:
    """``count`` committed projects (titled, so ``publish`` may run)."""
    kwargs.setdefault("title", "Project")
    projects = [Project(**kwargs) for _ in range(count)]
    session.add_all(projects)
    session.commit()
    return projects


def states(engine: sa.Engine) -> dict[int, int]:
    """Each project's state as another connection sees it."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(Project.id, Project._state).order_by(Project.id)).all())


def test_each_object_is_checked_and_the_refused_are_skipped(core_engine: sa.Engine, core_db: orm.Session) -> None:
    ready = add_projects(core_db, 3)
    untitled = add_projects(core_db, 1, title="")[0]
    published = add_projects(core_db, 1, _state=ProjectState.PUBLISHED.value)[0]
    result = Project.state.publish.perform_all([ready[0], untitled, ready[1], published, ready[2]], BOB)
    assert isinstance(result, BulkResult)
    assert [r.steps[0].obj for r in result.performed] == ready
    assert set(result.refused) == {untitled, published}
    assert isinstance(result.refused[untitled], PreconditionFailed)
    assert [r.message for r in result.refused[untitled].reasons] == ["A title is required"]
    assert isinstance(result.refused[published], StateConflict)
    # as a single perform: the execute hook ran, records were written
    for project, performed in zip(ready, result.performed):
        assert project.state.PUBLISHED and project.published_at == STAMP
        assert performed.source is ProjectState.DRAFT and performed.target is ProjectState.PUBLISHED
        assert performed.record is not None and performed.record.object_id == str(project.id)
    assert untitled.state.DRAFT and untitled.published_at is None
    core_db.commit()
    assert states(core_engine) == {p.id: 2 for p in ready} | {untitled.id: 1, published.id: 2}
    rows = history_rows(core_engine)
    assert sorted((r["object_id"], r["transition"], r["user_id"]) for r in rows) == sorted(
        (str(p.id), "publish", "2") for p in ready
    )
    assert {r.record.id for r in result.performed if r.record is not None} == {r["id"] for r in rows}


def test_the_manager_class_transition_finds_the_model(core_engine: sa.Engine, core_db: orm.Session) -> None:
    # ProjectState.publish is what type checkers see for Project.state.publish
    projects = add_projects(core_db, 2)
    result = ProjectState.publish.perform_all(projects, BOB)
    assert [r.steps[0].obj for r in result.performed] == projects
    chosen = sa.select(Project).where(Project.id == projects[0].id)
    assert ProjectState.withdraw.perform_all(chosen, BOB, session=core_db).performed[0].steps[0].obj is projects[0]
    nothing = ProjectState.publish.perform_all([], BOB)
    assert nothing.performed == [] and nothing.refused == {}
    core_db.commit()
    assert states(core_engine) == {projects[0].id: 3, projects[1].id: 2}


def test_permission_is_checked_for_the_user(core_engine: sa.Engine, core_db: orm.Session) -> None:
    projects = add_projects(core_db, 2)
    result = Project.state.publish.perform_all(projects, CAROL)
    assert result.performed == []
    assert all(isinstance(e, PermissionDenied) and e.http_status == 403 for e in result.refused.values())
    anonymous = Project.state.publish.perform_all(projects)
    assert {e.http_status for e in anonymous.refused.values()} == {401}
    core_db.commit()
    assert set(states(core_engine).values()) == {1} and history_rows(core_engine) == []


def test_a_select_of_the_model(core_engine: sa.Engine, core_db: orm.Session) -> None:
    projects = add_projects(core_db, 4)
    ids = [p.id for p in projects]
    chosen = sa.select(Project).where(Project.id.in_(ids[:3]), Project.state.DRAFT)
    result = Project.state.publish.perform_all(chosen, BOB, session=core_db)
    assert sorted(r.steps[0].obj.id for r in result.performed) == ids[:3]
    core_db.commit()
    assert states(core_engine) == {ids[0]: 2, ids[1]: 2, ids[2]: 2, ids[3]: 1}


def test_invalid_data_refuses_every_object_that_passed_the_checks(core_engine: sa.Engine, core_db: orm.Session) -> None:
    drafts = add_projects(core_db, 2, _review="approved")
    published = add_projects(core_db, 1, _state=ProjectState.PUBLISHED.value, _review="approved")[0]
    result = Project.state.submit.perform_all([*drafts, published], BOB, {"priority": "9"})
    assert result.performed == []
    assert isinstance(result.refused[published], StateConflict)
    invalid = [result.refused[d] for d in drafts]
    assert all(isinstance(e, ValidationFailed) for e in invalid)
    assert "priority" in invalid[0].errors  # type: ignore[attr-defined]
    core_db.commit()
    assert states(core_engine) == {drafts[0].id: 1, drafts[1].id: 1, published.id: 2}
    assert history_rows(core_engine) == []


def test_statements_do_not_grow_with_the_objects(core_engine: sa.Engine, core_db: orm.Session) -> None:
    def statements(count: int) -> t.Any:
        projects = add_projects(core_db, count, _state=ProjectState.PUBLISHED.value)
        # committed: every object is expired, as in a request that loaded
        # them in an earlier transaction
        recorded = len(history_rows(core_engine))
        results: list[BulkResult] = []
        sent = count_statements(core_engine, lambda: results.append(Project.state.withdraw.perform_all(projects, BOB)))
        assert len(results[0].performed) == count and not results[0].refused
        core_db.commit()
        assert len(history_rows(core_engine)) - recorded == count
        assert {states(core_engine)[p.id] for p in projects} == {3}
        return sent

    small, large = statements(10), statements(1000)
    assert small == large
    # one SELECT reads the expired rows; on PostgreSQL one statement moves
    # the rows and writes their records, elsewhere an UPDATE ... RETURNING
    # and a multi-row INSERT; no savepoint (the transaction has only read)
    if core_engine.dialect.name == "postgresql":
        assert large == {"SELECT": 1, "WITH": 1}
    else:
        # (pysqlite opens the transaction itself before the UPDATE)
        assert large == {"SELECT": 1, "UPDATE": 1, "INSERT": 1}
    # beyond a chunk of 1,000 objects, the same statements again per chunk
    assert statements(1001) == {name: n if name == "BEGIN" else 2 * n for name, n in large.items()}


def test_a_concurrent_change_refuses_that_object_only(core_engine: sa.Engine) -> None:
    # what the checks see stays loaded after the commit, which ends the read
    # (SQLite would not let the other writer commit beside it)
    core_db = orm.Session(core_engine, expire_on_commit=False)
    projects = add_projects(core_db, 3)
    taken = projects[1]
    with core_engine.begin() as conn:
        conn.execute(sa.update(Project).where(Project.id == taken.id).values(_state=ProjectState.DELETED.value))
    result = Project.state.publish.perform_all(projects, BOB)
    assert [r.steps[0].obj for r in result.performed] == [projects[0], projects[2]]
    assert isinstance(result.refused[taken], StateConflict)
    # nothing of the refused one: no hook, no record, no overwrite
    assert taken.executed is None
    core_db.commit()
    assert states(core_engine) == {projects[0].id: 2, taken.id: 4, projects[2].id: 2}
    assert sorted(r["object_id"] for r in history_rows(core_engine)) == sorted(
        [str(projects[0].id), str(projects[2].id)]
    )
    assert taken.state.DELETED
    core_db.close()


def test_a_failing_hook_undoes_all_of_it(core_engine: sa.Engine, core_db: orm.Session) -> None:
    projects = add_projects(core_db, 3, _state=ProjectState.PUBLISHED.value)
    failed: list[t.Any] = []

    def on_failed(sender: t.Any, **kwargs: t.Any) -> None:
        failed.append(kwargs["obj"])

    with transition_failed.connected_to(on_failed):
        with pytest.raises(HookFailure):
            Project.state.withdraw.perform_all(projects, BOB, {"fail": "yes"})
    assert failed == projects
    assert all(p.state.PUBLISHED for p in projects)
    core_db.commit()
    assert set(states(core_engine).values()) == {2} and history_rows(core_engine) == []


def test_signals_as_a_single_perform_sends_them(core_db: orm.Session) -> None:
    projects = add_projects(core_db, 2)
    untitled = add_projects(core_db, 1, title="")[0]
    sent: list[tuple[str, t.Any]] = []

    def before(sender: t.Any, **kwargs: t.Any) -> None:
        sent.append(("before", kwargs["obj"]))

    def after(sender: t.Any, **kwargs: t.Any) -> None:
        assert sender is ProjectState.publish and kwargs["user"] is BOB
        sent.append(("after", kwargs["obj"]))

    with transition_before.connected_to(before), transition_after.connected_to(after):
        Project.state.publish.perform_all([*projects, untitled], BOB)
    assert sent == [("before", projects[0]), ("before", projects[1]), ("after", projects[0]), ("after", projects[1])]


def test_cascade_per_object(core_engine: sa.Engine, core_db: orm.Session) -> None:
    free, blocked = add_projects(core_db, 2)
    free.chapters = [Chapter(), Chapter()]
    blocked.chapters = [Chapter(), Chapter(_state=ChapterState.LOCKED.value)]
    core_db.commit()
    result = Project.state.delete.perform_all([free, blocked], ALICE)
    assert [r.steps[0].obj for r in result.performed] == [free]
    assert isinstance(result.refused[blocked], StateConflict)
    assert "Chapter" in result.refused[blocked].reasons[0].message
    (performed,) = result.performed
    assert [s.obj for s in performed.steps] == [free, *free.chapters]
    assert all(s.record is not None and s.record.parent_id == performed.record.id for s in performed.steps[1:])  # type: ignore[union-attr]
    core_db.commit()
    with core_engine.connect() as conn:
        chapters = dict(conn.execute(sa.select(Chapter.id, Chapter._state)).all())
    assert chapters == {
        free.chapters[0].id: 2,
        free.chapters[1].id: 2,
        blocked.chapters[0].id: 1,
        blocked.chapters[1].id: 3,
    }
    assert states(core_engine) == {free.id: 4, blocked.id: 1}


def test_objects_in_memory() -> None:
    tickets = [Ticket("a"), Ticket("b")]
    tickets[1]._state = ProjectState.WITHDRAWN.value
    result = Ticket.state.publish.perform_all(tickets, BOB)
    assert [r.steps[0].obj for r in result.performed] == [tickets[0]]
    assert tickets[0].state.PUBLISHED and tickets[0].executed == "ticket"
    assert isinstance(result.refused[tickets[1]], StateConflict)


def test_misuse_is_a_type_error(core_db: orm.Session) -> None:
    (project,) = add_projects(core_db, 1)
    with pytest.raises(TypeError, match="called on the class"):
        project.state.publish.perform_all([project])
    with pytest.raises(TypeError, match="was given"):
        Project.state.publish.perform_all([project, Chapter()])
    with pytest.raises(TypeError, match="needs session="):
        Project.state.publish.perform_all(sa.select(Project))
    with pytest.raises(TypeError, match="not 'Project'"):
        Project.state.publish.perform_all("Project")  # type: ignore[arg-type]
    with orm.Session(core_db.get_bind()) as other:
        elsewhere = other.get_one(Project, project.id)
        with pytest.raises(TypeError, match="same session"):
            Project.state.publish.perform_all([project, elsewhere])
    assert Project.state.publish.perform_all([]) == BulkResult([], {})
