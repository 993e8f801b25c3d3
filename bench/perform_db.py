"""5. Perform with the database, one commit per transition, on a SQLite file
and on PostgreSQL: the publish / withdraw / restore cycle on one row.

- ours: ``doc = session.get(Document, pk)`` (app code loads the object
  first), ``doc.state.publish(user)``, then ``session.commit()``: it checks
  role and precondition, and does the compare-and-set ``UPDATE`` and
  inserts a history record (no savepoint: the transaction has only read);
- raw ORM: ``session.get``, read ``doc._state``, check it is a source of the transition,
  assign the target, ``session.commit()`` (the least a hand-written state
  change does); and the same without the read ("blind write");
- django-fsm-2: ``has_transition_perm`` then the decorated method then
  ``save()`` (autocommit), on the same server in its own table; and with
  ``ConcurrentTransitionMixin`` inside ``transaction.atomic()``, django-fsm-2's
  own compare-and-set;
- django-fsm-2 doing the same work as ours: load the row (``objects.get``,
  as ours reloads it), check the permission, then in ``atomic()`` the method
  and ``save()`` with ``ConcurrentTransitionMixin``, and a history row
  written by a ``post_transition`` receiver, as django-fsm-log does.

The SQLAlchemy sessions are configured as Flask-SQLAlchemy's are
(``expire_on_commit=True``), so after each commit the next read of the row
reloads it, for ours and for the raw ORM alike; a Django instance is not
reloaded. Each figure also gives the SQL statements one transition sends
(BEGIN and COMMIT left out), counted over one cycle before the timing.
"""

from __future__ import annotations

import itertools
import typing as t

import sqlalchemy as sa

from .databases import databases, engine_for, insert_documents, session
from .harness import Case, measure, quick
from .report import Report
from .workload import CYCLE, DRAFT, EDITOR, TRANSITIONS, Document

TITLE = "Perform with the database, commit per transition"

LABELS = {
    "ours": ("flask_statemgr", "doc.state.publish(user); session.commit()"),
    "raw": ("SQLAlchemy ORM (raw)", "check doc._state, assign, session.commit()"),
    "blind": ("SQLAlchemy ORM (raw)", "assign doc._state, session.commit() (no read)"),
    "django-fsm": ("django-fsm-2", "has_transition_perm, doc.publish(), doc.save()"),
    "django-fsm-cas": ("django-fsm-2", "the same with ConcurrentTransitionMixin in atomic()"),
    "django-fsm-same": ("django-fsm-2", "the same work: get, compare-and-set in atomic(), a log row"),
}


def raw_step(name: str, doc: Document) -> None:
    """The hand-written transition the raw ORM figure times."""
    sources, target, _ = TRANSITIONS[name]
    if doc._state not in sources:
        raise RuntimeError(f"cannot {name} from {doc._state}")
    doc._state = target


def statements_per_operation(cases: dict[str, Case], engine: sa.Engine, alias: str) -> dict[str, float]:
    """How many SQL statements each case sends per transition, over one
    cycle: BEGIN and COMMIT left out (each side sends some of them as
    statements on one database and through the driver on another),
    SAVEPOINTs counted."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    control = {"BEGIN", "COMMIT", "ROLLBACK"}
    sent = [0]

    def count(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        sent[0] += statement.strip().upper() not in control

    counts = {}
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for key, case in cases.items():
            code = compile(case.stmt, "<statements>", "exec")
            sent[0] = 0
            with CaptureQueriesContext(connections[alias]) as django_queries:
                for _ in CYCLE:
                    exec(code, case.namespace)  # noqa: S102 - our own statements
            django_sent = sum(q["sql"].strip().upper() not in control for q in django_queries.captured_queries)
            counts[key] = (sent[0] + django_sent) / len(CYCLE)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return counts


def cases_for(url: str, alias: str, fsm: t.Any) -> tuple[dict[str, Case], sa.Engine, t.Callable[[], None]]:
    """The five cases on one database, their engine, and a cleanup."""
    from django.db import transaction

    from . import django_peer

    django_peer.create_tables(alias)
    plain = fsm.FsmDocument.objects.using(alias).create(title="Django")
    cas = fsm.ConcurrentFsmDocument.objects.using(alias).create(title="Django")
    logged = fsm.LoggedFsmDocument.objects.using(alias).create(title="Django")
    engine = engine_for(url)
    insert_documents(engine, [(DRAFT, "Ours"), (DRAFT, "Raw"), (DRAFT, "Blind")])
    s = session(engine)
    ours, raw, blind = (s.get(Document, i) for i in (1, 2, 3))
    # end the read transaction: on SQLite it would block Django's writes
    s.commit()

    def cycle() -> itertools.cycle[str]:
        return itertools.cycle(CYCLE)

    targets = itertools.cycle([TRANSITIONS[n][1] for n in CYCLE])
    django_stmt = "method = getattr(doc, next(names))\nif not has_perm(method, user):\n    raise RuntimeError\n"
    cases = {
        # loaded first in the transaction, as app code does (session.get of
        # the expired object reads its row and begins the transaction)
        "ours": Case(
            "doc = session.get(Document, pk)\ngetattr(doc.state, next(names))(user)\nsession.commit()",
            {"Document": Document, "pk": ours.id, "names": cycle(), "user": EDITOR, "session": s},
        ),
        "raw": Case(
            "doc = session.get(Document, pk)\nraw_step(next(names), doc)\nsession.commit()",
            {"Document": Document, "pk": raw.id, "names": cycle(), "raw_step": raw_step, "session": s},
        ),
        "blind": Case("doc._state = next(targets)\nsession.commit()", {"doc": blind, "targets": targets, "session": s}),
        "django-fsm": Case(
            django_stmt + "method()\ndoc.save()",
            {"doc": plain, "names": cycle(), "user": EDITOR, "has_perm": fsm.has_transition_perm},
        ),
        "django-fsm-cas": Case(
            django_stmt + "with atomic(using=alias):\n    method()\n    doc.save()",
            {
                "doc": cas,
                "names": cycle(),
                "user": EDITOR,
                "has_perm": fsm.has_transition_perm,
                "atomic": transaction.atomic,
                "alias": alias,
            },
        ),
        "django-fsm-same": Case(
            "doc = documents.get(pk=pk)\n"
            + django_stmt
            + "with atomic(using=alias):\n    method(by=user)\n    doc.save()",
            {
                "documents": fsm.LoggedFsmDocument.objects.using(alias),
                "pk": logged.pk,
                "names": cycle(),
                "user": EDITOR,
                "has_perm": fsm.has_transition_perm,
                "atomic": transaction.atomic,
                "alias": alias,
            },
        ),
    }

    def cleanup() -> None:
        # every performed transition left one history record
        from flask_statemgr.tables import history_table

        records = s.execute(sa.select(sa.func.count()).select_from(history_table)).scalar()
        assert records and records > 0
        # and so did every django-fsm-2 one with the same work
        assert fsm.TransitionLog.objects.using(alias).count() > 0
        s.close()
        engine.dispose()

    return cases, engine, cleanup


def run(report: Report) -> None:
    from . import django_peer

    round_ns = 100_000_000 if quick() else 400_000_000
    rounds = 5 if quick() else 7
    with databases() as dbs:
        sqlite_url, _ = dbs["sqlite"]
        pg_url, schema = dbs["postgresql"]
        fsm = django_peer.configure(sqlite_url.removeprefix("sqlite:///"), schema)
        try:
            for db, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
                alias = django_peer.ALIASES[db]
                cases, engine, cleanup = cases_for(url, alias, fsm)
                try:
                    statements = statements_per_operation(cases, engine, alias)
                    timings = measure(cases, round_ns=round_ns, rounds=rounds)
                finally:
                    cleanup()
                for key, timing in timings.items():
                    system, label = LABELS[key]
                    report.timing(f"{db}:{key}", f"{db}: {label}", system, timing, statements=statements[key])
                report.compare(f"{db}: perform + commit, >= 0.5x raw ORM", f"{db}:ours", f"{db}:raw", minimum=0.5)
                report.compare(f"{db}: perform + commit vs a blind write", f"{db}:ours", f"{db}:blind")
                report.compare(f"{db}: perform + commit", f"{db}:ours", f"{db}:django-fsm", minimum=1.0)
                report.compare(f"{db}: perform + commit vs compare-and-set", f"{db}:ours", f"{db}:django-fsm-cas")
                report.compare(
                    f"{db}: perform + commit, the same work", f"{db}:ours", f"{db}:django-fsm-same", minimum=1.0
                )
        finally:
            django_peer.close()
    report.note(
        "Ours writes a history record per transition in the same transaction; the raw "
        "ORM and the first two django-fsm-2 figures write none. Per transition ours sends "
        "SELECT (the reload after the last commit) and, on SQLite, the compare-and-set "
        "UPDATE and the history INSERT, on PostgreSQL both in one statement (WITH ... "
        "UPDATE ... RETURNING, INSERT ... SELECT); the raw ORM the SELECT and an UPDATE; "
        "django-fsm-2's save() one UPDATE, without reading the row back; django-fsm-2 "
        "with the same work SELECT, UPDATE and INSERT."
    )
