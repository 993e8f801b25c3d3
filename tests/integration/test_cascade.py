"""``cascade=``: one transition moving other managers and related objects,
planned and checked as a whole, executed in one savepoint (DESIGN.md §5)."""

from __future__ import annotations

import collections
import threading
import typing as t

import pytest
import sqlalchemy as sa
from chain_models import (
    DELETED_AT,
    HOST,
    OWNER,
    STRANGER,
    BookingError,
    Comment,
    CommentState,
    Project,
    ProjectState,
    ReviewState,
    Session,
    SessionState,
    add_project,
)
from core_models import count_statements
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from flask_statemgr import (
    PermissionDenied,
    PreconditionFailed,
    RequirementsUnmet,
    State,
    StateConflict,
    StateManager,
    Transition,
    TransitionError,
    query_history,
    transition_before,
    transition_failed,
)
from flask_statemgr.dialects import configure_engine


def reload(db: orm.Session, project: Project) -> Project:
    """The project in a fresh identity map, nothing of it loaded but itself."""
    project_id = project.id
    db.expunge_all()
    return db.get_one(Project, project_id)


def stored_states(engine: sa.Engine) -> dict[str, list[t.Any]]:
    """Every state column in the database, read on a separate connection."""
    with engine.connect() as conn:
        return {
            "project": conn.execute(sa.select(Project._state, Project._review).order_by(Project.id)).all(),
            "session": conn.execute(
                sa.select(Session._state, Session.booking, Session.deleted_at).order_by(Session.id)
            ).all(),
            "comment": conn.scalars(sa.select(Comment._state).order_by(Comment.id)).all(),
        }


def history_count(engine: sa.Engine) -> int:
    with orm.Session(engine) as session:
        return len(query_history(session))


# -- another manager on the same object ---------------------------------------


def test_cascade_to_another_manager_moves_both_in_one_perform(chain_db: orm.Session) -> None:
    project = add_project(chain_db, _review="approved")
    plan = project.state.delete.plan(OWNER)
    assert [(s.obj, s.manager, s.transition) for s in plan.steps] == [
        (project, "state", ProjectState.delete),
        (project, "review", ReviewState.lock),
    ]
    assert plan.summary() == {"Project": 1}
    result = project.state.delete(OWNER)
    chain_db.commit()
    assert project.state.DELETED and project.review.LOCKED
    assert chain_db.execute(sa.select(Project._state, Project._review)).one() == (4, "locked")
    state_record, review_record = query_history(chain_db)
    assert (state_record.manager, state_record.transition, state_record.parent_id) == ("state", "delete", None)
    assert (review_record.manager, review_record.transition) == ("review", "lock")
    assert (review_record.source, review_record.target) == ("APPROVED", "LOCKED")
    assert review_record.parent_id == state_record.id == result.record.id  # type: ignore[union-attr]


def test_other_manager_already_in_target_is_skipped(chain_db: orm.Session) -> None:
    project = add_project(chain_db, _review="locked")
    assert [s.manager for s in project.state.delete.plan(OWNER).steps] == ["state"]
    project.state.delete(OWNER)
    chain_db.commit()
    assert [r.manager for r in query_history(chain_db)] == ["state"]


# -- relationships, recursively ------------------------------------------------


def test_delete_cascades_to_sessions_and_their_comments(chain_db: orm.Session) -> None:
    project = add_project(chain_db, sessions=3, comments=2)
    plan = project.state.delete.plan(OWNER)
    assert plan.ok and plan.blockers == [] and plan.error is None
    assert plan.summary() == {"Project": 1, "Session": 3, "Comment": 6}
    # parents before children, level by level
    assert [s.depth for s in plan.steps] == [0, 1, 1, 1, 1] + [2] * 6
    assert all(plan.steps[s.parent].obj is s.obj.session for s in plan.steps if isinstance(s.obj, Comment))

    result = project.state.delete(OWNER, data={"reason": "spam"})
    chain_db.commit()
    assert len(result.steps) == 11
    assert stored_states(chain_db.get_bind()) == {  # type: ignore[arg-type]
        "project": [(4, "locked")],
        "session": [(4, "", DELETED_AT)] * 3,
        "comment": [2] * 6,
    }
    records = query_history(chain_db)
    assert len(records) == 11
    by_object = {(r.model, r.object_id, r.manager): r for r in records}
    root = by_object["Project", str(project.id), "state"]
    assert root.parent_id is None and root.payload == {"reason": "spam"}
    for session in project.sessions:
        record = by_object["Session", str(session.id), "state"]
        assert record.parent_id == root.id
        assert (record.source, record.target) == ("DRAFT", "DELETED")
        for comment in session.comments:
            assert by_object["Comment", str(comment.id), "state"].parent_id == record.id
    # each step's record is the one in the database
    assert sorted(s.record.id for s in result.steps) == sorted(r.id for r in records)  # type: ignore[union-attr]


def test_children_already_in_target_are_skipped(chain_db: orm.Session) -> None:
    project = add_project(chain_db, sessions=3, comments=1)
    done = project.sessions[1]
    done.state.delete(OWNER)
    chain_db.commit()
    assert [s.obj for s in project.state.delete.plan(OWNER).steps if isinstance(s.obj, Session)] == [
        project.sessions[0],
        project.sessions[2],
    ]
    project.state.delete(OWNER)
    chain_db.commit()
    records = query_history(chain_db, model=Session)
    assert [r.object_id for r in records].count(str(done.id)) == 1


def build_blocked(db: orm.Session) -> Project:
    """A project whose deletion is blocked once per kind of check: a session
    hosted by someone else (permission), a pinned comment (precondition), a
    comment kept for moderation (state), a comment of an archived session
    (requires)."""
    project = add_project(db, sessions=5, comments=1)
    hosted, pinned, hidden, archived, _fine = project.sessions
    hosted.host_id = HOST.id
    pinned.comments[0].pinned = True
    hidden.comments[0]._state = CommentState.HIDDEN.value
    archived._state = SessionState.ARCHIVED.value
    db.commit()
    return project


def test_plan_lists_every_step_and_blocker_before_anything_runs(chain_db: orm.Session) -> None:
    project = build_blocked(chain_db)
    hosted, pinned, hidden, archived, _fine = project.sessions
    before = stored_states(chain_db.get_bind())  # type: ignore[arg-type]
    statements: list[str] = []
    sa.event.listen(chain_db.get_bind(), "before_cursor_execute", lambda *a: statements.append(a[2]))
    plan = project.state.delete.plan(OWNER)
    assert not plan.ok
    assert plan.summary() == {"Project": 1, "Session": 5, "Comment": 5}
    # level by level; the hosted session's comment is the host's as well
    assert [(r.code, r.message) for r in plan.blockers] == [
        ("cascade", f"Session {hosted.id}: Delete needs the role owner"),
        ("cascade", f"Comment {hosted.comments[0].id}: Delete needs the role owner"),
        ("cascade", f"Comment {pinned.comments[0].id}: Pinned comments cannot be deleted"),
        ("cascade", f"Comment {hidden.comments[0].id}: Delete is not possible while state is Hidden"),
        ("cascade", f"Comment {archived.comments[0].id}: The session must be active first"),
    ]
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements)
    assert stored_states(chain_db.get_bind()) == before  # type: ignore[arg-type]


def test_perform_refuses_the_whole_chain_naming_the_first_blocking_child(chain_db: orm.Session) -> None:
    project = build_blocked(chain_db)
    before = stored_states(chain_db.get_bind())  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied) as refused:
        project.state.delete(OWNER)
    hosted = project.sessions[0]
    assert refused.value.http_status == 403
    assert [(r.code, r.message) for r in refused.value.reasons] == [
        ("cascade", f"Session {hosted.id}: Delete needs the role owner")
    ]
    chain_db.commit()
    assert stored_states(chain_db.get_bind()) == before  # type: ignore[arg-type]
    assert query_history(chain_db) == []
    assert project.state.DRAFT and project.review.PENDING
    assert all(s.state.value == before_s[0] for s, before_s in zip(project.sessions, before["session"]))


@pytest.mark.parametrize(
    ("block", "error", "messages"),
    [
        (
            "hosted",
            PermissionDenied,
            ["Session {session}: Delete needs the role owner", "Comment {comment}: Delete needs the role owner"],
        ),
        ("pinned", PreconditionFailed, ["Comment {comment}: Pinned comments cannot be deleted"]),
        ("hidden", StateConflict, ["Comment {comment}: Delete is not possible while state is Hidden"]),
        ("archived", RequirementsUnmet, ["Comment {comment}: The session must be active first"]),
    ],
)
def test_each_kind_of_check_blocks_the_chain(
    chain_db: orm.Session, block: str, error: type[TransitionError], messages: list[str]
) -> None:
    project = add_project(chain_db, sessions=2, comments=1)
    session = project.sessions[1]
    comment = session.comments[0]
    if block == "hosted":
        session.host_id = HOST.id
    elif block == "pinned":
        comment.pinned = True
    elif block == "hidden":
        comment._state = CommentState.HIDDEN.value
    else:
        session._state = SessionState.ARCHIVED.value
    chain_db.commit()
    availability = project.state.delete.check(OWNER)
    expected = [m.format(session=session.id, comment=comment.id) for m in messages]
    assert [(r.code, r.message) for r in availability.reasons] == [("cascade", m) for m in expected]
    # the error is the first blocker's, with the status of its check
    with pytest.raises(error) as refused:
        project.state.delete(OWNER)
    assert [r.message for r in refused.value.reasons] == expected[:1]
    assert project.state.DRAFT and query_history(chain_db) == []


def test_the_chain_is_checked_for_the_acting_user(chain_db: orm.Session) -> None:
    project = add_project(chain_db, sessions=2)
    project.sessions[0].host_id = HOST.id
    chain_db.commit()
    # the host owns one session but not the project: refused at the root
    with pytest.raises(PermissionDenied) as refused:
        project.state.delete(HOST)
    assert [r.code for r in refused.value.reasons] == ["permission"]
    with pytest.raises(PermissionDenied):
        project.state.delete(STRANGER)
    # the owner may delete the project but not the hosted session
    assert [r.code for r in project.state.delete.check(OWNER).reasons] == ["cascade"]
    # the host deletes their session; now the owner's chain skips it
    project.sessions[0].state.delete(HOST)
    project.state.delete(OWNER)
    chain_db.commit()
    assert chain_db.scalars(sa.select(Session._state)).all() == [4, 4]


# -- all or nothing ------------------------------------------------------------


def test_failure_in_the_500th_child_leaves_everything_as_before(chain_db: orm.Session, chain_engine: sa.Engine) -> None:
    project = add_project(chain_db, sessions=600, comments=1)
    fails = chain_db.scalars(sa.select(Session.id).order_by(Session.id)).all()[499]
    chain_db.execute(sa.update(Session).values(booking="room 1"))
    chain_db.execute(sa.update(Session).where(Session.id == fails).values(booking="non-refundable"))
    chain_db.commit()
    project = reload(chain_db, project)
    before = stored_states(chain_engine)
    plan = project.state.delete.plan(OWNER)
    assert plan.ok and plan.summary() == {"Project": 1, "Session": 600, "Comment": 600}
    failed: list[BaseException] = []

    def on_failed(sender: t.Any, **kw: t.Any) -> None:
        failed.append(kw["exception"])

    with transition_failed.connected_to(on_failed):
        with pytest.raises(BookingError, match="cannot be cancelled"):
            project.state.delete.perform_plan(plan, OWNER)
    assert len(failed) == 1 and isinstance(failed[0], BookingError)

    # in memory: every manager as the plan saw it, the hooks' changes undone
    assert all(getattr(s.obj, s.manager).value == s.seen for s in plan.steps)
    assert not chain_db.dirty and not chain_db.new
    assert project.state.DRAFT and project.review.PENDING
    sessions = project.sessions
    assert [s.booking for s in sessions].count("room 1") == 599
    assert all(s.deleted_at is None and s.state.DRAFT for s in sessions)
    # in the database, seen from this transaction and after it commits
    assert chain_db.scalar(sa.select(sa.func.count()).select_from(Session).where(Session._state != 1)) == 0
    chain_db.commit()
    assert stored_states(chain_engine) == before
    assert history_count(chain_engine) == 0
    # the same session goes on working: fix the booking and delete again
    sessions[499].booking = "room 2"
    project.state.delete(OWNER)
    chain_db.commit()
    assert history_count(chain_engine) == 1 + 1 + 600 + 600


def test_failure_in_another_manager_rolls_back_both(chain_db: orm.Session, chain_engine: sa.Engine) -> None:
    project = add_project(chain_db, sessions=1)
    project.sessions[0].booking = "non-refundable"
    chain_db.commit()
    with pytest.raises(BookingError):
        project.state.delete(OWNER)
    chain_db.commit()
    assert stored_states(chain_engine)["project"] == [(1, "pending")]
    assert project.state.DRAFT and project.review.PENDING


# -- concurrency -----------------------------------------------------------------


def test_child_changed_between_plan_and_execute_fails_the_whole_chain(
    chain_db: orm.Session, chain_engine: sa.Engine
) -> None:
    project = add_project(chain_db, sessions=5)
    plan = project.state.delete.plan(OWNER)
    assert plan.ok
    changed = project.sessions[3].id
    # end this transaction (as a request showing the plan for confirmation
    # would) so that on SQLite the other writer is not waiting on our lock
    chain_db.commit()
    with chain_engine.begin() as other:
        other.execute(sa.update(Session).where(Session.id == changed).values(_state=SessionState.ARCHIVED.value))
    with pytest.raises(StateConflict) as conflict:
        project.state.delete.perform_plan(plan, OWNER)
    assert "changed state while the transition ran" in conflict.value.message
    chain_db.commit()
    assert stored_states(chain_engine) == {
        "project": [(1, "pending")],
        "session": [(3 if i == 3 else 1, "", None) for i in range(5)],
        "comment": [],
    }
    assert history_count(chain_engine) == 0
    assert project.state.DRAFT
    # planning again sees the change and succeeds
    project.state.delete(OWNER)
    chain_db.commit()
    assert history_count(chain_engine) == 1 + 1 + 5


def test_child_changed_by_another_connection_while_the_chain_runs(
    chain_db: orm.Session, chain_engine: sa.Engine, database_url: str
) -> None:
    project = add_project(chain_db, sessions=20)
    target = project.sessions[10].id
    other_engine = sa.create_engine(database_url)
    configure_engine(other_engine)
    updated = threading.Event()
    done = threading.Event()
    outcome: dict[str, BaseException | None] = {}

    def change_child() -> None:
        try:
            with other_engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    # fail fast rather than wait the configured 5 s
                    conn.exec_driver_sql("PRAGMA busy_timeout = 1000")
                conn.execute(sa.update(Session).where(Session.id == target).values(_state=SessionState.ARCHIVED.value))
                updated.set()
            outcome["child"] = None
        except sa.exc.OperationalError as e:
            outcome["child"] = e
        finally:
            updated.set()
            done.set()

    worker = threading.Thread(target=change_child)

    def start_the_other_writer(sender: t.Any, **kw: t.Any) -> None:
        # inside the chain's savepoint, after planning, before any UPDATE
        if kw["obj"] is project:
            worker.start()
            assert updated.wait(10)
            done.wait(2)

    with transition_before.connected_to(start_the_other_writer, sender=ProjectState.delete):
        try:
            project.state.delete(OWNER)
            outcome["chain"] = None
        except StateConflict as e:
            outcome["chain"] = e
    # let a writer waiting on this transaction's lock finish
    chain_db.commit()
    worker.join(10)
    other_engine.dispose()

    stored = stored_states(chain_engine)
    child_state = stored["session"][10][0]
    if outcome["chain"] is None:
        # the chain won: the child change failed, the chain is whole
        assert outcome["child"] is not None
        assert stored["project"] == [(4, "locked")]
        assert [s[0] for s in stored["session"]] == [4] * 20
        assert history_count(chain_engine) == 22
    else:
        # the child change won: nothing of the chain is written
        assert outcome["child"] is None
        assert child_state == SessionState.ARCHIVED.value
        assert stored["project"] == [(1, "pending")]
        assert [s[0] for s in stored["session"]] == [3 if i == 10 else 1 for i in range(20)]
        assert history_count(chain_engine) == 0
    if chain_engine.dialect.name == "postgresql":
        # no row lock stands in the way there: the other writer commits first
        assert isinstance(outcome["chain"], StateConflict)


# -- cycles ----------------------------------------------------------------------


class CycleBase(orm.DeclarativeBase):
    pass


class AlbumState(StateManager):
    DRAFT = State(1, "Draft")
    DELETED = State(2, "Deleted")
    delete = Transition(DRAFT, DELETED, "Delete", cascade={"tracks": "delete"})


class TrackState(StateManager):
    DRAFT = State(1, "Draft")
    DELETED = State(2, "Deleted")
    # deleting a track deletes its album, which deletes every track: a loop
    delete = Transition(DRAFT, DELETED, "Delete", cascade={"album": "delete"})


class DocState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    publish = Transition(DRAFT, PUBLISHED, "Publish", cascade={"lock": "engage"})
    submit = Transition(DRAFT, PUBLISHED, "Submit", cascade={"lock": "seal"})
    retract = Transition(PUBLISHED, DRAFT, "Retract")


class LockState(StateManager):
    OPEN = State("open", "Open")
    ENGAGED = State("engaged", "Engaged")
    # state.publish -> lock.engage -> state.publish: A -> B -> A
    engage = Transition(OPEN, ENGAGED, "Engage", cascade={"state": "publish"})
    # state.submit -> lock.seal -> state.retract: back towards another state
    seal = Transition(OPEN, ENGAGED, "Seal", cascade={"state": "retract"})


class Album(CycleBase):
    __tablename__ = "cycle_album"
    id: Mapped[int] = mapped_column(primary_key=True)
    _state: Mapped[int] = AlbumState.column(default=AlbumState.DRAFT)
    state = AlbumState("_state")
    tracks: Mapped[list[Track]] = orm.relationship(back_populates="album", order_by="Track.id")


class Track(CycleBase):
    __tablename__ = "cycle_track"
    id: Mapped[int] = mapped_column(primary_key=True)
    album_id: Mapped[int] = mapped_column(sa.ForeignKey("cycle_album.id"))
    album: Mapped[Album] = orm.relationship(back_populates="tracks")
    _state: Mapped[int] = TrackState.column(default=TrackState.DRAFT)
    state = TrackState("_state")


class Doc(CycleBase):
    __tablename__ = "cycle_doc"
    id: Mapped[int] = mapped_column(primary_key=True)
    _state: Mapped[int] = DocState.column(default=DocState.DRAFT)
    state = DocState("_state")
    _lock: Mapped[str] = LockState.column(default=LockState.OPEN)
    lock = LockState("_lock")


@pytest.fixture
def cycle_db(database_url: str) -> t.Iterator[orm.Session]:
    engine = sa.create_engine(database_url)
    configure_engine(engine)
    CycleBase.metadata.create_all(engine)
    with orm.Session(engine) as session:
        yield session
    CycleBase.metadata.drop_all(engine)
    engine.dispose()


def test_cycle_through_the_parent_relationship_terminates(cycle_db: orm.Session) -> None:
    album = Album(tracks=[Track() for _ in range(4)])
    cycle_db.add(album)
    cycle_db.commit()
    first = album.tracks[0]
    plan = first.state.delete.plan()
    assert plan.ok
    # each object once: the first track, its album, the album's other tracks
    assert [s.obj for s in plan.steps] == [first, album, *album.tracks[1:]]
    first.state.delete()
    cycle_db.commit()
    assert cycle_db.scalars(sa.select(Track._state)).all() == [2] * 4
    assert album.state.DELETED
    assert len(query_history(cycle_db)) == 5
    # from the other end as well
    other = Album(tracks=[Track(), Track()])
    cycle_db.add(other)
    cycle_db.commit()
    assert len(other.state.delete().steps) == 3


def test_cycle_between_two_managers_terminates(cycle_db: orm.Session) -> None:
    doc = Doc()
    cycle_db.add(doc)
    cycle_db.commit()
    result = doc.state.publish()
    cycle_db.commit()
    assert [(s.manager, s.transition.name) for s in result.steps] == [("state", "publish"), ("lock", "engage")]
    assert cycle_db.execute(sa.select(Doc._state, Doc._lock)).one() == (2, "engaged")
    # from the other manager: lock.engage -> state.publish -> lock.engage
    other = Doc()
    cycle_db.add(other)
    cycle_db.commit()
    assert [s.manager for s in other.lock.engage().steps] == ["lock", "state"]
    assert other.state.PUBLISHED


def test_cycle_that_contradicts_itself_is_refused(cycle_db: orm.Session) -> None:
    doc = Doc()
    cycle_db.add(doc)
    cycle_db.commit()
    plan = doc.state.submit.plan()
    assert [(r.code, r.message) for r in plan.blockers] == [
        ("cascade", f"Doc {doc.id}: the cascade reaches it twice with conflicting transitions (submit, retract)")
    ]
    with pytest.raises(StateConflict) as refused:
        doc.state.submit()
    assert refused.value.http_status == 409
    cycle_db.commit()
    assert cycle_db.execute(sa.select(Doc._state, Doc._lock)).one() == (1, "open")
    assert query_history(cycle_db) == []


# -- no N+1 ------------------------------------------------------------------------


def statements_for(db: orm.Session, engine: sa.Engine, children: int) -> tuple[collections.Counter[str], ...]:
    project = reload(db, add_project(db, sessions=children, comments=1))
    recorded = history_count(engine)
    plans: list[t.Any] = []
    planned = count_statements(engine, lambda: plans.append(project.state.delete.plan(OWNER)))
    assert plans[0].summary() == {"Project": 1, "Session": children, "Comment": children}
    performed = count_statements(engine, lambda: project.state.delete.perform_plan(plans[0], OWNER))
    db.commit()
    assert history_count(engine) - recorded == 2 + 2 * children
    return planned, performed


def test_plan_and_perform_statements_do_not_grow_with_the_children(
    chain_db: orm.Session, chain_engine: sa.Engine
) -> None:
    small_plan, small_perform = statements_for(chain_db, chain_engine, 10)
    large_plan, large_perform = statements_for(chain_db, chain_engine, 1000)
    # planning: the sessions, then their comments (one query for the whole
    # level, by the sessions' keys)
    assert small_plan == large_plan == {"SELECT": 2}
    # performing: no reads at all, and per level one compare-and-set per
    # model and state (per chunk of 1,000 keys) with the history records;
    # what the sessions' execute hook set (booking, deleted_at) is written by
    # their compare-and-set, not by a flush of its own. On PostgreSQL each is
    # one statement (WITH ... UPDATE ... RETURNING, INSERT ... SELECT, the
    # keys as an array); on SQLite an UPDATE, and an INSERT ... SELECT of a
    # JSON array of the records (the second level holds the sessions and the
    # project's review: two of each).
    if chain_engine.dialect.name == "postgresql":
        assert small_perform == large_perform == {"WITH": 4, "SAVEPOINT": 1, "RELEASE": 1}
    else:
        assert small_perform == large_perform == {"UPDATE": 4, "INSERT": 4, "SAVEPOINT": 1, "RELEASE": 1}


def test_children_loaded_by_their_key_know_their_parent(chain_db: orm.Session, chain_engine: sa.Engine) -> None:
    project = reload(chain_db, add_project(chain_db, sessions=3, comments=2))
    plan = project.state.delete.plan(OWNER)
    sessions = [s.obj for s in plan.steps if isinstance(s.obj, Session)]
    comments = [s.obj for s in plan.steps if isinstance(s.obj, Comment)]
    assert [s.id for s in sessions] == sorted(s.id for s in sessions)
    # each child's many-to-one back is its parent, loaded with it
    assert all(sa.inspect(s).attrs.project.loaded_value is project for s in sessions)
    assert all(sa.inspect(c).attrs.session.loaded_value in sessions for c in comments)
    assert count_statements(chain_engine, lambda: [c.session.project for c in comments]) == {}
    assert [c.session for c in comments] == [s for s in sessions for _ in range(2)]


def test_statements_keep_their_text_for_any_number_of_children(chain_db: orm.Session, chain_engine: sa.Engine) -> None:
    # the keys travel as one array (PostgreSQL's, or JSON on SQLite): no
    # statement of the plan or the perform expands a list of 1,000 keys
    def texts(children: int) -> set[str]:
        project = reload(chain_db, add_project(chain_db, sessions=children, comments=1))
        sent: set[str] = set()

        def listener(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
            sent.add(statement)

        sa.event.listen(chain_engine, "before_cursor_execute", listener)
        try:
            project.state.delete(OWNER)
        finally:
            sa.event.remove(chain_engine, "before_cursor_execute", listener)
        chain_db.commit()
        return sent

    small, large = texts(10), texts(1000)
    assert small == large
    assert max(len(s) for s in large) < 3000


# -- the execute hooks' changes, written by the compare-and-set -------------------


class FoldBase(orm.DeclarativeBase):
    pass


class ShelfState(StateManager):
    OPEN = State(1, "Open")
    CLOSED = State(2, "Closed")
    close = Transition(OPEN, CLOSED, "Close", cascade={"books": "remove", "versioned": "remove"})


class BookState(StateManager):
    SHELVED = State(1, "Shelved")
    REMOVED = State(2, "Removed")
    remove = Transition(SHELVED, REMOVED, "Remove")


def _note_removed(book: Book) -> None:
    book.note = "removed"


#: what a book's execute hook does, changed by a test
BOOK_HOOK: list[t.Callable[[Book], None]] = [_note_removed]


class Shelf(FoldBase):
    __tablename__ = "fold_shelf"
    id: Mapped[int] = mapped_column(primary_key=True)
    _state: Mapped[int] = ShelfState.column(default=ShelfState.OPEN)
    state = ShelfState("_state")
    books: Mapped[list[Book]] = orm.relationship(back_populates="shelf", order_by="Book.id")
    versioned: Mapped[list[VersionedBook]] = orm.relationship(order_by="VersionedBook.id")


class Book(FoldBase):
    __tablename__ = "fold_book"
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int | None] = mapped_column(sa.ForeignKey("fold_shelf.id"))
    shelf: Mapped[Shelf | None] = orm.relationship(back_populates="books")
    note: Mapped[str] = mapped_column(sa.String(40), default="")
    reads: Mapped[int] = mapped_column(default=0)
    _state: Mapped[int] = BookState.column(default=BookState.SHELVED)
    state = BookState("_state")

    @BookState.remove.execute
    def _removed(self, data: dict[str, t.Any]) -> None:
        BOOK_HOOK[0](self)


class VersionedBook(FoldBase):
    __tablename__ = "fold_versioned_book"
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(sa.ForeignKey("fold_shelf.id"))
    note: Mapped[str] = mapped_column(sa.String(40), default="")
    version: Mapped[int] = mapped_column(default=1)
    _state: Mapped[int] = BookState.column(default=BookState.SHELVED)
    state = BookState("_state")
    __mapper_args__ = {"version_id_col": version}

    @BookState.remove.execute
    def _removed(self, data: dict[str, t.Any]) -> None:
        self.note = "removed"


@pytest.fixture
def fold_db(database_url: str) -> t.Iterator[orm.Session]:
    engine = sa.create_engine(database_url)
    configure_engine(engine)
    FoldBase.metadata.create_all(engine)
    with orm.Session(engine) as session:
        yield session
    BOOK_HOOK[:] = [_note_removed]
    FoldBase.metadata.drop_all(engine)
    engine.dispose()


def close_shelf(db: orm.Session, books: int, versioned: int = 0) -> tuple[list[str], list[tuple[t.Any, ...]]]:
    """Close a new shelf of ``books`` books (and ``versioned`` versioned
    ones), from a fresh identity map: the statements of the perform, and
    each book's (note, reads, state, shelf_id) as the database has them."""
    shelf = Shelf()
    db.add(shelf)
    db.flush()
    db.execute(sa.insert(Book), [{"shelf_id": shelf.id, "note": "on loan"} for _ in range(books)])
    if versioned:
        db.execute(sa.insert(VersionedBook), [{"shelf_id": shelf.id} for _ in range(versioned)])
    db.commit()
    shelf_id = shelf.id
    ids = db.scalars(sa.select(Book.id).where(Book.shelf_id == shelf_id)).all()
    recorded = len(query_history(db))
    db.expunge_all()
    shelf = db.get_one(Shelf, shelf_id)
    plan = shelf.state.close.plan()
    assert plan.ok and len(plan.steps) == 1 + books + versioned
    sent: list[str] = []

    def listener(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = db.get_bind()
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        shelf.state.close.perform_plan(plan)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    db.commit()
    assert len(query_history(db)) - recorded == 1 + books + versioned
    rows = db.execute(
        sa.select(Book.note, Book.reads, Book._state, Book.shelf_id).where(Book.id.in_(ids)).order_by(Book.id)
    ).all()
    return sent, [tuple(r) for r in rows]


def book_writes(sent: list[str]) -> tuple[int, int]:
    """(compare-and-sets that also set the note, other UPDATEs of books)."""
    updates = [s for s in sent if " fold_book SET " in s]
    folded = [s for s in updates if "_state=" in s.replace(" ", "") and "note=" in s.replace(" ", "")]
    return len(folded), len(updates) - len(folded)


def test_hook_changes_are_written_by_the_compare_and_set(fold_db: orm.Session) -> None:
    small, small_rows = close_shelf(fold_db, 10)
    large, large_rows = close_shelf(fold_db, 1000)
    # one statement per chunk of 1,000 moves the books and writes their
    # note; no flush of their own: the statements are those of 10 books
    assert book_writes(small) == book_writes(large) == (1, 0)
    assert collections.Counter(s.split()[0] for s in small) == collections.Counter(s.split()[0] for s in large)
    assert {r[:3] for r in small_rows + large_rows} == {("removed", 0, 2)}


def test_changes_that_differ_make_a_statement_per_set(fold_db: orm.Session) -> None:
    BOOK_HOOK[0] = lambda book: setattr(book, "note", "even" if book.id % 2 == 0 else "odd")
    small, small_rows = close_shelf(fold_db, 10)
    large, large_rows = close_shelf(fold_db, 1000)
    assert book_writes(small) == book_writes(large) == (2, 0)
    first = fold_db.scalar(sa.select(sa.func.min(Book.id)))
    assert [r[0] for r in small_rows + large_rows] == [
        "even" if i % 2 == 0 else "odd" for i in range(first, first + 1010)
    ]


def test_changes_of_every_object_its_own_are_flushed(fold_db: orm.Session) -> None:
    BOOK_HOOK[0] = lambda book: setattr(book, "note", f"removed {book.id}")
    small, small_rows = close_shelf(fold_db, 10)
    large, large_rows = close_shelf(fold_db, 1000)
    # the most common sets go with the compare-and-set, the others are
    # flushed (one executemany): statements do not grow with the books
    assert book_writes(small) == book_writes(large) == (4, 2)
    first = fold_db.scalar(sa.select(sa.func.min(Book.id)))
    assert [r[0] for r in small_rows + large_rows] == [f"removed {i}" for i in range(first, first + 1010)]
    assert {r[2] for r in small_rows + large_rows} == {2}


def test_an_update_listener_on_the_model_keeps_the_flush(fold_db: orm.Session) -> None:
    seen: list[tuple[str, int]] = []

    def before_update(mapper: t.Any, connection: t.Any, book: Book) -> None:
        # the flush runs before the compare-and-set: the state in memory is
        # still the one the checks saw
        seen.append((book.note, book._state))

    sa.event.listen(Book, "before_update", before_update)
    try:
        sent, rows = close_shelf(fold_db, 20)
    finally:
        sa.event.remove(Book, "before_update", before_update)
    assert seen == [("removed", 1)] * 20
    assert book_writes(sent) == (0, 2)
    assert {r[:3] for r in rows} == {("removed", 0, 2)}


def test_a_flush_listener_on_the_session_keeps_the_flush(fold_db: orm.Session) -> None:
    dirty: list[int] = []

    def before_flush(session: orm.Session, context: t.Any, instances: t.Any) -> None:
        dirty.extend(o.id for o in session.dirty if isinstance(o, Book))

    sa.event.listen(fold_db, "before_flush", before_flush)
    try:
        sent, rows = close_shelf(fold_db, 20)
    finally:
        sa.event.remove(fold_db, "before_flush", before_flush)
    assert len(dirty) == 20
    assert book_writes(sent) == (0, 2)
    assert {r[:3] for r in rows} == {("removed", 0, 2)}


def test_a_version_counter_keeps_the_flush(fold_db: orm.Session) -> None:
    sent, _ = close_shelf(fold_db, 0, versioned=20)
    assert [s for s in sent if " fold_versioned_book SET note" in s]
    rows = fold_db.execute(sa.select(VersionedBook.note, VersionedBook.version, VersionedBook._state)).all()
    assert set(rows) == {("removed", 2, 2)}


def test_an_sql_expression_is_flushed(fold_db: orm.Session) -> None:
    BOOK_HOOK[0] = lambda book: setattr(book, "reads", Book.reads + 1)
    sent, rows = close_shelf(fold_db, 20)
    assert [s for s in sent if "reads=(fold_book.reads +" in s.replace(" + ", " +")]
    assert {r[:3] for r in rows} == {("on loan", 1, 2)}


def test_a_relationship_change_is_flushed(fold_db: orm.Session) -> None:
    def take_off_the_shelf(book: Book) -> None:
        book.note = "removed"
        book.shelf = None

    BOOK_HOOK[0] = take_off_the_shelf
    sent, rows = close_shelf(fold_db, 20)
    assert book_writes(sent)[0] == 0
    assert set(rows) == {("removed", 0, 2, None)}


def test_a_conflict_after_the_hooks_changes_were_written_undoes_them(
    chain_db: orm.Session, chain_engine: sa.Engine
) -> None:
    project = add_project(chain_db, sessions=5, comments=1)
    chain_db.execute(sa.update(Session).values(booking="room 1"))
    chain_db.commit()
    project = reload(chain_db, project)
    plan = project.state.delete.plan(OWNER)
    assert plan.ok
    changed = project.sessions[2].comments[0].id
    chain_db.commit()
    with chain_engine.begin() as other:
        other.execute(sa.update(Comment).where(Comment.id == changed).values(_state=CommentState.HIDDEN.value))
    before = stored_states(chain_engine)
    # the sessions' compare-and-set writes their bookings, then the
    # comments' finds one taken
    with pytest.raises(StateConflict):
        project.state.delete.perform_plan(plan, OWNER)
    assert all(s.booking == "room 1" and s.deleted_at is None and s.state.DRAFT for s in project.sessions)
    assert not chain_db.dirty
    chain_db.commit()
    assert stored_states(chain_engine) == before
    assert history_count(chain_engine) == 0
