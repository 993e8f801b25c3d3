"""The state machines drawn as Mermaid state diagrams or Graphviz graphs
(``flask statemgr graph``): each manager's states (plain, groups,
conditional), its initial state and transitions, and the ``requires`` and
``cascade`` links between managers."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from .declaration import resolve_cascade
from .i18n import text
from .manager import StateManager, bindings_of

if t.TYPE_CHECKING:
    from .states import State

#: ``(manager, transition, attribute)`` to the state a cascade moves the
#: related objects to, as ``"SessionState.DELETED"``
Cascades = t.Mapping[tuple[str, str, str], str]


def managers_of(models: t.Iterable[type]) -> dict[str, type[StateManager]]:
    """The manager classes bound to ``models``, by class name, in order.

    .. versionadded:: 0.1
    """
    found: dict[str, type[StateManager]] = {}
    for model in models:
        for binding in bindings_of(model).values():
            found.setdefault(type(binding).__name__, type(binding))
    return found


def cascade_targets(models: t.Iterable[type]) -> dict[tuple[str, str, str], str]:
    """``(manager, transition, attribute)`` to the state the cascade moves the
    related objects to (``"SessionState.DELETED"``), for the given models.

    .. versionadded:: 0.1
    """
    found = {}
    for model in models:
        mapper: t.Any = sa.inspect(model, raiseerr=False)
        for binding in bindings_of(model).values():
            for tname, tr in type(binding).transitions().items():
                for key, spec in tr.cascade.items():
                    if key in bindings_of(model):
                        child: type = model
                        spec = spec if "." in spec else f"{key}.{spec}"
                    elif mapper is not None and key in mapper.relationships:
                        child = mapper.relationships[key].mapper.class_
                    else:
                        continue
                    manager, transition = resolve_cascade(child, spec)
                    target = transition.target
                    owner = target.manager.__name__ if target.manager else "?"
                    found[(type(binding).__name__, tname, key)] = f"{owner}.{target.name}"
    return found


def initial_state(manager: type[StateManager]) -> State | None:
    """The state a new object starts in, as drawn and as ``flask statemgr
    check`` assumes: the first plain state declared.

    .. versionadded:: 0.1
    """
    return next((s for s in manager.states().values() if s.is_plain), None)


class _Edge(t.NamedTuple):
    kind: str  # "transition", "requires" or "cascade"
    manager: str
    source: str
    target: str
    label: str


def _edges(managers: t.Mapping[str, type[StateManager]], cascades: Cascades) -> t.Iterator[_Edge]:
    """Transitions between plain states (a conditional source drawn from its
    base), then ``requires`` and ``cascade`` links between managers."""
    for name, manager in managers.items():
        for tname, tr in manager.transitions().items():
            label = text(tr.title or tname)
            if tr.roles:
                label += f" [{', '.join(sorted(tr.roles))}]"
            for source in sorted(tr.sources, key=lambda s: s.name):
                plain = source.base or source
                yield _Edge("transition", name, plain.name, tr.target.name, label)
            for path, state in tr.requires.items():
                owner = state.manager.__name__ if state.manager else "?"
                yield _Edge("requires", name, tr.target.name, f"{owner}.{state.name}", f"{tname} requires {path}")
            for attr, spec in tr.cascade.items():
                target = cascades.get((name, tname, attr), f"{attr}.{spec}")
                yield _Edge("cascade", name, tr.target.name, target, f"{tname} cascades {attr}")


def _title(state: State) -> str:
    return text(state.title or state.name)


def _members(group: State) -> str:
    return ", ".join(sorted(_title(s) for s in group.plain_states()))


def _mermaid_state(manager: str, state: State) -> str:
    """A plain state with its title; a conditional state as a note on its
    base, a group as a note on its first member."""
    if state.is_plain:
        return f"    {manager}_{state.name} : {_title(state)}"
    if state.base is not None:
        return f"    note right of {manager}_{state.base.name} : conditional {_title(state)}"
    anchor = min(state.plain_states(), key=lambda s: s.name)
    return f"    note left of {manager}_{anchor.name} : group {_title(state)} = {_members(state)}"


def _dot_state(manager: str, state: State) -> list[str]:
    """A plain state's node; a conditional state's dashed node with a dotted
    edge from its base; a group's folder joined to its members."""
    node = f'"{manager}.{state.name}"'
    if state.is_plain:
        return [f'    {node} [label="{_title(state)}"];']
    if state.base is not None:
        return [
            f'    {node} [label="{_title(state)}", style="rounded,dashed"];',
            f'    "{manager}.{state.base.name}" -> {node} [label="when", style=dotted];',
        ]
    members = sorted(state.plain_states(), key=lambda s: s.name)
    return [f'    {node} [label="{_title(state)}", shape=folder];'] + [
        f'    "{manager}.{member.name}" -> {node} [style=dotted, arrowhead=none];' for member in members
    ]


def mermaid(managers: t.Mapping[str, type[StateManager]], cascades: Cascades | None = None) -> str:
    """Each manager as a composite state: ``[*] -->`` its initial state,
    its plain states, and notes for its groups and conditional states;
    ``requires`` and ``cascade`` as notes between managers.

    .. versionadded:: 0.1
    """
    lines = ["stateDiagram-v2"]
    for name, manager in managers.items():
        lines.append(f"  state {name} {{")
        initial = initial_state(manager)
        if initial is not None:
            lines.append(f"    [*] --> {name}_{initial.name}")
        lines += [_mermaid_state(name, state) for state in manager.states().values()]
        lines.append("  }")
    for edge in _edges(managers, cascades or {}):
        if edge.kind == "transition":
            lines.append(f"  {edge.manager}_{edge.source} --> {edge.manager}_{edge.target} : {edge.label}")
        else:
            lines.append(f"  note right of {edge.manager} : {edge.label} {edge.target}")
    return "\n".join(lines) + "\n"


def dot(managers: t.Mapping[str, type[StateManager]], cascades: Cascades | None = None) -> str:
    """Each manager as a Graphviz cluster: a point leading to its initial
    state, its plain states, each group as a folder joined to its members
    by dotted lines, each conditional state dashed beside its base;
    ``requires`` and ``cascade`` as dashed edges between managers.

    .. versionadded:: 0.1
    """
    lines = ["digraph statemgr {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for name, manager in managers.items():
        lines.append(f'  subgraph "cluster_{name}" {{')
        lines.append(f'    label="{name}";')
        initial = initial_state(manager)
        if initial is not None:
            lines.append(f'    "{name}.[*]" [shape=point, label=""];')
            lines.append(f'    "{name}.[*]" -> "{name}.{initial.name}";')
        for state in manager.states().values():
            lines += _dot_state(name, state)
        lines.append("  }")
    for edge in _edges(managers, cascades or {}):
        style = "" if edge.kind == "transition" else ", style=dashed"
        target = f"{edge.manager}.{edge.target}" if edge.kind == "transition" else edge.target
        lines.append(f'  "{edge.manager}.{edge.source}" -> "{target}" [label="{edge.label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
