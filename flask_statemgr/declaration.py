"""What a model's declaration means, resolved and checked once: the
``cascade`` targets and ``requires`` paths of its managers' transitions,
and the binding mistakes a person makes while declaring (a misspelt column,
a path to nothing), reported when SQLAlchemy configures the mappers rather
than at first use.

The planner (:mod:`.cascade`), the CLI graph and the state model read
cascade targets through :func:`resolve_cascade` and :func:`cascade_links`.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing as t
import weakref

import sqlalchemy as sa
from sqlalchemy import event, orm

from .manager import StateManager, bindings_of

if t.TYPE_CHECKING:
    from .transitions import Transition


@dataclasses.dataclass(frozen=True, slots=True)
class CascadeLink:
    """One ``cascade`` entry of a transition, resolved on a model class.

    :param manager: the attribute of the manager whose transition cascades.
    :param transition: the transition that cascades.
    :param attribute: the cascade's key: a relationship, or another manager
        of the same object.
    :param model: the class the cascade reaches.
    :param target_manager: the attribute of the manager moved on ``model``.
    :param target: the transition performed on it.

    .. versionadded:: 0.2
    """

    manager: str
    transition: Transition
    attribute: str
    model: type
    target_manager: str
    target: Transition


#: per model class: the bindings the cache was built from (a new binding
#: makes :func:`bindings_of` answer a new dict) and spec -> resolution
_resolved: weakref.WeakKeyDictionary[type, tuple[dict[str, StateManager], dict[str, tuple[str, Transition]]]] = (
    weakref.WeakKeyDictionary()
)


def resolve_cascade(host: type, spec: str) -> tuple[str, Transition]:
    """Resolve a cascade target name (``"delete"`` or ``"state.delete"``) on
    a model class to (manager attribute, transition), once per class.

    :raise TypeError: no manager, or several, of ``host`` has it.

    .. versionadded:: 0.2
    """
    bindings = bindings_of(host)
    cached = _resolved.get(host)
    if cached is None or cached[0] is not bindings:
        cached = _resolved[host] = (bindings, {})
    found = cached[1].get(spec)
    if found is None:
        found = cached[1][spec] = _resolve(host, bindings, spec)
    return found


def _resolve(host: type, bindings: dict[str, StateManager], spec: str) -> tuple[str, Transition]:
    if "." in spec:
        manager_name, name = spec.split(".", 1)
        binding = bindings.get(manager_name)
        if binding is None or name not in binding._declared_transitions:
            raise TypeError(f"cascade target {spec!r} does not exist on {host.__name__}")
        return manager_name, binding._declared_transitions[name]
    matches = [(m, b._declared_transitions[spec]) for m, b in bindings.items() if spec in b._declared_transitions]
    if len(matches) != 1:
        where = "no manager" if not matches else "several managers"
        raise TypeError(
            f"cascade target {spec!r}: {where} on {host.__name__} has that transition; write 'manager.{spec}'"
        )
    return matches[0]


def cascade_links(model: type) -> list[CascadeLink]:
    """Every cascade of the managers bound on ``model`` whose target class
    is known before performing (the model itself, or a relationship's
    class), resolved; a key naming some other attribute is followed at
    perform time only.

    .. versionadded:: 0.2
    """
    mapper: orm.Mapper[t.Any] | None = sa.inspect(model, raiseerr=False)
    links = []
    for manager, binding in bindings_of(model).items():
        for transition in binding._declared_transitions.values():
            for attribute, spec in transition.cascade.items():
                reached = _cascade_reaches(model, mapper, attribute, spec)
                if reached is not None:
                    child, spec = reached
                    target_manager, target = resolve_cascade(child, spec)
                    links.append(CascadeLink(manager, transition, attribute, child, target_manager, target))
    return links


def _cascade_reaches(
    model: type, mapper: orm.Mapper[t.Any] | None, attribute: str, spec: str
) -> tuple[type, str] | None:
    """The class cascade key ``attribute`` of ``model`` reaches and the spec
    to resolve there, or ``None`` when only performing tells."""
    if attribute in bindings_of(model):
        # another manager of the same object: its own transition by default
        return model, spec if "." in spec else f"{attribute}.{spec}"
    if mapper is not None and attribute in mapper.relationships:
        return mapper.relationships[attribute].mapper.class_, spec
    return None


def validate_model(model: type) -> None:
    """Check the managers bound on a mapped ``model``: each names one of its
    columns, each cascade reaches a transition, each ``requires`` path a
    manager. Run for every mapped model with a manager once the mappers are
    configured.

    :raise TypeError: naming the model, the attribute and what is wrong.

    .. versionadded:: 0.2
    """
    mapper: orm.Mapper[t.Any] = sa.inspect(model)
    for name, binding in bindings_of(model).items():
        check_column(mapper, name, binding)
        for transition in binding._declared_transitions.values():
            check_cascade(mapper, name, transition)
            check_requires(mapper, name, transition)


def missing_paths(model: type) -> list[str]:
    """The cascade keys and ``requires`` paths of ``model``'s managers whose
    first attribute the model lacks: allowed when the manager is declared
    for another model too, but performing such a transition on this one
    fails (``flask statemgr check`` reports them).

    .. versionadded:: 0.2
    """
    found = []
    for name, binding in bindings_of(model).items():
        for transition in binding._declared_transitions.values():
            paths = [*(f"cascade {key!r}" for key in transition.cascade if not hasattr(model, key))]
            paths += [f"requires {path!r}" for path in transition.requires if not hasattr(model, path.split(".")[0])]
            found += [
                f"{model.__name__}.{name}.{transition.name}: {path}: {model.__name__} has no such attribute"
                for path in paths
            ]
    return found


def check_column(mapper: orm.Mapper[t.Any], name: str, binding: StateManager) -> None:
    """``ProjectState("_sate")``: the manager's attribute is not a column."""
    if binding._key in mapper.columns:
        return
    model = mapper.class_.__name__
    close = difflib.get_close_matches(binding._key, list(mapper.columns.keys()), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise TypeError(f"{model}.{name}: {type(binding).__name__}({binding._key!r}) names no column of {model}{hint}")


def check_cascade(mapper: orm.Mapper[t.Any], name: str, transition: Transition) -> None:
    """Each cascade key that is a manager or a relationship of the model
    leads to a model with its target transition."""
    model = mapper.class_
    for attribute, spec in transition.cascade.items():
        where = f"{model.__name__}.{name}.{transition.name}: cascade {attribute!r}"
        reached = _cascade_reaches(model, mapper, attribute, spec)
        if reached is None:
            # another model reusing the manager may have it; performing says
            # which attribute is missing (see cascade.related)
            continue
        try:
            resolve_cascade(*reached)
        except TypeError as e:
            raise TypeError(f"{where}: {e}") from None


def check_requires(mapper: orm.Mapper[t.Any], name: str, transition: Transition) -> None:
    """Each ``requires`` path that starts on the model leads, through
    relationships, to a manager; a path through another kind of attribute
    is followed at perform time only, and so is one whose first attribute
    the model lacks (another model reusing the manager may have it)."""
    model = mapper.class_
    for path in transition.requires:
        where = f"{model.__name__}.{name}.{transition.name}: requires {path!r}"
        parts = path.split(".")
        if not hasattr(model, parts[0]):
            continue
        current: orm.Mapper[t.Any] | None = mapper
        for part in parts[:-1]:
            assert current is not None
            relationship = current.relationships.get(part)
            if relationship is None:
                if not hasattr(current.class_, part):
                    raise TypeError(f"{where}: {current.class_.__name__} has no attribute {part!r}")
                break
            current = relationship.mapper
        else:
            assert current is not None
            last = parts[-1]
            if last not in bindings_of(current.class_) and (
                last in current.columns or not hasattr(current.class_, last)
            ):
                raise TypeError(f"{where}: {last!r} is not a state manager of {current.class_.__name__}")


#: mapped classes with a manager, configured but not validated yet
_pending: weakref.WeakSet[type] = weakref.WeakSet()


@event.listens_for(orm.Mapper, "mapper_configured")
def _configured(mapper: orm.Mapper[t.Any], model: type) -> None:
    if bindings_of(model):
        _pending.add(model)


@event.listens_for(orm.Mapper, "after_configured")
def _validate_configured() -> None:
    # once every mapper is configured: a path may lead through a class
    # configured after its own
    while _pending:
        validate_model(_pending.pop())
