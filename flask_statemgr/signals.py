"""Blinker signals sent around every performed transition.

The sender is the :class:`~flask_statemgr.Transition`; keyword arguments are
``obj``, ``user``, ``data``, ``source``, ``target`` and, for
``transition_failed``, ``exception``. ``transition_refused`` carries ``obj``,
``user``, ``data`` and ``error``.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t

from blinker import NamedSignal, Namespace

namespace: Namespace = Namespace()

#: sent inside the savepoint, before the execute hooks; a receiver that
#: raises aborts the transition
transition_before: NamedSignal = namespace.signal("transition-before")
#: sent after the savepoint is released; a receiver that raises is logged
#: and does not undo or fail the transition
transition_after: NamedSignal = namespace.signal("transition-after")
#: sent after the savepoint was rolled back
transition_failed: NamedSignal = namespace.signal("transition-failed")
#: sent when the checks (state, requires, permission, preconditions, form)
#: refuse a perform, before anything ran; a receiver that raises is logged
#: and the refusal stands
transition_refused: NamedSignal = namespace.signal("transition-refused")

logger: logging.Logger = logging.getLogger("flask_statemgr")


def send_safely(
    signal: t.Any,
    sender: t.Any,
    *,
    guard: t.Callable[[], t.ContextManager[t.Any]] | None = None,
    **kwargs: t.Any,
) -> None:
    """Call every receiver; log (not raise) what any of them raises, so one
    broken receiver neither hides the others nor fails a done transition.

    :param guard: each receiver runs inside ``guard()``, such as a
        savepoint, which undoes what a failing receiver wrote: on
        PostgreSQL a refused statement would otherwise abort the whole
        transaction, the done transition with it.
    """
    if not signal.receivers:
        return
    for receiver in signal.receivers_for(sender):
        try:
            with guard() if guard is not None else contextlib.nullcontext():
                receiver(sender, **kwargs)
        except Exception:
            logger.exception("receiver %r of %s failed", receiver, signal.name)
