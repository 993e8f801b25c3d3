"""Exceptions raised by flask_statemgr.

Every refusal of a transition is a :class:`TransitionError` carrying the HTTP
status an API should answer with and the :class:`~flask_statemgr.Reason`
objects that explain it.
"""

from __future__ import annotations

import typing as t

from .i18n import N_, gettext, text

if t.TYPE_CHECKING:
    from .results import Reason


class StateMgrError(Exception):
    """Base class of every error this package raises on purpose.

    .. versionadded:: 0.1
    """


class TransitionError(StateMgrError):
    """A transition was refused or failed.

    :param message: a human summary.
    :param reasons: why, one :class:`Reason` per failed check.

    .. versionadded:: 0.1
    """

    http_status: int = 400
    title: str = N_("Transition refused")
    args: tuple[t.Any, ...]

    def __init__(self, message: str = "", reasons: t.Sequence[Reason] = ()) -> None:
        self.reasons: list[Reason] = list(reasons)
        # made when read: a listing builds many refusals and reads their
        # reasons, not their messages
        self._message = message
        # what BaseException.__init__ would set, without the call through
        # super(), which costs as much as the rest of this method
        self.args = (message,)

    @property
    def message(self) -> str:
        """The message given, else the reasons' messages, else the title."""
        if not self._message:
            self._message = "; ".join(text(r.message) for r in self.reasons) or gettext(self.title)
        return self._message

    def __str__(self) -> str:
        return self.message


class StateConflict(TransitionError):
    """The object is not in a state the transition starts from, or another
    worker changed it first.

    .. versionadded:: 0.1
    """

    http_status: int = 409
    title: str = N_("State conflict")


class RequirementsUnmet(TransitionError):
    """Another state manager is not in the state the transition requires.

    .. versionadded:: 0.1
    """

    http_status: int = 409
    title: str = N_("Requirements unmet")


class PermissionDenied(TransitionError):
    """The user may not perform the transition (401 when anonymous).

    .. versionadded:: 0.1
    """

    http_status: int = 403
    title: str = N_("Permission denied")

    def __init__(
        self,
        message: str = "",
        reasons: t.Sequence[Reason] = (),
        *,
        anonymous: bool = False,
    ) -> None:
        super().__init__(message, reasons)
        self.anonymous = anonymous
        if anonymous:
            self.http_status = 401
            self.title = N_("Authentication required")


class PreconditionFailed(TransitionError):
    """A precondition declared on the model refused the transition.

    .. versionadded:: 0.1
    """

    http_status: int = 409
    title: str = N_("Precondition failed")


class ValidationFailed(TransitionError):
    """The submitted data did not validate against the transition's form.

    :param errors: field name to a list of messages; without a ``message``,
        the message names each field and what is wrong with it.

    .. versionchanged:: 0.2
        The default message names the fields.

    .. versionadded:: 0.1
    """

    http_status: int = 422
    title: str = N_("Validation failed")

    def __init__(
        self,
        message: str = "",
        reasons: t.Sequence[Reason] = (),
        *,
        errors: t.Mapping[str, t.Sequence[str]] | None = None,
    ) -> None:
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in (errors or {}).items()}
        if not message and self.errors:
            # the fields, so a log line or a traceback says what to fix
            fields = "; ".join(_field_errors(field, messages) for field, messages in self.errors.items())
            message = gettext("The submitted data is not valid: %(fields)s", fields=fields)
        super().__init__(message or gettext("The submitted data is not valid"), reasons)


def _field_errors(field: str, messages: list[str]) -> str:
    """``"title: This field is required."``; a form-wide error (field
    ``""``) is its messages alone."""
    words = " ".join(text(m) for m in messages)
    return f"{field}: {words}" if field else words


class ConfirmationRequired(TransitionError):
    """A cascade would change more than the object itself and the caller did
    not confirm it.

    :param plan: how many objects it would change, by model.

    .. versionadded:: 0.1
    """

    http_status: int = 409
    title: str = N_("Confirmation required")

    def __init__(self, message: str = "", reasons: t.Sequence[Reason] = (), *, plan: t.Mapping[str, int]) -> None:
        self.plan: dict[str, int] = dict(plan)
        super().__init__(message or gettext("This changes more than one object; confirm it"), reasons)


class UnknownStateValue(StateMgrError, LookupError):
    """A state column holds a value that no state of its manager declares:
    a row written around the manager, or one left behind when a state was
    dropped. ``flask statemgr check`` lists such rows.

    :param manager: the manager class's name.
    :param model: the model class's name.
    :param attribute: the mapped attribute the manager is bound to.
    :param column: the column, as ``table.column``.
    :param value: the stored value.
    :param obj: the object, as ``Model id``.

    .. versionadded:: 0.1
    """

    http_status: int = 500
    title: str = N_("Unknown state value")

    def __init__(self, *, manager: str, model: str, attribute: str, column: str, value: t.Any, obj: str) -> None:
        self.manager = manager
        self.model = model
        self.attribute = attribute
        self.column = column
        self.value = value
        super().__init__(
            f"{obj}: {model}.{attribute} (column {column}) holds {value!r}, which no state of {manager} declares"
        )


class LoaderError(StateMgrError, TypeError):
    """An application's loader (of roles, or of the id history records)
    answered something it must not: the application's bug, a 500 whose
    message says which loader, for which object, and what it returned.

    .. versionadded:: 0.2
    """

    http_status: int = 500
    title: str = N_("The application could not tell who may do this")


class SerializationError(StateMgrError, TypeError):
    """A value cannot be serialized (names the field and the type).

    .. versionadded:: 0.1
    """


class PayloadTooLarge(StateMgrError, ValueError):
    """A serialized value exceeds ``STATEMGR_STORE_MAX_SIZE``.

    .. versionadded:: 0.1
    """

    http_status: int = 413


class CorruptBlobError(StateMgrError):
    """A stored blob does not match its content hash, or cannot be decoded.

    .. versionadded:: 0.1
    """


class BlobNotFound(StateMgrError, KeyError):
    """A reference points at a blob the store does not have.

    .. versionadded:: 0.1
    """


class StoreUnavailable(StateMgrError):
    """The store's backend cannot be reached (503 through the API).

    .. versionadded:: 0.1
    """

    http_status: int = 503
