"""Declarations refused when the manager class is created, each naming the
attribute: what coaster's users bring along and our classes used to accept
silently."""

from __future__ import annotations

import functools
import re
import typing as t

import pytest

from flask_statemgr import State, StateManager, Transition


def _group_with_a_conditional_and_its_base() -> None:
    class Post(StateManager):
        DRAFT = State(0, "Draft")
        PUBLISHED = State(1, "Published")
        RECENT = PUBLISHED.conditional("Recent", lambda post: True)
        VISIBLE = State({PUBLISHED, RECENT}, "Visible")


def _nested_group_with_a_conditional_and_its_base() -> None:
    class Post(StateManager):
        DRAFT = State(0, "Draft")
        PUBLISHED = State(1, "Published")
        RECENT = PUBLISHED.conditional("Recent", lambda post: True)
        FRESH = State({DRAFT, RECENT}, "Fresh")
        SHOWN = State({FRESH, PUBLISHED}, "Shown")


def _one_transition_bound_to_two_names() -> None:
    class Post(StateManager):
        DRAFT = State(0, "Draft")
        PUBLISHED = State(1, "Published")
        withdraw = Transition(PUBLISHED, DRAFT, "Withdraw")
        unpublish = withdraw


def _roles(roles: t.Any) -> None:
    class Post(StateManager):
        DRAFT = State(0, "Draft")
        PUBLISHED = State(1, "Published")
        publish = Transition(DRAFT, PUBLISHED, "Publish", roles=roles)


@pytest.mark.parametrize(
    ("declare", "error", "message"),
    [
        pytest.param(
            _group_with_a_conditional_and_its_base,
            ValueError,
            r"^Post\.VISIBLE: the group holds RECENT and its base PUBLISHED",
            id="group-with-a-conditional-and-its-base",
        ),
        pytest.param(
            _nested_group_with_a_conditional_and_its_base,
            ValueError,
            r"^Post\.SHOWN: the group holds RECENT and its base PUBLISHED",
            id="nested-group",
        ),
        pytest.param(
            _one_transition_bound_to_two_names,
            ValueError,
            r"^Post\.unpublish: the same Transition is already bound to Post\.withdraw",
            id="one-transition-two-names",
        ),
        pytest.param(
            functools.partial(_roles, "editor"),
            TypeError,
            r"^Post\.publish: roles must be a set of role names, not the string",
            id="roles-as-a-string",
        ),
        pytest.param(
            functools.partial(_roles, b"editor"),
            TypeError,
            r"^Post\.publish: roles must be a set of role names, not the string",
            id="roles-as-bytes",
        ),
        pytest.param(
            functools.partial(_roles, {1}),
            TypeError,
            r"^Post\.publish: roles must be role names \(str\)",
            id="roles-that-are-not-names",
        ),
    ],
)
def test_refused_declarations_name_the_attribute(
    declare: t.Callable[[], None], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        declare()


def test_group_with_a_conditional_without_its_base_is_fine() -> None:
    class Post(StateManager):
        DRAFT = State(0, "Draft")
        PUBLISHED = State(1, "Published")
        RECENT = PUBLISHED.conditional("Recent", lambda post: True)
        REDRAFTABLE = State({DRAFT, RECENT}, "Redraftable")

    assert Post.REDRAFTABLE.is_group


def test_a_transition_of_another_manager() -> None:
    class Post(StateManager):
        DRAFT = State(0, "Draft")
        PUBLISHED = State(1, "Published")
        publish = Transition(DRAFT, PUBLISHED, "Publish")

    with pytest.raises(ValueError, match=r"^Page\.publish: <Transition Post\.publish> already belongs to Post"):

        class Page(Post):
            publish = Post.publish

    # and the first manager keeps it
    assert Post.publish.manager is Post and Post.publish.name == "publish"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("DRAFT = State(0, 'Draft')\n    DRAFT = State(2, 'Draft again')", "state"),
        ("go = Transition(DRAFT, PUBLISHED)\n    go = Transition(PUBLISHED, DRAFT)", "transition"),
        ("go = Transition(DRAFT, PUBLISHED)\n    def go(self): ...", "transition"),
    ],
)
def test_a_name_declared_twice(body: str, kind: str) -> None:
    source = (
        f"class Post(StateManager):\n    PUBLISHED = State(1, 'Published')\n    DRAFT = State(0, 'Draft')\n    {body}\n"
    )
    message = f"Post.{body.split()[0]}: declared twice in the class body; the first {kind} would be lost"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        exec(source, {"StateManager": StateManager, "State": State, "Transition": Transition})
