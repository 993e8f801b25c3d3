"""The workflow of :mod:`bench.workload` in django-fsm-2, with Django
configured in-process (``settings.configure``) on the benchmark's own SQLite
file and PostgreSQL schema, in tables of its own.

Three models: ``FsmDocument`` is django-fsm-2 as its README shows it (the
decorated method, then ``save()``); ``ConcurrentFsmDocument`` adds
``ConcurrentTransitionMixin``, django-fsm-2's compare-and-set on save, which
is what flask_statemgr always does; ``LoggedFsmDocument`` also writes a
``TransitionLog`` row per transition from a ``post_transition`` receiver,
as django-fsm-log does (the transition method takes ``by=user``), with the
columns of flask_statemgr's history table: the same work as a perform.
"""

from __future__ import annotations

import functools
import types
import typing as t

import sqlalchemy as sa

from .databases import POSTGRES_URL
from .workload import ARCHIVED, DRAFT, NAMES, PENDING, PUBLISHED, WITHDRAWN

#: the Django database alias of each benchmark database
ALIASES = {"sqlite": "default", "postgresql": "pg"}


def configure(sqlite_path: str, pg_schema: str | None) -> types.SimpleNamespace:
    """Configure Django once per process and define the models; returns the
    models and django-fsm-2's helpers."""
    from django.conf import settings

    if not settings.configured:
        databases: dict[str, t.Any] = {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite_path},
        }
        if pg_schema is not None:
            # the server and database the rest of the bench uses
            url = sa.engine.make_url(POSTGRES_URL)
            databases["pg"] = {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.database,
                "USER": url.username or "",
                "PASSWORD": url.password or "",
                "HOST": url.host or "",
                "PORT": str(url.port or ""),
                "OPTIONS": {"options": f"-c search_path={pg_schema}"},
                "CONN_MAX_AGE": None,
            }
        settings.configure(
            DATABASES=databases,
            INSTALLED_APPS=[],
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
        import django

        django.setup()
    return _models()


@functools.cache
def _models() -> types.SimpleNamespace:
    from django.db import models
    from django_fsm import ConcurrentTransitionMixin, FSMIntegerField, can_proceed, has_transition_perm, transition
    from django_fsm.signals import post_transition

    def has_title(instance: t.Any) -> bool:
        return bool(instance.title)

    def role(name: str) -> t.Callable[[t.Any, t.Any], bool]:
        def permission(instance: t.Any, user: t.Any) -> bool:
            return name in instance.roles_for(user)

        permission.__name__ = f"is_{name}"
        return permission

    author, editor, owner = role("author"), role("editor"), role("owner")

    class DocumentBase(models.Model):
        title = models.CharField(max_length=200, default="")
        state = FSMIntegerField(default=DRAFT)

        class Meta:
            abstract = True

        def roles_for(self, user: t.Any) -> t.AbstractSet[str]:
            return user.roles if user is not None else frozenset()

        @transition(field=state, source=DRAFT, target=PENDING, permission=author)
        def submit(self, by: t.Any = None) -> None:
            pass

        @transition(field=state, source=[DRAFT, PENDING], target=PUBLISHED, conditions=[has_title], permission=editor)
        def publish(self, by: t.Any = None) -> None:
            pass

        @transition(field=state, source=PENDING, target=DRAFT, permission=editor)
        def reject(self, by: t.Any = None) -> None:
            pass

        @transition(field=state, source=PUBLISHED, target=WITHDRAWN, permission=editor)
        def withdraw(self, by: t.Any = None) -> None:
            pass

        @transition(field=state, source=WITHDRAWN, target=DRAFT, permission=editor)
        def restore(self, by: t.Any = None) -> None:
            pass

        @transition(field=state, source=[PUBLISHED, WITHDRAWN], target=ARCHIVED, permission=owner)
        def archive(self, by: t.Any = None) -> None:
            pass

    class FsmDocument(DocumentBase):
        class Meta:
            app_label = "bench_fsm"
            db_table = "bench_fsm_document"

    class ConcurrentFsmDocument(ConcurrentTransitionMixin, DocumentBase):
        class Meta:
            app_label = "bench_fsm"
            db_table = "bench_fsm_concurrent_document"

    class LoggedFsmDocument(ConcurrentTransitionMixin, DocumentBase):
        class Meta:
            app_label = "bench_fsm"
            db_table = "bench_fsm_logged_document"

    class TransitionLog(models.Model):
        model = models.CharField(max_length=128)
        object_id = models.CharField(max_length=64)
        manager = models.CharField(max_length=64)
        transition = models.CharField(max_length=64)
        source = models.CharField(max_length=64)
        target = models.CharField(max_length=64)
        user_id = models.CharField(max_length=64, null=True)
        at = models.DateTimeField(auto_now_add=True)
        payload = models.BinaryField(null=True)
        parent = models.ForeignKey("self", null=True, on_delete=models.CASCADE)

        class Meta:
            app_label = "bench_fsm"
            db_table = "bench_fsm_transition_log"
            indexes = [models.Index(fields=["model", "object_id", "id"])]

    def log_transition(sender: type, instance: t.Any, name: str, source: int, target: int, **kwargs: t.Any) -> None:
        by = kwargs.get("method_kwargs", {}).get("by")
        TransitionLog.objects.using(instance._state.db).create(
            model=sender.__name__,
            object_id=str(instance.pk),
            manager="state",
            transition=name,
            source=NAMES[source],
            target=NAMES[target],
            user_id=str(by.id) if by is not None else None,
        )

    post_transition.connect(log_transition, sender=LoggedFsmDocument, weak=False)

    return types.SimpleNamespace(
        FsmDocument=FsmDocument,
        ConcurrentFsmDocument=ConcurrentFsmDocument,
        LoggedFsmDocument=LoggedFsmDocument,
        TransitionLog=TransitionLog,
        can_proceed=can_proceed,
        has_transition_perm=has_transition_perm,
    )


def create_tables(alias: str) -> None:
    """(Re)create the models' tables on the database ``alias``."""
    from django.db import connections

    ns = _models()
    connection = connections[alias]
    with connection.schema_editor() as editor:
        for model in (ns.FsmDocument, ns.ConcurrentFsmDocument, ns.LoggedFsmDocument, ns.TransitionLog):
            if model._meta.db_table in connection.introspection.table_names():
                editor.delete_model(model)
            editor.create_model(model)


def close() -> None:
    from django.db import connections

    connections.close_all()
