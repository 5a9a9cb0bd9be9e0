"""Reconciliation of open intents: what to do about a change that a previous run
began and never recorded (killed, or failed mid-way).

The decision is pure (:func:`decide`): an intent and what is live under its
identity give one verdict. The side effects are at the edge (:func:`settle`, run
by apply and destroy before they plan; a plan only shows the verdicts).

* ``adopt``: the live object is exactly the one the intent names: its mark is the
  intent's and every attribute kvmnet chose for it (UUID, MAC) matches, or, when
  the provider could not mark it yet, those chosen attributes alone match. The
  plan takes it as this instance's prior object (as a marked object is adopted).
* ``rollback``: what is live is not a whole object of this intent (nothing, or
  ours but half-made, or a non-exclusive object without our mark): the provider
  discards whatever the interrupted call left (``Provider.discard``) and the plan
  makes the object afresh.
* ``conflict``: an object with the same ID exists that this intent did not make
  (no mark and nothing kvmnet chose, or another mark): never adopted silently;
  the plan shows an error and the intent stays open.
* ``forget``: an interrupted update or delete (the refresh reads the object as it
  is and the plan finishes the change), or the instance is in the state already.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

ADOPT = "adopt"
ROLLBACK = "rollback"
CONFLICT = "conflict"
FORGET = "forget"


@dataclass(frozen=True)
class Decision:
    intent: Any                 # kvmnet.state.Intent
    verdict: str
    obj: Any = None             # the live object adopted or in conflict
    message: str = ""


def _chosen_match(identity: dict, obj) -> bool | None:
    """Whether the attributes kvmnet chose match the live object's (None: none chosen)."""
    chosen = identity.get("attrs") or {}
    if not chosen:
        return None
    return all(obj.attrs.get(k) == v for k, v in chosen.items())


def decide(intent, live: dict, in_state: bool) -> Decision:
    """The verdict on ``intent`` given ``live`` (the provider's objects of the
    intent's type, by ID) and whether the state already holds its address."""
    if intent.action != "create" or in_state:
        return Decision(intent, FORGET)
    ident = intent.identity
    obj = live.get(ident.get("id")) if ident.get("id") is not None else None
    if obj is None:
        return Decision(intent, ROLLBACK)
    ours = obj.mark is not None and str(obj.mark) == ident.get("mark")
    chosen = _chosen_match(ident, obj)
    if (ours and chosen is not False) or (obj.mark is None and chosen is True):
        return Decision(intent, ADOPT, obj)
    if ours:
        return Decision(intent, ROLLBACK, obj)     # ours, but not whole yet
    if not ident.get("exclusive", True):
        return Decision(intent, ROLLBACK, obj)     # nobody else's object to conflict with
    made_by = f"carries another mark ({obj.mark})" if obj.mark is not None else "has no kvmnet mark"
    return Decision(intent, CONFLICT, obj, (
        f'{intent.type} "{ident.get("id")}" exists, but it is not the object that an '
        f"interrupted kvmnet {intent.action} began (intent {intent.id} of {intent.created}): "
        f"it {made_by}. It was made by someone else after kvmnet was interrupted: "
        f"remove it, or adopt it with kvmnet import '{intent.address}' '{ident.get('id')}'"))


def decide_all(intents: list, live: dict[tuple[str, str], dict], in_state: set[str]) -> list[Decision]:
    """:func:`decide` for every intent; ``live`` maps (provider, type) to its objects.
    Of several intents for one address only the newest counts, the older are forgotten."""
    newest = {}
    for it in intents:
        newest[it.address] = it
    return [decide(it, live.get((it.provider, it.type), {}), it.address in in_state)
            if newest[it.address] is it else Decision(it, FORGET) for it in intents]


def wanted_ids(intents: list) -> dict[tuple[str, str], set[str]]:
    """The live IDs to read for ``intents``, by (provider, type)."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for it in intents:
        if isinstance(it.identity.get("id"), str):
            out[(it.provider, it.type)].add(it.identity["id"])
    return out


# -- the edge -----------------------------------------------------------------------

def read_live(intents: list, providers) -> dict[tuple[str, str], dict]:
    """What is live under the intents' identities, one bulk read per type."""
    return {(p, t): providers.get(p).read(t, sorted(ids))
            for (p, t), ids in sorted(wanted_ids(intents).items())}


def settle(backend, providers) -> list[Decision]:
    """Settle every open intent: discard half-made objects and close the intents
    of rolled-back and forgotten changes. Adopted and conflicting ones stay open:
    the plan adopts (and the walk closes the intent with the state write) or
    reports the conflict. Returns the decisions."""
    intents = backend.open_intents()
    if not intents:
        return []
    decisions = decide_all(intents, read_live(intents, providers), set(backend.read().instances))
    done = []
    for d in decisions:
        if d.verdict == ROLLBACK:
            providers.get(d.intent.provider).discard(d.intent.type, d.intent.identity)
        if d.verdict in (ROLLBACK, FORGET):
            done.append(d.intent.id)
    if done:
        with backend.transaction() as w:
            for iid in done:
                w.close_intent(iid)
    return decisions
