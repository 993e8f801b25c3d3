"""4. Perform in memory, no database: publish, withdraw, restore, over and
over, as the editor.

Ours on a transient ``Document`` (mapped, in no session); transitions'
trigger; python-statemachine's ``send``; django-fsm-2's decorated method
(not saved), after ``has_transition_perm`` since django-fsm-2 leaves the
permission to the caller while the others check the role themselves. The
bare method, which checks no role, is shown too.
"""

from __future__ import annotations

import itertools

import sqlalchemy as sa

from .harness import Case, measure
from .report import Report
from .workload import CYCLE, DRAFT, EDITOR, PUBLISHED, WITHDRAWN, drafts

TITLE = "Perform in memory (publish / withdraw / restore cycle)"


def run(report: Report) -> None:
    d = drafts()
    fsm, doc, fsm_doc, model, sm = d.fsm, d.doc, d.fsm_doc, d.model, d.sm
    fsm_plain = fsm.FsmDocument(title="A", state=DRAFT)
    has_perm = fsm.has_transition_perm

    def cycler() -> itertools.cycle[str]:
        return itertools.cycle(CYCLE)

    # each statement performs the next transition of the cycle
    cases = {
        "ours": Case("getattr(doc.state, next(names))(user)", {"doc": doc, "user": EDITOR, "names": cycler()}),
        "django-fsm": Case(
            "method = getattr(doc, next(names))\nif has_perm(method, user):\n    method()\nelse:\n    raise RuntimeError",
            {"doc": fsm_doc, "user": EDITOR, "names": cycler(), "has_perm": has_perm},
        ),
        "django-fsm-bare": Case("getattr(doc, next(names))()", {"doc": fsm_plain, "names": cycler()}),
        "transitions": Case(
            "if not getattr(model, next(names))(user):\n    raise RuntimeError",
            {"model": model, "user": EDITOR, "names": cycler()},
        ),
        "statemachine": Case("sm.send(next(names), user=user)", {"sm": sm, "user": EDITOR, "names": cycler()}),
    }
    # the baseline of the loop itself: next() and getattr() on a cycle
    cases["overhead"] = Case("getattr(doc, next(names))", {"doc": fsm_plain, "names": cycler()})
    timings = measure(cases)
    # in memory: the object never joined a session
    assert sa.inspect(doc).transient and doc.state.value in (DRAFT, PUBLISHED, WITHDRAWN)
    labels = {
        "ours": ("flask_statemgr", "doc.state.publish(user) (transient object)"),
        "django-fsm": ("django-fsm-2", "has_transition_perm(doc.publish, user) then doc.publish()"),
        "django-fsm-bare": ("django-fsm-2", "doc.publish() alone (no permission check)"),
        "transitions": ("transitions", "model.publish(user)"),
        "statemachine": ("python-statemachine", "sm.send('publish', user=user)"),
    }
    overhead = timings.pop("overhead").ns
    for key, timing in timings.items():
        system, label = labels[key]
        net = type(timing)(max(timing.ns - overhead, 0.0), timing.number, timing.rounds, timing.spread)
        report.timing(key, label, system, net)
    for key in ("django-fsm", "transitions", "statemachine"):
        report.compare("perform in memory", "ours", key, minimum=1.0)
    report.compare("perform in memory (vs no permission check)", "ours", "django-fsm-bare")
    report.note(
        "Perform in memory: the cost of picking the next name of the cycle "
        f"({overhead:.0f} ns) is subtracted from every figure."
    )
