"""The ``flask statemgr`` command group."""

from __future__ import annotations

import datetime
import json
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from .manager import StateManager, bindings_of

if t.TYPE_CHECKING:
    from .extension import StateMgr

statemgr_cli = AppGroup("statemgr", help="Inspect and maintain state managers.")


def _ext() -> StateMgr:
    return t.cast("StateMgr", current_app.extensions["statemgr"])


@statemgr_cli.command("schema")
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
def schema_command(indent: int) -> None:
    """Print the JSON state model."""
    click.echo(json.dumps(_ext().schema(), indent=indent))


def _managers() -> dict[str, type[StateManager]]:
    found: dict[str, type[StateManager]] = {}
    for exposed in _ext().exposed.values():
        for binding in bindings_of(exposed.model).values():
            found.setdefault(type(binding).__name__, type(binding))
    return found


def mermaid(managers: t.Mapping[str, type[StateManager]]) -> str:
    """Each manager as a Mermaid state diagram; ``requires`` and ``cascade``
    as dashed edges between managers."""
    lines = ["stateDiagram-v2"]
    cross = []
    for name, manager in managers.items():
        lines.append(f"  state {name} {{")
        for state in manager.states().values():
            if state.is_plain:
                lines.append(f'    {name}_{state.name} : {state.title or state.name}')
        for tname, tr in manager.transitions().items():
            label = tr.title or tname
            if tr.roles:
                label += f" [{', '.join(sorted(tr.roles))}]"
            for source in sorted(tr.sources, key=lambda s: s.name):
                src = source.base if source.base is not None else source
                assert src is not None
                lines.append(f"    {name}_{src.name} --> {name}_{tr.target.name} : {label}")
            for path, state in tr.requires.items():
                owner = state.manager.__name__ if state.manager else "?"
                cross.append(f"  note right of {name} : {tname} requires {path} = {owner}.{state.name}")
            for attr, target in tr.cascade.items():
                cross.append(f"  note right of {name} : {tname} cascades {attr}.{target}")
        lines.append("  }")
    return "\n".join(lines + cross) + "\n"


def dot(managers: t.Mapping[str, type[StateManager]]) -> str:
    """Each manager as a Graphviz cluster; ``requires`` and ``cascade`` as
    dashed edges between managers."""
    lines = ["digraph statemgr {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    cross = []
    for name, manager in managers.items():
        lines.append(f'  subgraph "cluster_{name}" {{')
        lines.append(f'    label="{name}";')
        for state in manager.states().values():
            if state.is_plain:
                lines.append(f'    "{name}.{state.name}" [label="{state.title or state.name}"];')
        for tname, tr in manager.transitions().items():
            label = tr.title or tname
            if tr.roles:
                label += f"\\n[{', '.join(sorted(tr.roles))}]"
            for source in sorted(tr.sources, key=lambda s: s.name):
                src = source.base if source.base is not None else source
                assert src is not None
                lines.append(f'    "{name}.{src.name}" -> "{name}.{tr.target.name}" [label="{label}"];')
            for path, state in tr.requires.items():
                owner = state.manager.__name__ if state.manager else "?"
                cross.append(
                    f'  "{name}.{tr.target.name}" -> "{owner}.{state.name}" '
                    f'[style=dashed, label="{tname} requires {path}"];'
                )
            for attr, target in tr.cascade.items():
                cross.append(f'  "{name}.{tr.target.name}" -> "{name}.{tr.target.name}" [style=dashed, label="cascade {attr}.{target}"];')
        lines.append("  }")
    return "\n".join(lines + cross + ["}"]) + "\n"


@statemgr_cli.command("graph")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def graph_command(fmt: str) -> None:
    """Draw the state machines of the exposed models."""
    managers = _managers()
    click.echo(mermaid(managers) if fmt == "mermaid" else dot(managers), nl=False)


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
    """Validate the definitions and bindings of the exposed models."""
    problems = check_managers(_managers())
    for problem in problems:
        click.echo(f"warning: {problem}")
    if problems:
        raise SystemExit(1)
    click.echo("ok")


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
