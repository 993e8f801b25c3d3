"""State machines for Flask and SQLAlchemy in which a transition is a
first-class noun."""

from __future__ import annotations

import typing as t

from .bound import BoundTransition
from .exceptions import (
    BlobNotFound,
    ConfirmationRequired,
    CorruptBlobError,
    LoaderError,
    PayloadTooLarge,
    PermissionDenied,
    PreconditionFailed,
    RequirementsUnmet,
    SerializationError,
    StateConflict,
    StateMgrError,
    StoreUnavailable,
    TransitionError,
    UnknownStateValue,
    ValidationFailed,
)
from .history import TransitionRecord, query_history
from .manager import StateManager
from .results import Availability, BulkResult, Plan, Reason, Step, TransitionResult
from .signals import transition_after, transition_before, transition_failed, transition_refused
from .states import State
from .transitions import Transition

if t.TYPE_CHECKING:
    from .extension import StateMgr

__all__ = [
    "Availability",
    "BlobNotFound",
    "BoundTransition",
    "BulkResult",
    "ConfirmationRequired",
    "CorruptBlobError",
    "LoaderError",
    "PayloadTooLarge",
    "PermissionDenied",
    "Plan",
    "PreconditionFailed",
    "Reason",
    "RequirementsUnmet",
    "SerializationError",
    "State",
    "StateConflict",
    "StateManager",
    "StateMgr",
    "StateMgrError",
    "Step",
    "StoreUnavailable",
    "Transition",
    "TransitionError",
    "TransitionRecord",
    "TransitionResult",
    "UnknownStateValue",
    "ValidationFailed",
    "query_history",
    "transition_after",
    "transition_before",
    "transition_failed",
    "transition_refused",
]


def __getattr__(name: str) -> t.Any:
    # The extension pulls in the blueprint, CLI and JSON machinery; load it
    # only when an app asks for it, so importing the core stays cheap.
    if name == "StateMgr":
        from .extension import StateMgr

        return StateMgr
    raise AttributeError(name)
