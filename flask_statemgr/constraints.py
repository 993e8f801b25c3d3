"""What ``flask statemgr check`` checks: the definitions of the state
managers, and the CHECK constraints of state columns as declared and as a
live database has them (which :mod:`flask_statemgr.alembic` renders)."""

from __future__ import annotations

import dataclasses
import re
import typing as t

import sqlalchemy as sa

from .graph import initial_state

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .manager import StateManager

#: a quoted string literal, or an integer standing alone (not a digit of a
#: name such as ``state2``)
_LITERAL = re.compile(r"'((?:[^']|'')*)'|(?<![\w.'])(-?\d+)(?![\w.])")

#: how many keys of the rows holding an undeclared value a report lists
ROWS_LISTED = 10


@dataclasses.dataclass(frozen=True)
class StateCheck:
    """The CHECK constraint that :meth:`StateManager.column` declares on one
    state column."""

    constraint: sa.CheckConstraint
    column: sa.Column[t.Any]
    manager: str
    values: tuple[t.Any, ...]

    @property
    def name(self) -> str:
        return str(self.constraint.name)

    @property
    def legacy_name(self) -> str:
        """The name flask_statemgr 0.1 gave this constraint (bound to the
        column's type, which migrations never saw), which a database built
        with ``create_all`` then still has."""
        return f"{self.name}_state"

    @property
    def table(self) -> sa.Table:
        return self.column.table


def table_checks(table: sa.Table) -> list[StateCheck]:
    """The state columns' CHECK constraints declared on ``table``."""
    found = []
    for constraint in table.constraints:
        info = constraint.info if isinstance(constraint, sa.CheckConstraint) else {}
        if "statemgr_values" in info:
            (column,) = t.cast(sa.CheckConstraint, constraint).columns
            found.append(
                StateCheck(t.cast(sa.CheckConstraint, constraint), column, info["statemgr"], info["statemgr_values"])
            )
    return sorted(found, key=lambda c: c.name)


def metadata_checks(metadata: sa.MetaData) -> list[StateCheck]:
    """Every state column's CHECK constraint in ``metadata``."""
    return [check for table in metadata.sorted_tables for check in table_checks(table)]


def reflected_values(sqltext: str, check: StateCheck) -> frozenset[t.Any]:
    """The legal values a reflected CHECK's SQL names.

    Databases give the text back rewritten (PostgreSQL turns ``IN (1, 2)``
    into ``= ANY (ARRAY[1, 2])`` and adds casts), so the literals are read
    rather than the text compared; they are taken as the manager's kind of
    value, ints or strings.
    """
    as_int = bool(check.values) and isinstance(check.values[0], int)
    values: set[t.Any] = set()
    for quoted, number in _LITERAL.findall(sqltext):
        if number:
            values.add(int(number) if as_int else number)
        elif as_int:
            # PostgreSQL quotes a negative integer: '-1'::integer
            try:
                values.add(int(quoted))
            except ValueError:
                values.add(quoted.replace("''", "'"))
        else:
            values.add(quoted.replace("''", "'"))
    return frozenset(values)


@dataclasses.dataclass(frozen=True)
class Drift:
    """How a live state column's CHECK constraint differs from its
    declaration: ``live`` is ``None`` when the constraint is missing;
    ``live_name`` is the live constraint's name (its legacy name, or the
    declared one)."""

    check: StateCheck
    live: frozenset[t.Any] | None
    sqltext: str | None
    live_name: str | None = None

    def describe(self) -> str:
        where = f"{self.check.table.name}.{self.check.column.name} ({self.check.manager})"
        if self.live is None:
            return f"{where}: the CHECK constraint {self.check.name} is missing"
        if self.live_name != self.check.name:
            return f"{where}: the CHECK constraint is named {self.live_name} instead of {self.check.name}"
        declared = set(self.check.values)
        parts = []
        if declared - self.live:
            parts.append(f"does not allow {_values(declared - self.live)}")
        if self.live - declared:
            parts.append(f"still allows {_values(self.live - declared)}")
        return f"{where}: the CHECK constraint {self.check.name} {' and '.join(parts)}"


def _values(values: t.Iterable[t.Any]) -> str:
    return ", ".join(repr(v) for v in sorted(values, key=repr))


def live_checks(inspector: sa.Inspector, table: str, schema: str | None = None) -> dict[str, str] | None:
    """The named CHECK constraints of a live ``table``: name to SQL;
    ``None`` when the dialect cannot reflect them."""
    found = {}
    try:
        reflected = inspector.get_check_constraints(table, schema=schema)
    except NotImplementedError:
        return None
    for ck in reflected:
        if ck["name"]:
            found[ck["name"]] = ck["sqltext"]
    return found


def drift(check: StateCheck, live: t.Mapping[str, str]) -> Drift | None:
    """How ``check`` differs from the ``live`` constraints of its table
    (:func:`live_checks`), or ``None`` when it matches."""
    for name in (check.name, check.legacy_name):
        sqltext = live.get(name)
        if sqltext is not None:
            values = reflected_values(sqltext, check)
            if name == check.name and values == frozenset(check.values):
                return None
            return Drift(check, values, sqltext, name)
    return Drift(check, None, None)


@dataclasses.dataclass(frozen=True)
class Undeclared:
    """Rows whose state column holds a value that no state declares."""

    check: StateCheck
    value: t.Any
    count: int
    keys: list[t.Any]

    def describe(self) -> str:
        rows = "1 row holds" if self.count == 1 else f"{self.count} rows hold"
        listed = ", ".join(str(k) for k in self.keys)
        more = ", …" if self.count > len(self.keys) else ""
        return (
            f"{self.check.table.name}.{self.check.column.name} ({self.check.manager}): "
            f"{rows} {self.value!r}, which no state declares (keys {listed}{more})"
        )


def undeclared_values(connection: sa.Connection, check: StateCheck) -> list[Undeclared]:
    """The values no state declares that rows of the live table hold, with
    how many rows hold each and the first keys among them."""
    table, column = check.table, check.column
    pk = list(table.primary_key.columns)
    outside = column.not_in(check.values) if check.values else sa.true()
    counts = connection.execute(
        sa.select(column, sa.func.count()).where(outside).group_by(column).order_by(column)
    ).all()
    found = []
    for value, count in counts:
        keys = connection.execute(sa.select(*pk).where(column == value).order_by(*pk).limit(ROWS_LISTED)).all()
        found.append(Undeclared(check, value, count, [k[0] if len(k) == 1 else tuple(k) for k in keys]))
    return found


def database_problems(connection: sa.Connection, metadata: sa.MetaData) -> list[str]:
    """What ``flask statemgr check`` reports of one live database: each state
    column whose table is missing, whose CHECK constraint is missing or
    differs from the declared states, and the rows holding a value that no
    state declares."""
    inspector = sa.inspect(connection)
    problems: list[str] = []
    live: dict[str, dict[str, str] | None] = {}
    for check in metadata_checks(metadata):
        table = check.table
        where = f"{table.name}.{check.column.name} ({check.manager})"
        if not inspector.has_table(table.name, schema=table.schema):
            problems.append(f"{where}: the table {table.name} does not exist")
            continue
        if table.key not in live:
            live[table.key] = live_checks(inspector, table.name, table.schema)
        constraints = live[table.key]
        if constraints is None:
            problems.append(f"{where}: {connection.dialect.name} cannot list CHECK constraints to compare")
        else:
            found = drift(check, constraints)
            if found is not None:
                problems.append(found.describe())
        problems += [u.describe() for u in undeclared_values(connection, check)]
    return problems


def app_database_problems(db: SQLAlchemy) -> list[str]:
    """:func:`database_problems` of each of an app's databases
    (Flask-SQLAlchemy's binds); call it in an app context.

    .. versionadded:: 0.1
    """
    problems = []
    for bind_key, metadata in db.metadatas.items():
        with db.engines[bind_key].connect() as connection:
            problems += database_problems(connection, metadata)
    return problems


def check_managers(managers: t.Mapping[str, type[StateManager]]) -> list[str]:
    """Problems in the definitions: states no transition leads to (but the
    initial state) and transitions no one can perform.

    .. versionadded:: 0.1
    """
    problems = []
    for name, manager in managers.items():
        initial = initial_state(manager)
        targets = {tr.target for tr in manager.transitions().values()}
        for state in manager.states().values():
            if state.is_plain and state is not initial and state not in targets:
                problems.append(f"{name}.{state.name}: no transition leads here")
        for tname, tr in manager.transitions().items():
            if tr.roles is not None and not tr.roles:
                problems.append(f"{name}.{tname}: roles is empty, so no one can perform it")
    return problems
