"""Moving one host's state between backends (``kvmnet state migrate``): everything
the interface can read — instances, outputs, lineage, serial, the whole history,
open intents — is written into an empty target as it is, then read back and
compared, so a copy that lost anything is an error rather than a surprise."""
from __future__ import annotations

from dataclasses import dataclass

from kvmnet.state.backend import StateBackend, StateError
from kvmnet.state.intents import Intent
from kvmnet.state.records import HistoryEntry, StateSnapshot


@dataclass
class StateCopy:
    snapshot: StateSnapshot
    history: list[HistoryEntry]
    intents: list[Intent]


def take(source: StateBackend) -> StateCopy:
    """All of ``source`` (held under its lock by the caller)."""
    return StateCopy(source.read(), source.history(), source.open_intents())


def differences(a: StateCopy, b: StateCopy) -> list[str]:
    """What differs between two copies (empty: the same state)."""
    out = []
    for what in ("lineage", "serial", "instances", "outputs", "sensitive_outputs"):
        if getattr(a.snapshot, what) != getattr(b.snapshot, what):
            out.append(what)
    if [h.to_dict() for h in a.history] != [h.to_dict() for h in b.history]:
        out.append("history")
    if a.intents != b.intents:
        out.append("intents")
    return out


def migrate(source: StateBackend, target: StateBackend) -> StateCopy:
    """Copy ``source`` into the empty ``target``; the copy. Both are locked by the
    caller. Raises StateError when the source holds no state, the target holds one,
    or the copy read back differs."""
    copy = take(source)
    if not copy.snapshot.exists:
        raise StateError(f"there is no state in {source.path} to migrate")
    if target.read().exists:
        raise StateError(f"{target.path} already holds a state; nothing was copied "
                         "(remove it first, or migrate the other way)")
    load = getattr(target, "load_copy", None)
    if load is None:
        raise StateError(f"{type(target).__name__} cannot take a migrated state")
    load(copy.snapshot, copy.history, copy.intents)
    lost = differences(copy, take(target))
    if lost:
        raise StateError(f"the state copied into {target.path} differs from {source.path} in "
                         f"its {', '.join(lost)}; the source was left as it is")
    return copy
