"""The ``flask statemgr`` command group: each command parses its options,
calls the module that does the work, and says what it found."""

from __future__ import annotations

import datetime
import json
import typing as t

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from .api import current_statemgr, jsonable
from .constraints import app_database_problems, check_managers
from .declaration import missing_paths, validate_model
from .exceptions import CorruptBlobError
from .graph import cascade_targets, dot, managers_of, mermaid
from .history import query_history
from .i18n import force_locale
from .tables import history_table

if t.TYPE_CHECKING:
    from sqlalchemy.orm import Session, scoped_session

    from .store import DataStore

statemgr_cli: AppGroup = AppGroup("statemgr", help="Inspect and maintain state managers.")


def _in_locale(locale: str | None) -> t.ContextManager[None]:
    try:
        return force_locale(locale)
    except (RuntimeError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="--locale") from None


_locale_option = click.option(
    "--locale", default=None, help="Render titles in this locale (with Flask-Babel); default: the app's."
)


def _exposed_models() -> list[type]:
    return [e.model for e in current_statemgr().exposed.values()]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@statemgr_cli.command("schema")
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
@_locale_option
def schema_command(indent: int, locale: str | None) -> None:
    """Print the JSON state model."""
    with _in_locale(locale):
        schema = current_statemgr().schema()
    click.echo(json.dumps(schema, indent=indent, ensure_ascii=False))


@statemgr_cli.command("graph")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
@_locale_option
def graph_command(fmt: str, locale: str | None) -> None:
    """Draw the state machines of the exposed models: states, groups,
    conditional states, the initial state, transitions, and requires and
    cascade links (Mermaid: notes; dot: dashed edges)."""
    models = _exposed_models()
    draw = mermaid if fmt == "mermaid" else dot
    with _in_locale(locale):
        graph = draw(managers_of(models), cascade_targets(models))
    click.echo(graph, nl=False)


@statemgr_cli.command("check")
def check_command() -> None:
    """Validate the definitions of the exposed models, and compare every
    database with the declared states: a state column's CHECK constraint
    missing or allowing other values, and rows holding a value no state
    declares. Exit status 1 when anything is reported."""
    models = _exposed_models()
    managers = managers_of(models)
    problems = check_managers(managers)
    for model in models:
        # what mapper configuration raises, and what only a perform would
        try:
            validate_model(model)
        except TypeError as mistake:
            problems.append(str(mistake))
        problems += missing_paths(model)
    for problem in problems:
        click.echo(f"warning: {problem}")
    db = current_statemgr().db
    errors = app_database_problems(db) if db is not None else []
    for error in errors:
        click.echo(f"error: {error}")
    if problems or errors:
        raise SystemExit(1)
    databases = len(db.metadatas) if db is not None else 0
    click.echo(
        f"Checked {_plural(len(managers), 'state manager')} of {_plural(len(models), 'exposed model')}"
        f" and {_plural(databases, 'database')}: no problems."
    )


@statemgr_cli.command("history")
@click.argument("model")
@click.argument("ident")
def history_command(model: str, ident: str) -> None:
    """Print the history of one object of an exposed MODEL. Exit status 1
    when there is no such object and no record of one."""
    ext = current_statemgr()
    exposed = ext.exposed.get(model)
    if exposed is None:
        raise click.BadParameter(f"no exposed model {model!r}", param_hint="MODEL")
    assert ext.db is not None
    records = query_history(ext.db.session, model=exposed.model, object_id=ident, store=ext.store)
    # the history of a deleted row is still shown
    if not records:
        if ext.load(exposed.model, ident) is None:
            click.echo(f"{model} {ident} not found", err=True)
            raise SystemExit(1)
        click.echo(f"{model} {ident} has no history yet")
    for record in records:
        click.echo(
            f"{record.id}\t{record.at.isoformat()}\t{record.manager}.{record.transition}\t"
            f"{record.source} -> {record.target}\tuser={record.user_id}\t"
            f"{json.dumps(jsonable(record.payload))}"
        )


class References(t.NamedTuple):
    """What the history's stored payloads refer to in the data store."""

    #: blob key to the ids of the records referring to it
    referrers: dict[str, list[int]]
    #: ids of the records whose payload cannot be parsed
    unreadable: list[int]


def payload_references(session: Session | scoped_session[t.Any], store: DataStore) -> References:
    """The blobs every history record's payload refers to (the mark of
    ``gc``, the list ``verify`` checks).

    .. versionadded:: 0.1
    """
    references = References({}, [])
    rows = session.execute(
        sa.select(history_table.c.id, history_table.c.payload)
        .where(history_table.c.payload.is_not(None))
        .order_by(history_table.c.id)
    )
    for record_id, payload in rows:
        try:
            keys = store.payload_keys(payload)
        except CorruptBlobError:
            references.unreadable.append(record_id)
            continue
        for key in keys:
            references.referrers.setdefault(key, []).append(record_id)
    return references


@statemgr_cli.command("gc")
@click.option("--dry-run", is_flag=True, help="Report what would be removed.")
@click.option(
    "--grace", default=3600, show_default=True, help="Keep unreferenced blobs younger than this many seconds."
)
def gc_command(dry_run: bool, grace: int) -> None:
    """Remove stored blobs that no history record references. Exit status
    1, removing nothing, when a record's payload cannot be read (its blobs
    are unknown)."""
    ext = current_statemgr()
    assert ext.db is not None
    store = ext.store
    session = ext.db.session
    references = payload_references(session, store)
    if references.unreadable:
        session.rollback()
        ids = ", ".join(map(str, references.unreadable))
        click.echo(f"Removed nothing: the payload of records {ids} cannot be read (see flask statemgr verify).")
        raise SystemExit(1)
    result = store.collect_garbage(
        set(references.referrers),
        grace=datetime.timedelta(seconds=grace),
        dry_run=dry_run,
        session=session,  # type: ignore[arg-type]
    )
    session.commit()
    verb = "Would remove" if dry_run else "Removed"
    click.echo(
        f"{verb} {result.deleted} of {_plural(result.examined, 'blob')}"
        f" ({result.deleted_bytes} of {result.examined_bytes} bytes);"
        f" kept {_plural(result.young, 'unreferenced blob')} younger than {grace} seconds."
    )


@statemgr_cli.command("verify")
def verify_command() -> None:
    """Hash every stored blob again and list the corrupt ones and those that
    records reference but the store lacks (exit status 1 if any), as
    ``git fsck`` does."""
    ext = current_statemgr()
    assert ext.db is not None
    store = ext.store
    session = ext.db.session
    referrers, unreadable = payload_references(session, store)
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
