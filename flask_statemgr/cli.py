"""The ``flask statemgr`` command group."""

from __future__ import annotations

import datetime
import json
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from .i18n import force_locale, text
from .constraints import database_problems
from .manager import StateManager, bindings_of

if t.TYPE_CHECKING:
    from .extension import StateMgr

statemgr_cli: AppGroup = AppGroup("statemgr", help="Inspect and maintain state managers.")


def _ext() -> StateMgr:
    return t.cast("StateMgr", current_app.extensions["statemgr"])


def _in_locale(locale: str | None) -> t.ContextManager[None]:
    try:
        return force_locale(locale)
    except (RuntimeError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--locale") from None


_locale_option = click.option(
    "--locale", default=None, help="Render titles in this locale (with Flask-Babel); default: the app's."
)


@statemgr_cli.command("schema")
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
@_locale_option
def schema_command(indent: int, locale: str | None) -> None:
    """Print the JSON state model."""
    with _in_locale(locale):
        schema = _ext().schema()
    click.echo(json.dumps(schema, indent=indent, ensure_ascii=False))


def _managers() -> dict[str, type[StateManager]]:
    found: dict[str, type[StateManager]] = {}
    for exposed in _ext().exposed.values():
        for binding in bindings_of(exposed.model).values():
            found.setdefault(type(binding).__name__, type(binding))
    return found


def cascade_targets(models: t.Iterable[type]) -> dict[tuple[str, str, str], str]:
    """``(manager, transition, attribute)`` to the state the cascade moves the
    related objects to (``"SessionState.DELETED"``), for the given models."""
    import sqlalchemy as sa

    from .declaration import resolve_cascade

    found = {}
    for model in models:
        mapper: t.Any = sa.inspect(model, raiseerr=False)
        for attr, binding in bindings_of(model).items():
            for tname, tr in type(binding).transitions().items():
                for key, spec in tr.cascade.items():
                    if key in bindings_of(model):
                        child: type = model
                        spec = spec if "." in spec else f"{key}.{spec}"
                    elif mapper is not None and key in mapper.relationships:
                        child = mapper.relationships[key].mapper.class_
                    else:
                        continue
                    manager, transition = resolve_cascade(child, spec)
                    target = transition.target
                    owner = target.manager.__name__ if target.manager else "?"
                    found[(type(binding).__name__, tname, key)] = f"{owner}.{target.name}"
    return found


class _Edge(t.NamedTuple):
    kind: str  # "transition", "requires" or "cascade"
    manager: str
    source: str
    target: str
    label: str


def _edges(
    managers: t.Mapping[str, type[StateManager]], cascades: t.Mapping[tuple[str, str, str], str]
) -> t.Iterator[_Edge]:
    """Transitions between plain states (a conditional source drawn from its
    base), then ``requires`` and ``cascade`` links between managers."""
    for name, manager in managers.items():
        for tname, tr in manager.transitions().items():
            label = text(tr.title or tname)
            if tr.roles:
                label += f" [{', '.join(sorted(tr.roles))}]"
            for source in sorted(tr.sources, key=lambda s: s.name):
                plain = source.base or source
                yield _Edge("transition", name, plain.name, tr.target.name, label)
            for path, state in tr.requires.items():
                owner = state.manager.__name__ if state.manager else "?"
                yield _Edge("requires", name, tr.target.name, f"{owner}.{state.name}", f"{tname} requires {path}")
            for attr, spec in tr.cascade.items():
                target = cascades.get((name, tname, attr), f"{attr}.{spec}")
                yield _Edge("cascade", name, tr.target.name, target, f"{tname} cascades {attr}")


def _plain_states(manager: type[StateManager]) -> list[tuple[str, str]]:
    return [(s.name, text(s.title or s.name)) for s in manager.states().values() if s.is_plain]


def mermaid(
    managers: t.Mapping[str, type[StateManager]], cascades: t.Mapping[tuple[str, str, str], str] | None = None
) -> str:
    """Each manager as a Mermaid state diagram; ``requires`` and ``cascade``
    as notes between managers."""
    lines = ["stateDiagram-v2"]
    for name, manager in managers.items():
        lines.append(f"  state {name} {{")
        lines += [f"    {name}_{state} : {title}" for state, title in _plain_states(manager)]
        lines.append("  }")
    for edge in _edges(managers, cascades or {}):
        if edge.kind == "transition":
            lines.append(f"  {edge.manager}_{edge.source} --> {edge.manager}_{edge.target} : {edge.label}")
        else:
            lines.append(f"  note right of {edge.manager} : {edge.label} {edge.target}")
    return "\n".join(lines) + "\n"


def dot(
    managers: t.Mapping[str, type[StateManager]], cascades: t.Mapping[tuple[str, str, str], str] | None = None
) -> str:
    """Each manager as a Graphviz cluster; ``requires`` and ``cascade`` as
    dashed edges between managers."""
    lines = ["digraph statemgr {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for name, manager in managers.items():
        lines.append(f'  subgraph "cluster_{name}" {{')
        lines.append(f'    label="{name}";')
        lines += [f'    "{name}.{state}" [label="{title}"];' for state, title in _plain_states(manager)]
        lines.append("  }")
    for edge in _edges(managers, cascades or {}):
        style = "" if edge.kind == "transition" else ", style=dashed"
        target = f"{edge.manager}.{edge.target}" if edge.kind == "transition" else edge.target
        lines.append(f'  "{edge.manager}.{edge.source}" -> "{target}" [label="{edge.label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


@statemgr_cli.command("graph")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@_locale_option
def graph_command(fmt: str, locale: str | None) -> None:
    """Draw the state machines of the exposed models."""
    managers = _managers()
    cascades = cascade_targets(e.model for e in _ext().exposed.values())
    draw = mermaid if fmt == "mermaid" else dot
    with _in_locale(locale):
        graph = draw(managers, cascades)
    click.echo(graph, nl=False)


def check_managers(managers: t.Mapping[str, type[StateManager]]) -> list[str]:
    """Problems in the definitions: unreachable states and transitions no
    one can perform."""
    problems = []
    for name, manager in managers.items():
        plain = [s for s in manager.states().values() if s.is_plain]
        targets = {tr.target for tr in manager.transitions().values()}
        first = plain[0] if plain else None
        for state in plain:
            if state is not first and state not in targets:
                problems.append(f"{name}.{state.name}: no transition leads here")
        for tname, tr in manager.transitions().items():
            if tr.roles is not None and not tr.roles:
                problems.append(f"{name}.{tname}: roles is empty, so no one can perform it")
    return problems


@statemgr_cli.command("check")
def check_command() -> None:
    """Validate the definitions of the exposed models, and compare every
    database with the declared states: a state column's CHECK constraint
    missing or allowing other values, and rows holding a value no state
    declares. Exit status 1 when anything is reported."""
    problems = check_managers(_managers())
    for problem in problems:
        click.echo(f"warning: {problem}")
    errors = app_database_problems()
    for error in errors:
        click.echo(f"error: {error}")
    if problems or errors:
        raise SystemExit(1)
    click.echo("ok")


def app_database_problems() -> list[str]:
    """:func:`~flask_statemgr.constraints.database_problems` of each of the
    app's databases (Flask-SQLAlchemy's binds)."""
    db = _ext().db
    if db is None:
        return []
    problems = []
    for bind_key, metadata in db.metadatas.items():
        with db.engines[bind_key].connect() as connection:
            problems += database_problems(connection, metadata)
    return problems


@statemgr_cli.command("history")
@click.argument("model")
@click.argument("ident")
def history_command(model: str, ident: str) -> None:
    """Print the history of one object of an exposed MODEL."""
    from .api import jsonable
    from .history import query_history

    ext = _ext()
    exposed = ext.exposed.get(model)
    if exposed is None:
        raise click.BadParameter(f"no exposed model {model!r}", param_hint="MODEL")
    assert ext.db is not None
    for record in query_history(ext.db.session, model=exposed.model, object_id=ident, store=ext.store):
        click.echo(
            f"{record.id}\t{record.at.isoformat()}\t{record.manager}.{record.transition}\t"
            f"{record.source} -> {record.target}\tuser={record.user_id}\t"
            f"{json.dumps(jsonable(record.payload))}"
        )


@statemgr_cli.command("gc")
@click.option("--dry-run", is_flag=True, help="Report what would be removed.")
@click.option("--grace", default=3600, show_default=True, help="Keep unreferenced blobs younger than this many seconds.")
def gc_command(dry_run: bool, grace: int) -> None:
    """Remove stored blobs that no history record references."""
    import sqlalchemy as sa

    from .tables import history_table

    ext = _ext()
    assert ext.db is not None
    store = ext.store
    session = ext.db.session
    referenced: set[str] = set()
    payloads = session.execute(
        sa.select(history_table.c.payload).where(history_table.c.payload.is_not(None))
    ).scalars()
    for payload in payloads:
        referenced |= store.payload_keys(payload)
    result = store.collect_garbage(
        referenced, grace=datetime.timedelta(seconds=grace), dry_run=dry_run, session=session  # type: ignore[arg-type]
    )
    session.commit()
    click.echo(f"{'would remove' if dry_run else 'removed'}: {result}")


@statemgr_cli.command("verify")
def verify_command() -> None:
    """Hash every stored blob again and list the corrupt ones and those that
    records reference but the store lacks (exit status 1 if any), as
    ``git fsck`` does."""
    import sqlalchemy as sa

    from .exceptions import CorruptBlobError
    from .tables import history_table

    ext = _ext()
    assert ext.db is not None
    store = ext.store
    session = ext.db.session
    referrers: dict[str, list[int]] = {}
    unreadable: list[int] = []
    rows = session.execute(
        sa.select(history_table.c.id, history_table.c.payload)
        .where(history_table.c.payload.is_not(None))
        .order_by(history_table.c.id)
    )
    for record_id, payload in rows:
        try:
            keys = store.payload_keys(payload)
        except CorruptBlobError:
            unreadable.append(record_id)
            continue
        for key in keys:
            referrers.setdefault(key, []).append(record_id)
    result = store.verify(referrers.keys(), session=session)  # type: ignore[arg-type]
    session.rollback()

    def records(key: str) -> str:
        ids = referrers.get(key, [])
        return f" (records {', '.join(map(str, ids))})" if ids else " (no record refers to it)"

    for key in result.corrupt:
        click.echo(f"corrupt blob {key}{records(key)}")
    for key in result.missing:
        click.echo(f"missing blob {key}{records(key)}")
    for record_id in unreadable:
        click.echo(f"corrupt payload in record {record_id}")
    problems = len(result.corrupt) + len(result.missing) + len(unreadable)
    click.echo(f"blobs: {result.examined}, referenced: {len(referrers)}, problems: {problems}")
    if problems:
        raise SystemExit(1)
