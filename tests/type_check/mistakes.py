"""Deliberate mistakes: every line marked ``# error: <mypy code> <pyright rule>``
must be reported by both checkers with that code, and nothing else may be
(``tests/system/test_typing.py``). Not part of the typed-usage check."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy import orm
from typing_core import Project, ProjectState, PublishForm, statemgr

from flask_statemgr import State, StateManager, Transition


class Typos(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")

    publish = Transition(DRAFT, PUBLISHED, roles="editor")  # error: arg-type reportArgumentType
    retract = Transition(PUBLISHED, DRAFT, roles=["editor"])  # error: arg-type reportArgumentType


class Hooks(Project):
    @ProjectState.publish.precondition  # error: type-var reportArgumentType
    def _takes_an_argument(self, other: int) -> bool:
        return True

    @ProjectState.publish.precondition  # error: type-var reportArgumentType
    def _returns_nothing(self) -> None:
        pass

    @ProjectState.publish.execute  # error: type-var reportArgumentType
    def _forgets_the_data(self) -> None:
        pass

    @ProjectState.LIVE.validator  # error: type-var reportArgumentType
    def _returns_a_reason(self) -> str:
        return "no"


@ProjectState.publish.permission  # error: type-var reportArgumentType
def forgets_the_user(obj: Project) -> bool:
    return True


@statemgr.guard(Project.state.publish)  # error: arg-type reportArgumentType
def takes_the_wrong_form(obj: Project, form: int) -> str:
    return ""


@statemgr.guard(Project.state.publish)  # error: arg-type reportArgumentType
def takes_no_form(obj: Project) -> str:
    return ""


def class_test_is_not_a_bool() -> bool:
    return Project.state.DRAFT  # error: return-value reportReturnType


def mistakes(project: Project, user: object, session: orm.Session) -> None:
    ProjectState.DRAFTT  # error: attr-defined reportAttributeAccessIssue
    Project.state.DRAFTT  # error: attr-defined reportAttributeAccessIssue
    project.state.DRAFTT  # error: attr-defined reportAttributeAccessIssue
    project.state.publsh  # error: attr-defined reportAttributeAccessIssue
    project.state.publish.chek()  # error: attr-defined reportAttributeAccessIssue
    project.state.DRAFT.value  # error: attr-defined reportAttributeAccessIssue
    project.state.transitions(user)["publish"].sources  # error: attr-defined reportAttributeAccessIssue
    sa.select(Project).where(project.state.DRAFT)  # error: arg-type reportArgumentType
    sa.select(Project).where(sa.and_(project.state.GONE, Project.state.LIVE))  # error: arg-type reportArgumentType
    session.execute(sa.update(Project).where(project.state.DRAFT))  # error: arg-type reportArgumentType
    inverted = ~project.state.GONE  # error: deprecated reportDeprecated
    project.state.transitions(bogus=1)  # error: call-arg reportCallIssue
    project.state.publish.check(usr=user)  # error: call-arg reportCallIssue
    project.state.publish(user, {"note": "x"}, True)  # error: call-arg reportCallIssue
    ProjectState.publish(user)  # error: operator reportCallIssue
    project.state = ProjectState.DRAFT  # error: assignment reportAttributeAccessIssue
    live: bool = Project.state.LIVE  # error: assignment reportAssignmentType
    form: PublishForm = project.state.publish  # error: assignment reportAssignmentType
    t.cast(None, (inverted, live, form))
