"""Alembic autogenerate support for state columns' CHECK constraints.

Import it in the migration environment (Flask-Migrate's
``migrations/env.py``)::

    import flask_statemgr.alembic  # noqa: F401

A new table's constraint is rendered with its ``create_table`` as any table
constraint is. Alembic does not compare CHECK constraints of existing tables
by itself; the comparator registered here does for the state columns: a
missing constraint is created, and one whose legal values differ from the
manager's states, or that still has the name flask_statemgr 0.1 gave it
(``ck_<table>_<column>_state``), is dropped and created again (in a batch
operation when the environment uses ``render_as_batch``, as SQLite needs).
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from alembic.autogenerate import comparators
from alembic.operations import ops
from alembic.util import PriorityDispatchResult
from sqlalchemy.sql.elements import conv

from .constraints import drift, live_checks, table_checks

if t.TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

__all__: list[str] = []


@comparators.dispatch_for("table")
def _compare_state_checks(
    autogen_context: AutogenContext,
    modify_table_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: sa.Table | None,
    metadata_table: sa.Table | None,
) -> PriorityDispatchResult:
    # a new table gets its constraints with create_table; a dropped one
    # takes them along
    if conn_table is None or metadata_table is None:
        return PriorityDispatchResult.CONTINUE
    checks = table_checks(metadata_table)
    if not checks:
        return PriorityDispatchResult.CONTINUE
    assert autogen_context.inspector is not None
    live = live_checks(autogen_context.inspector, tname, schema)
    if live is None:
        # a dialect that cannot reflect CHECK constraints: nothing to compare
        return PriorityDispatchResult.CONTINUE
    for check in checks:
        if not autogen_context.run_object_filters(check.constraint, check.name, "check_constraint", False, None):
            continue
        found = drift(check, live)
        if found is None:
            continue
        if found.sqltext is not None and found.live_name is not None:
            # from the live constraint, so the downgrade restores it as it was
            old = sa.CheckConstraint(sa.text(found.sqltext), name=conv(found.live_name), table=conn_table)
            modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(old))
        modify_table_ops.ops.append(ops.CreateCheckConstraintOp.from_constraint(check.constraint))
    return PriorityDispatchResult.CONTINUE
