"""Binding a manager to a model: instance access (state tests, ``value``,
``current``, ``title``), class access (SQL clauses run against each
database), and hooks collected per host class."""

from __future__ import annotations

import datetime
import typing as t

import pytest
import sqlalchemy as sa
from core_models import (
    ALICE,
    STAMP,
    Article,
    Letter,
    Memo,
    Minute,
    Project,
    ProjectState,
    ReviewState,
    Ticket,
    add_project,
)
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from flask_statemgr import BoundTransition, State, StateManager, Transition


def test_bound_by_name_and_by_mapped_column() -> None:
    # ``state`` was bound by name, ``review`` by the mapped_column object
    project = Project(_state=2, _review="approved")
    assert project.state.PUBLISHED and project.review.APPROVED
    clause = Project.review.APPROVED.compile(compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    assert str(clause) == "core_project._review = 'approved'"


def test_binding_an_unknown_mapped_column_fails() -> None:
    class OwnBase(orm.DeclarativeBase):
        pass

    elsewhere = ReviewState.column()
    with pytest.raises((TypeError, RuntimeError)) as info:

        class Lonely(OwnBase):
            __tablename__ = "lonely"
            id: Mapped[int] = mapped_column(primary_key=True)
            review = ReviewState(elsewhere)

    # before Python 3.12 an error in __set_name__ comes wrapped in a RuntimeError
    error = info.value.__cause__ or info.value
    assert isinstance(error, TypeError)
    assert str(error).startswith("Lonely.review: the mapped_column given to ReviewState")


def test_state_attribute_is_read_only() -> None:
    project = Project(_state=1)
    with pytest.raises(AttributeError, match="Project.state is read-only"):
        project.state = ProjectState.PUBLISHED  # type: ignore[assignment]
    assert project.state.DRAFT
    # writing the column directly bypasses everything, at the user's risk
    project._state = 2
    assert project.state.PUBLISHED and not project.state.DRAFT


def test_instance_state_checks() -> None:
    project = Project(_state=1)
    checks = {name: bool(getattr(project.state, name)) for name in ProjectState.states()}
    assert checks == {
        "DRAFT": True,
        "PUBLISHED": False,
        "WITHDRAWN": False,
        "DELETED": False,
        "GONE": False,
        "UNPUBLISHED": True,
        "LIVE": False,
        "PINNED": False,
        "REDRAFTABLE": False,
    }
    project._state = 4
    assert project.state.DELETED and project.state.GONE and not project.state.UNPUBLISHED
    project._state = 3
    assert project.state.GONE and project.state.UNPUBLISHED and project.state.REDRAFTABLE


def test_instance_checks_are_plain_bools() -> None:
    project = Project(_state=1)
    assert project.state.DRAFT is True
    assert project.state.PUBLISHED is False


def test_conditional_states_run_their_validator() -> None:
    project = Project(_state=2)
    # LIVE's validator is a marked method on the model
    assert project.state.PUBLISHED and not project.state.LIVE
    project.published_at = STAMP
    assert project.state.LIVE
    # PINNED's was given to conditional()
    assert not project.state.PINNED
    project.pinned = True
    assert project.state.PINNED
    # a conditional never holds outside its base
    project._state = 1
    assert not project.state.LIVE and not project.state.PINNED


def test_group_with_a_conditional_member() -> None:
    project = Project(_state=2)
    assert not project.state.REDRAFTABLE
    project.published_at = STAMP
    assert project.state.REDRAFTABLE
    project._state = 3
    project.published_at = None
    assert project.state.REDRAFTABLE


def test_value_current_and_title() -> None:
    project = Project(_state=1)
    assert project.state.value == 1
    assert project.state.current is ProjectState.DRAFT
    assert project.state.title == "Draft"
    project._state = 2
    assert project.state.current is ProjectState.PUBLISHED
    assert project.state.title == "Published"
    # a conditional state that holds wins over its base
    project.pinned = True
    assert project.state.current is ProjectState.PINNED
    assert project.state.title == "Pinned"
    # when several hold, the first declared wins
    project.published_at = STAMP
    assert project.state.current is ProjectState.LIVE
    assert project.state.title == "Live"


def test_current_is_for_instances_only() -> None:
    with pytest.raises(AttributeError, match="only available on an instance"):
        Project.state.current  # noqa: B018


def test_new_objects_report_the_column_default() -> None:
    # before the INSERT the attribute is None; the default is what it will be
    project = Project()
    assert project.state.value == 1
    assert project.state.DRAFT and project.state.current is ProjectState.DRAFT
    assert project.review.PENDING


def test_views_are_cached_per_object_and_per_class() -> None:
    project = Project(_state=1)
    assert project.state is project.state
    assert Project.state is Project.state
    assert project.state is not Project.state
    assert isinstance(project.state, ProjectState)
    assert "ProjectState state=1" in repr(project.state)
    assert repr(Project.state) == "<ProjectState Project.state>"


def test_transitions_through_instance_and_class() -> None:
    project = Project(_state=1)
    bound = project.state.publish
    assert isinstance(bound, BoundTransition)
    assert bound.transition is ProjectState.publish
    assert bound.obj is project and bound.host is Project
    assert bound.name == "publish" and bound.title == "Publish"
    on_class = Project.state.publish
    assert isinstance(on_class, BoundTransition)
    assert on_class.obj is None and on_class.host is Project
    with pytest.raises(TypeError, match="bound to the class Project"):
        on_class()
    with pytest.raises(TypeError, match="bound to the class Project"):
        on_class.check()


def test_unknown_attributes_raise() -> None:
    project = Project(_state=1)
    with pytest.raises(AttributeError):
        project.state.DRAFTT  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError):
        ProjectState.publsh  # type: ignore[attr-defined]  # noqa: B018


def test_conditional_without_validator_or_expression() -> None:
    class Lamp(StateManager):
        OFF = State(0)
        ON = State(1)
        BRIGHT = ON.conditional("Bright")

    class Room:
        light = Lamp("level")

        def __init__(self) -> None:
            self.level = 1

    with pytest.raises(TypeError, match="Lamp.BRIGHT.*no validator on Room"):
        Room().light.BRIGHT  # noqa: B018

    class OwnBase(orm.DeclarativeBase):
        pass

    class Hall(OwnBase):
        __tablename__ = "hall"
        id: Mapped[int] = mapped_column(primary_key=True)
        level: Mapped[int] = Lamp.column(default=Lamp.OFF)
        light = Lamp("level")

    with pytest.raises(TypeError, match="Lamp.BRIGHT.*no SQL expression on Hall"):
        Hall.light.BRIGHT  # noqa: B018


# -- class access: SQL ---------------------------------------------------------------


def _compiled(clause: t.Any) -> str:
    return str(sa.select(Project.id).where(clause).compile(compile_kwargs={"literal_binds": True}))


def test_class_access_compiles_to_sql() -> None:
    assert _compiled(Project.state.DRAFT).endswith("WHERE core_project._state = 1")
    assert _compiled(Project.state.GONE).endswith("WHERE core_project._state IN (3, 4)")
    assert _compiled(~Project.state.GONE).endswith("WHERE (core_project._state NOT IN (3, 4))")
    assert _compiled(Project.state.LIVE).endswith(
        "WHERE core_project._state = 2 AND core_project.published_at IS NOT NULL"
    )
    assert _compiled(Project.state.PINNED).endswith("WHERE core_project._state = 2 AND core_project.pinned IS true")


def _ids(session: orm.Session, clause: t.Any) -> list[int]:
    return list(session.scalars(sa.select(Project.id).where(clause).order_by(Project.id)))


def test_queries(core_db: orm.Session) -> None:
    draft = add_project(core_db, _state=1)
    published = add_project(core_db, _state=2)
    live = add_project(core_db, _state=2, published_at=STAMP)
    pinned = add_project(core_db, _state=2, pinned=True)
    withdrawn = add_project(core_db, _state=3)
    deleted = add_project(core_db, _state=4)
    state = Project.state
    assert _ids(core_db, state.DRAFT) == [draft.id]
    assert _ids(core_db, ~state.DRAFT) == [published.id, live.id, pinned.id, withdrawn.id, deleted.id]
    assert _ids(core_db, state.PUBLISHED) == [published.id, live.id, pinned.id]
    assert _ids(core_db, state.GONE) == [withdrawn.id, deleted.id]
    assert _ids(core_db, ~state.GONE) == [draft.id, published.id, live.id, pinned.id]
    assert _ids(core_db, state.UNPUBLISHED) == [draft.id, withdrawn.id]
    assert _ids(core_db, state.LIVE) == [live.id]
    assert _ids(core_db, ~state.LIVE) == [draft.id, published.id, pinned.id, withdrawn.id, deleted.id]
    assert _ids(core_db, state.PINNED) == [pinned.id]
    assert _ids(core_db, state.REDRAFTABLE) == [live.id, withdrawn.id]
    assert _ids(core_db, ~state.REDRAFTABLE) == [draft.id, published.id, pinned.id, deleted.id]
    assert _ids(core_db, sa.and_(state.PUBLISHED, ~state.LIVE)) == [published.id, pinned.id]
    assert _ids(core_db, sa.or_(state.DRAFT, state.PINNED)) == [draft.id, pinned.id]
    # the instance answers agree with the queries
    for project in core_db.scalars(sa.select(Project)):
        for name in ProjectState.states():
            expected = project.id in _ids(core_db, getattr(Project.state, name))
            assert bool(getattr(project.state, name)) is expected, (project.id, name)


def test_queries_on_two_managers(core_db: orm.Session) -> None:
    first = add_project(core_db, _state=1, _review="approved")
    add_project(core_db, _state=1)
    add_project(core_db, _state=2, _review="approved")
    query = sa.select(Project.id).where(Project.state.DRAFT, Project.review.APPROVED)
    assert list(core_db.scalars(query)) == [first.id]
    assert core_db.scalar(sa.select(sa.func.count()).where(Project.review.UNLOCKED)) == 3


# -- one manager, several models --------------------------------------------------------


def test_manager_reused_by_unrelated_models(core_db: orm.Session) -> None:
    article = Article(published_at=STAMP, status=2)
    project = Project(published_at=STAMP, _state=2)
    # each model's own validator
    assert project.state.LIVE and not article.state.LIVE
    # and own SQL expression
    assert "false" in str(Article.state.LIVE.compile()).lower()  # type: ignore[attr-defined]
    core_db.add_all([Article(), Project(title="p")])
    core_db.commit()
    draft_article = core_db.scalars(sa.select(Article)).one()
    draft_project = core_db.scalars(sa.select(Project)).one()
    # Article has no title precondition and its own execute hook
    draft_article.state.publish(ALICE)
    assert draft_article.title == "published article"
    assert draft_article.published_at is None
    draft_project.state.publish(ALICE)
    assert draft_project.published_at == STAMP and draft_project.title == "p"
    core_db.commit()
    assert [r.model for r in draft_article.state.history()] == ["Article"]
    assert [r.model for r in draft_project.state.history()] == ["Project"]


def test_hooks_inherited_by_subclasses(core_db: orm.Session) -> None:
    memo, letter, minute = Memo(), Letter(), Minute()
    core_db.add_all([memo, letter, minute])
    core_db.commit()
    memo.state.finish()
    assert memo.notes == "base;" and memo.state.DONE
    # Letter adds a precondition and a second execute hook, after the base's
    check = letter.state.finish.check()
    assert not check.ok and check.reasons[0].message == "The letter is not signed"
    letter.notes = "signed;"
    letter.state.finish()
    assert letter.notes == "signed;base;letter;"
    # Minute overrides the base's hook without marking it
    minute.state.finish()
    assert minute.notes == "" and minute.state.DONE


def test_plain_python_class(core_db: orm.Session) -> None:
    ticket = Ticket("t")
    assert ticket.state.DRAFT and ticket.state.current is ProjectState.DRAFT
    ticket.published_at = datetime.datetime(2026, 1, 1)
    ticket._state = 2
    assert ticket.state.LIVE and ticket.state.current is ProjectState.LIVE
    with pytest.raises(AttributeError):
        ticket.state = 1  # type: ignore[assignment]


def test_transition_subclass_with_extra_fields_and_default_hooks() -> None:
    class Audited(Transition):
        def __init__(self, *args: t.Any, audit: str = "", **kwargs: t.Any) -> None:
            super().__init__(*args, **kwargs)
            self.audit = audit

    class Door(StateManager):
        SHUT = State(0, "Shut")
        OPEN = State(1, "Open")
        open = Audited(SHUT, OPEN, "Open", audit="log")

    class House:
        door = Door("position")

        def __init__(self) -> None:
            self.position = 0
            self.log: list[str] = []

        @Door.open.execute
        def _log(self, data: dict[str, t.Any]) -> None:
            self.log.append(Door.open.audit)

    assert isinstance(Door.open, Audited) and Door.open.audit == "log"
    house = House()
    house.door.open()
    assert house.door.OPEN and house.log == ["log"]
