"""Declaring managers: states, groups, conditional states, transitions, the
enum form, ``column()``, and the errors a bad declaration raises when the
class is created."""

from __future__ import annotations

import enum
import typing as t

import pytest
import sqlalchemy as sa
from core_models import (
    Base,
    ChapterState,
    Colour,
    ColourState,
    Memo,
    Project,
    ProjectState,
    PublishForm,
    ReviewState,
    add_project,
)
from sqlalchemy import orm

from flask_statemgr import State, StateManager, Transition


def test_plain_state_introspection() -> None:
    deleted = ProjectState.DELETED
    assert isinstance(deleted, State)
    assert deleted.name == "DELETED"
    assert deleted.value == 4
    assert deleted.title == "Deleted"
    assert deleted.description == "Returns 410"
    assert deleted.metadata == {"icon": "trash"}
    assert deleted.manager is ProjectState
    assert not deleted.is_group and not deleted.is_conditional
    assert deleted.kind == "state"
    assert ProjectState.DRAFT.description == ""


def test_groups_from_a_set_and_from_or() -> None:
    gone = ProjectState.GONE
    assert gone.is_group and not gone.is_conditional and gone.kind == "group"
    assert gone.name == "GONE" and gone.title == "Gone"
    assert gone.members == frozenset({ProjectState.WITHDRAWN, ProjectState.DELETED})
    assert gone.values == frozenset({3, 4})
    unpublished = ProjectState.UNPUBLISHED
    assert unpublished.is_group and unpublished.title == ""
    assert unpublished.members == frozenset({ProjectState.DRAFT, ProjectState.WITHDRAWN})


def test_or_outside_a_manager_makes_an_anonymous_group() -> None:
    a, b = State(1), State(2)
    group = a | b
    assert group.is_group and group.members == frozenset({a, b})
    assert (a | b | State(3)).is_group
    with pytest.raises(TypeError):
        a | 1  # type: ignore[operator]


def test_conditional_states() -> None:
    live = ProjectState.LIVE
    assert live.is_conditional and not live.is_group and live.kind == "conditional"
    assert live.base is ProjectState.PUBLISHED
    assert live.values == frozenset({2})
    assert live.default_validator is None and live.default_expression is None
    pinned = ProjectState.PINNED
    assert pinned.base is ProjectState.PUBLISHED
    assert pinned.default_validator is not None and pinned.default_expression is not None
    redraftable = ProjectState.REDRAFTABLE
    assert redraftable.leaves() == frozenset({ProjectState.WITHDRAWN, live})


def test_states_and_transitions_in_declaration_order() -> None:
    assert list(ProjectState.states()) == [
        "DRAFT",
        "PUBLISHED",
        "WITHDRAWN",
        "DELETED",
        "GONE",
        "UNPUBLISHED",
        "LIVE",
        "PINNED",
        "REDRAFTABLE",
    ]
    assert list(ProjectState.transitions()) == [
        "publish",
        "withdraw",
        "unpin",
        "redraft",
        "archive",
        "delete",
        "submit",
    ]
    assert ProjectState.states()["GONE"] is ProjectState.GONE
    assert ProjectState.transitions()["publish"] is ProjectState.publish
    # each call returns a copy the caller may change
    ProjectState.states().clear()
    ProjectState.transitions().clear()
    assert "DRAFT" in ProjectState.states() and "publish" in ProjectState.transitions()


def test_transition_introspection() -> None:
    publish = ProjectState.publish
    assert isinstance(publish, Transition)
    assert publish.name == "publish"
    assert publish.manager is ProjectState
    assert publish.sources == frozenset({ProjectState.DRAFT})
    assert publish.target is ProjectState.PUBLISHED
    assert publish.title == "Publish" and publish.description == ""
    assert publish.roles == frozenset({"editor"})
    assert publish.form is None
    assert publish.requires == {} and publish.cascade == {}
    withdraw = ProjectState.withdraw
    assert withdraw.description == "Take it offline"
    submit = ProjectState.submit
    assert submit.form is PublishForm
    assert submit.requires == {"review": ReviewState.APPROVED}
    assert submit.cascade == {"review": "lock"}
    assert submit.metadata == {"inline_fields": ("note",)}
    assert ProjectState.unpin.roles is None


def test_transition_sources() -> None:
    delete = ProjectState.delete
    assert delete.sources == frozenset({ProjectState.DRAFT, ProjectState.PUBLISHED, ProjectState.WITHDRAWN})
    # a group as the source covers its members; a conditional member stays
    # conditional
    assert ProjectState.redraft.sources == frozenset({ProjectState.WITHDRAWN, ProjectState.LIVE})
    assert ProjectState.redraft.conditional_sources == (ProjectState.LIVE,)
    assert ProjectState.unpin.sources == frozenset({ProjectState.PINNED})
    assert ReviewState.lock.sources == frozenset({ReviewState.PENDING, ReviewState.APPROVED})


def test_subclass_inherits_and_extends() -> None:
    class More(ReviewState):
        REJECTED = State("rejected", "Rejected")
        reject = Transition(ReviewState.PENDING, REJECTED, "Reject")

    assert list(More.states()) == ["PENDING", "APPROVED", "LOCKED", "UNLOCKED", "REJECTED"]
    assert list(More.transitions()) == ["approve", "lock", "reject"]
    assert More.reject.manager is More
    # the base is unchanged
    assert "REJECTED" not in ReviewState.states()
    assert ReviewState.approve.manager is ReviewState


# -- definition-time errors ----------------------------------------------------


def _duplicate_value() -> None:
    class Bad(StateManager):
        ONE = State(1)
        UNO = State(1)


def _group_member_of_another_manager() -> None:
    class Bad(StateManager):
        ONE = State(1)
        MIXED = State({ONE, ReviewState.PENDING})


def _conditional_of_another_manager() -> None:
    class Bad(StateManager):
        ONE = State(1)
        ODD = ReviewState.PENDING.conditional("Odd", validator=bool)


def _target_is_a_group() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        BOTH = ONE | TWO
        move = Transition(ONE, BOTH)


def _target_is_conditional() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        SPECIAL = TWO.conditional("Special", validator=bool)
        move = Transition(ONE, SPECIAL)


def _target_of_another_manager() -> None:
    class Bad(StateManager):
        ONE = State(1)
        move = Transition(ONE, ReviewState.PENDING)


def _source_of_another_manager() -> None:
    class Bad(StateManager):
        ONE = State(1)
        move = Transition(ChapterState.DRAFT, ONE)


def _source_not_a_state() -> None:
    class Bad(StateManager):
        ONE = State(1)
        move = Transition("ONE", ONE)  # type: ignore[arg-type]


def _reserved_state_name() -> None:
    class Bad(StateManager):
        ONE = State(1)
        current = State(2)


def _reserved_transition_name() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        history = Transition(ONE, TWO)


def _inherited_state_aliased() -> None:
    class Bad(ReviewState):
        WAITING = ReviewState.PENDING


def _mixed_value_types() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State("two")


def _bool_value() -> None:
    class Bad(StateManager):
        YES = State(True)


def _no_value() -> None:
    class Bad(StateManager):
        SOMETHING = State(title="Something")


def _requires_value_not_a_state() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        move = Transition(ONE, TWO, requires={"review": "APPROVED"})  # type: ignore[dict-item]


def _requires_empty_path() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        move = Transition(ONE, TWO, requires={"": ReviewState.APPROVED})


def _cascade_key_is_a_path() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        move = Transition(ONE, TWO, cascade={"project.chapters": "delete"})


def _cascade_value_not_a_name() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        move = Transition(ONE, TWO, cascade={"chapters": ChapterState.delete})  # type: ignore[dict-item]


def _form_not_a_form_class() -> None:
    class Bad(StateManager):
        ONE = State(1)
        TWO = State(2)
        move = Transition(ONE, TWO, form=dict)


def _enum_missing_member() -> None:
    class Bad(StateManager, enum=Colour):
        RED = State()
        GREEN = State()


def _enum_value_not_a_member() -> None:
    class Bad(StateManager, enum=Colour):
        RED = State()
        GREEN = State()
        BLUE = State()
        PURPLE = State("p")


def _enum_bare_state_without_member() -> None:
    class Bad(StateManager, enum=Colour):
        RED = State()
        GREEN = State()
        BLUE = State()
        PURPLE = State()


def _enum_member_twice() -> None:
    class Bad(StateManager, enum=Colour):
        RED = State()
        GREEN = State()
        BLUE = State()
        CRIMSON = State(Colour.RED)


def _enum_of_another_enum() -> None:
    class Other(enum.Enum):
        RED = "r"

    class Bad(StateManager, enum=Colour):
        RED = State(Other.RED)
        GREEN = State()
        BLUE = State()


@pytest.mark.parametrize(
    ("declare", "error", "message"),
    [
        (_duplicate_value, ValueError, r"Bad\.UNO: duplicate value 1, already used by ONE"),
        (_group_member_of_another_manager, ValueError, r"Bad\.MIXED: group member .*ReviewState\.PENDING"),
        (_conditional_of_another_manager, ValueError, r"Bad\.ODD: the base"),
        (_target_is_a_group, TypeError, r"Bad\.move: target must be a plain state, not a group"),
        (_target_is_conditional, TypeError, r"Bad\.move: target must be a plain state, not a conditional"),
        (_target_of_another_manager, ValueError, r"Bad\.move: target .*ReviewState\.PENDING"),
        (_source_of_another_manager, ValueError, r"Bad\.move: source .*ChapterState\.DRAFT"),
        (_source_not_a_state, (TypeError, ValueError), r"Bad\.move: source"),
        (_reserved_state_name, ValueError, r"Bad\.current: the name 'current' is reserved"),
        (_reserved_transition_name, ValueError, r"Bad\.history: the name 'history' is reserved"),
        (_inherited_state_aliased, ValueError, r"Bad\.WAITING: .*already belongs to ReviewState"),
        (_mixed_value_types, TypeError, r"Bad: state values must be all int or all str"),
        (_bool_value, TypeError, r"Bad\.YES: a state's value must be an int or a str"),
        (_no_value, ValueError, r"Bad\.SOMETHING: a plain state needs a value"),
        (_requires_value_not_a_state, TypeError, r"Bad\.move: requires\['review'\] must be a State"),
        (_requires_empty_path, TypeError, r"Bad\.move: requires keys are attribute paths"),
        (_cascade_key_is_a_path, TypeError, r"Bad\.move: cascade keys are attribute names"),
        (_cascade_value_not_a_name, TypeError, r"Bad\.move: cascade\['chapters'\] must name a transition"),
        (_form_not_a_form_class, TypeError, r"Bad\.move: form must be a WTForms form class"),
        (_enum_missing_member, ValueError, r"Bad: no state for Colour\.BLUE;"),
        (_enum_value_not_a_member, ValueError, r"Bad\.PURPLE: 'p' is not a value of Colour"),
        (_enum_bare_state_without_member, ValueError, r"Bad\.PURPLE: Colour has no member 'PURPLE'"),
        (_enum_member_twice, ValueError, r"Bad\.CRIMSON: duplicate value 'r', already used by RED"),
        (_enum_of_another_enum, TypeError, r"Bad\.RED: a state's value must be an int or a str"),
    ],
)
def test_bad_declarations_name_the_attribute(
    declare: t.Callable[[], None], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        declare()


def test_bad_state_arguments() -> None:
    with pytest.raises(TypeError, match="members must be states"):
        State({1, 2})
    with pytest.raises(TypeError, match="Only a plain state"):
        ProjectState.GONE.conditional("Gone for good")
    with pytest.raises(TypeError, match="Only a plain state"):
        ProjectState.LIVE.conditional("Very live")
    with pytest.raises(TypeError, match="is not a conditional state"):
        ProjectState.DRAFT.validator(lambda self: True)
    with pytest.raises(TypeError, match="is not a conditional state"):
        ProjectState.GONE.expression(lambda cls: sa.true())


# -- the enum form -----------------------------------------------------------------


def test_enum_form() -> None:
    assert ColourState.enum is Colour
    assert ColourState.RED.value == "r" and ColourState.RED.title == "Red"
    # bare State() takes the member of the same name
    assert ColourState.GREEN.value == "g" and ColourState.GREEN.title == ""
    assert ColourState.BLUE.value == "b" and ColourState.BLUE.title == "Blue"
    assert ColourState.WARM.values == frozenset({"r"})
    assert ColourState.paint.target is ColourState.GREEN
    assert isinstance(ColourState.column().column.type, sa.String)


def test_enum_int_values() -> None:
    class Level(enum.IntEnum):
        LOW = 1
        HIGH = 2

    class LevelState(StateManager, enum=Level):
        LOW = State()
        HIGH = State(Level.HIGH, "High")

    assert LevelState.LOW.value == 1 and type(LevelState.LOW.value) is int
    assert LevelState.HIGH.value == 2 and type(LevelState.HIGH.value) is int
    assert isinstance(LevelState.column().column.type, sa.Integer)


# -- column() ----------------------------------------------------------------------


def _check_sql(table: sa.Table, column: str) -> str:
    (check,) = [
        c for c in table.constraints if isinstance(c, sa.CheckConstraint) and c.name == f"ck_{table.name}_{column}"
    ]
    return str(check.sqltext.compile(compile_kwargs={"literal_binds": True}))


def test_column_shape() -> None:
    column = Project.__table__.c._state
    assert isinstance(column.type, sa.Integer)
    assert column.nullable is False
    assert column.index is True
    assert column.default is not None and column.default.arg == 1
    assert _check_sql(Project.__table__, "_state") == "core_project._state IN (1, 2, 3, 4)"
    review = Project.__table__.c._review
    assert isinstance(review.type, sa.String) and review.type.length == len("approved")
    assert review.default is not None and review.default.arg == "pending"
    assert _check_sql(Project.__table__, "_review") == "core_project._review IN ('pending', 'approved', 'locked')"


def test_column_on_an_abstract_base_keeps_its_check() -> None:
    assert _check_sql(Memo.__table__, "_state") == "core_memo._state IN ('new', 'done')"


def test_column_check_survives_copying_the_table_once() -> None:
    copy = Project.__table__.to_metadata(sa.MetaData())
    names = [c.name for c in copy.constraints if isinstance(c, sa.CheckConstraint)]
    assert sorted(names) == ["ck_core_project__review", "ck_core_project__state"]


def test_column_options() -> None:
    assert ProjectState.column(default=3).column.default.arg == 3  # type: ignore[union-attr]
    assert ProjectState.column().column.default is None
    assert ProjectState.column(nullable=True, index=False).column.nullable is True
    with pytest.raises(ValueError, match="ProjectState.column: default must be a plain state"):
        ProjectState.column(default=ProjectState.LIVE)
    with pytest.raises(ValueError, match="ProjectState.column: default must be a plain state"):
        ProjectState.column(default=ReviewState.PENDING)


@pytest.mark.parametrize("model", [Project, Memo])
def test_database_rejects_an_illegal_value(core_engine: sa.Engine, model: type[t.Any]) -> None:
    with orm.Session(core_engine) as session:
        obj = model(title="x") if model is Project else model()
        session.add(obj)
        session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            session.execute(sa.update(model).values(_state=99 if model is Project else "lost"))
        session.rollback()
        with pytest.raises(sa.exc.IntegrityError):
            session.execute(sa.update(model).values(_state=None))
        session.rollback()
    indexes = sa.inspect(core_engine).get_indexes(model.__tablename__)
    assert [i["column_names"] for i in indexes if i["column_names"] == ["_state"]]


def test_database_default(core_db: orm.Session) -> None:
    project = add_project(core_db)
    assert project._state == 1
    assert project._review == "pending"
    assert core_db.scalar(sa.select(Project._state)) == 1


def test_models_share_the_declarative_metadata() -> None:
    # binding a manager adds the extension's tables for create_all()
    assert {"statemgr_history", "statemgr_blob"} <= set(Base.metadata.tables)
