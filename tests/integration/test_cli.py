"""``flask statemgr``: what each command tells the person running it."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask

from flask_statemgr.tables import history_table


def run(app: Flask, *args: str) -> t.Any:
    return app.test_cli_runner().invoke(args=["statemgr", *args])


def test_mermaid_draws_the_initial_state_groups_and_conditional_states(api: Flask) -> None:
    graph = run(api, "graph").output
    assert "    [*] --> ProjectState_DRAFT" in graph
    assert "    [*] --> SessionState_DRAFT" in graph
    assert "    note left of ProjectState_DELETED : group Gone = Deleted, Withdrawn" in graph
    assert "    note right of ProjectState_PUBLISHED : conditional Live" in graph
    # requires and cascade are notes in Mermaid, as the README says
    assert "  note right of ProjectState : publish requires review ReviewState.APPROVED" in graph
    assert "  note right of ProjectState : delete cascades sessions SessionState.DELETED" in graph


def test_dot_draws_the_initial_state_groups_and_conditional_states(api: Flask) -> None:
    graph = run(api, "graph", "--format", "dot").output
    assert '    "ProjectState.[*]" -> "ProjectState.DRAFT";' in graph
    assert '    "ProjectState.GONE" [label="Gone", shape=folder];' in graph
    assert '    "ProjectState.WITHDRAWN" -> "ProjectState.GONE" [style=dotted, arrowhead=none];' in graph
    assert '    "ProjectState.LIVE" [label="Live", style="rounded,dashed"];' in graph
    assert '    "ProjectState.PUBLISHED" -> "ProjectState.LIVE" [label="when", style=dotted];' in graph
    # requires and cascade are dashed edges in dot, as the README says
    assert (
        '"ProjectState.PUBLISHED" -> "ReviewState.APPROVED" [label="publish requires review", style=dashed];' in graph
    )


def test_check_says_what_it_checked(api: Flask) -> None:
    result = run(api, "check")
    assert result.exit_code == 0, result.output
    assert result.output == "Checked 3 state managers of 2 exposed models and 1 database: no problems.\n"


def test_check_lists_only_the_problems(api: Flask) -> None:
    with api.app_context():
        session = api.extensions["sqlalchemy"].session
        session.execute(sa.text("DROP TABLE session"))
        session.commit()
    result = run(api, "check")
    assert result.exit_code == 1
    # each problem on its own line, nothing else to read past
    assert result.output == "error: session._state (SessionState): the table session does not exist\n"


def test_history_of_an_unknown_object_is_not_found(api: Flask) -> None:
    result = run(api, "history", "project", "999")
    assert result.exit_code == 1
    assert result.output == "project 999 not found\n"


def test_history_of_an_object_without_records_says_so(api: Flask) -> None:
    result = run(api, "history", "project", "2")
    assert result.exit_code == 0
    assert result.output == "project 2 has no history yet\n"


def test_history_of_a_deleted_row_is_still_shown(api: Flask) -> None:
    api.test_client().post(
        "/_statemgr/objects/project/1/state/publish", headers={"X-User": "alice"}, json={"note": "x"}
    )
    with api.app_context():
        session = api.extensions["sqlalchemy"].session
        session.execute(sa.text("DELETE FROM session"))
        session.execute(sa.text("DELETE FROM project WHERE id = 1"))
        session.commit()
    result = run(api, "history", "project", "1")
    assert result.exit_code == 0
    assert "state.publish\tDRAFT -> PUBLISHED" in result.output


def test_gc_prints_a_sentence(api: Flask) -> None:
    dry = run(api, "gc", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith("Would remove 0 of "), dry.output
    assert "younger than 3600 seconds." in dry.output
    done = run(api, "gc", "--grace", "0")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Removed 0 of "), done.output
    assert "Result(" not in dry.output + done.output


def test_gc_removes_nothing_when_a_payload_cannot_be_read(api: Flask) -> None:
    api.test_client().post(
        "/_statemgr/objects/project/1/state/publish", headers={"X-User": "alice"}, json={"note": "x"}
    )
    with api.app_context():
        session = api.extensions["sqlalchemy"].session
        session.execute(sa.update(history_table).values(payload=b"\xc1\x02\xff"))
        session.commit()
    result = run(api, "gc")
    assert result.exit_code == 1
    assert result.output.startswith("Removed nothing: the payload of records "), result.output


def test_check_finds_paths_a_model_lacks() -> None:
    # Article reuses ProjectState, whose cascades and requires name
    # attributes Article does not have: allowed, but performing them fails
    from core_models import Article

    from flask_statemgr import StateMgr

    app = Flask(__name__)
    StateMgr(app).expose(Article)
    result = app.test_cli_runner().invoke(args=["statemgr", "check"])
    assert result.exit_code == 1
    assert "warning: Article.state.delete: cascade 'chapters': Article has no such attribute\n" in result.output
