"""1. State test: is the object in DRAFT?

Ours (``doc.state.DRAFT``) beside the raw column comparison it wraps
(``doc._state == 1``) and each peer's own test. Every object is in DRAFT, so
every test answers True.
"""

from __future__ import annotations

from .harness import Case, measure
from .report import Report
from .workload import drafts

TITLE = "State test (is it DRAFT?)"


def run(report: Report) -> None:
    d = drafts()
    doc, fsm_doc, model, sm = d.doc, d.fsm_doc, d.model, d.sm
    cases = {
        "ours": Case("doc.state.DRAFT", {"doc": doc}),
        "raw": Case("doc._state == 1", {"doc": doc}),
        "django-fsm": Case("doc.state == 1", {"doc": fsm_doc}),
        "transitions-is": Case("model.is_draft()", {"model": model}),
        "transitions-eq": Case("model.state == 'draft'", {"model": model}),
        "statemachine-active": Case("sm.draft.is_active", {"sm": sm}),
        "statemachine-value": Case("sm.current_state_value == 'draft'", {"sm": sm}),
    }
    assert all(eval(c.stmt, c.namespace) for c in cases.values())  # noqa: S307 - our own statements
    timings = measure(cases)
    labels = {
        "ours": ("flask_statemgr", "doc.state.DRAFT"),
        "raw": ("SQLAlchemy (raw)", "doc._state == 1"),
        "django-fsm": ("django-fsm-2", "doc.state == 1 (FSMField descriptor)"),
        "transitions-is": ("transitions", "model.is_draft()"),
        "transitions-eq": ("transitions", "model.state == 'draft'"),
        "statemachine-active": ("python-statemachine", "sm.draft.is_active"),
        "statemachine-value": ("python-statemachine", "sm.current_state_value == 'draft'"),
    }
    for key, timing in timings.items():
        system, label = labels[key]
        report.timing(key, label, system, timing)
    report.compare("state test, within 5x of raw", "ours", "raw", minimum=0.2)
    for key in labels:
        if key not in ("ours", "raw"):
            report.compare("state test", "ours", key)
    report.note(
        "python-statemachine 3 deprecates sm.current_state (it warns on every "
        "read), so its value test uses sm.current_state_value."
    )
