"""A stored value that no state declares (a row written around the
manager, or left behind when a state was dropped) is a clear error naming
the manager, the model, the column and the value, never a bare
``KeyError``."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from coaster_app import EDNA, Post, db

from flask_statemgr import StateConflict, StateMgrError, UnknownStateValue


def _store_undeclared(post_id: int, value: int) -> None:
    """Write ``value`` into the post's state column past its CHECK
    constraint, as a database migrated from older declarations holds it."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA ignore_check_constraints = 1")
    else:
        for check in sa.inspect(connection).get_check_constraints(Post.__tablename__):
            connection.exec_driver_sql(f'ALTER TABLE {Post.__tablename__} DROP CONSTRAINT "{check["name"]}"')
    db.session.execute(sa.update(Post).where(Post.id == post_id).values(_state=value))
    db.session.commit()


def test_current_and_title_name_what_is_wrong(coaster_api: t.Any) -> None:
    with coaster_api.app_context():
        _store_undeclared(1, 100)
        post = db.session.get(Post, 1)
        for read in (lambda: post.state.current, lambda: post.state.title):
            with pytest.raises(UnknownStateValue) as info:
                read()
            error = info.value
            assert str(error) == (
                "Post 1: Post._state (column coaster_post._state) holds 100, which no state of PostState declares"
            )
            assert (error.manager, error.model, error.attribute, error.column, error.value) == (
                "PostState",
                "Post",
                "_state",
                "coaster_post._state",
                100,
            )
            # what an app catches: this package's errors, or a failed lookup
            assert isinstance(error, StateMgrError) and isinstance(error, LookupError)
            assert not isinstance(error, KeyError)
        # the raw value and the state tests still answer
        assert post.state.value == 100
        assert not post.state.DRAFT and not post.state.UNPUBLISHED


def test_a_transition_from_an_undeclared_value_is_a_state_conflict(coaster_api: t.Any) -> None:
    with coaster_api.app_context():
        _store_undeclared(1, 100)
        post = db.session.get(Post, 1)
        assert post.state.transitions(EDNA) == {}
        with pytest.raises(StateConflict) as info:
            post.state.publish(EDNA)
        assert (
            info.value.reasons[0].message == "Publish is not possible: state holds 100, which is not a declared state"
        )


def test_the_api_answers_a_problem(coaster_api: t.Any) -> None:
    with coaster_api.app_context():
        _store_undeclared(1, 100)
    response = coaster_api.test_client().get("/_statemgr/objects/post/1")
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == response.status_code == 500
    assert problem["title"] == "Unknown state value"
    assert "holds 100, which no state of PostState declares" in problem["detail"]
