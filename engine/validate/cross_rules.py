"""Rules across instances, generically: each type declares what its instances
claim (:class:`kvmnet.sdk.Claim`: an interface name, a subnet, host ports), offer
and look up (:class:`kvmnet.sdk.Offer`, :class:`kvmnet.sdk.Lookup`); this module
finds the clashes and failed lookups over all instances of all types (SPEC §4).

Claims only clash inside one *scope*: the caller may say which scope (network
namespace, libvirt host) each provider instance works in; by default all share
one. Each clash is reported on the later instance in the configuration and names
the earlier.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Mapping

from kvmnet.engine.registry import resource_types
from kvmnet.sdk.rules import Finding, Subject

if TYPE_CHECKING:
    from kvmnet.sdk.types import Claim

CrossFinding = tuple[Subject, Finding]
Scope = Callable[[Subject], object]
Held = tuple["Claim", Subject]
Spanned = tuple[tuple[int, int], Held]


def scope_of(scopes: Mapping[str, object] | None) -> Scope:
    """A function giving the scope of a subject's provider instance."""
    if not scopes:
        return lambda s: None
    return lambda s: scopes.get(s.inst.provider)


def _later(a: Held, b: Held) -> tuple[Held, Held]:
    return (a, b) if a[1].order > b[1].order else (b, a)


def _report(later: Held, earlier: Held) -> CrossFinding:
    claim, s = later
    return s, Finding(claim.path, claim.conflict(claim, earlier[0], earlier[1].address))


def exact_clashes(held: list[Held]) -> Iterator[CrossFinding]:
    """Claims of one key (in one scope and kind): each later one is reported
    against the first."""
    first: dict[object, Held] = {}
    for claim, s in held:
        other = first.setdefault(claim.key, (claim, s))
        if other[1] is not s:
            yield _report((claim, s), other)


def _sweep_order(item: Spanned) -> tuple:
    span, (claim, _s) = item
    return claim.order or span


def span_clashes(held: list[Held]) -> Iterator[CrossFinding]:
    """Overlapping spans (in one scope and kind) whose keys are equal or either
    None: a sweep over the spans in order, against the one reaching furthest."""
    by_key: dict[object, list[Spanned]] = defaultdict(list)
    for claim, s in held:
        if claim.span is not None:
            by_key[claim.key].append((claim.span, (claim, s)))
    wildcard = by_key.get(None, [])
    reported: set[tuple[int, int]] = set()
    for key, items in by_key.items():
        pool = sorted(items if key is None else items + wildcard, key=_sweep_order)
        holder: Spanned | None = None
        for (first, last), h in pool:
            if holder is not None and first <= holder[0][1]:
                later, earlier = _later(h, holder[1])
                pair = (later[1].order, earlier[1].order)
                if pair not in reported:
                    reported.add(pair)
                    yield _report(later, earlier)
            if holder is None or last > holder[0][1]:
                holder = ((first, last), h)


def claim_findings(subjects: Iterable[Subject], scope: Scope) -> Iterator[CrossFinding]:
    groups: dict[tuple, list[Held]] = defaultdict(list)
    types = resource_types()
    for s in subjects:
        t = types.get(s.inst.type)
        if t is None or t.claims is None:
            continue
        where = scope(s)
        for claim in t.claims(s):
            groups[(where, claim.kind, claim.span is not None)].append((claim, s))
    for (_where, _kind, spans), held in groups.items():
        yield from (span_clashes if spans else exact_clashes)(held)


def lookup_findings(subjects: list[Subject]) -> Iterator[CrossFinding]:
    """Each lookup against the first instance offering its kind and key (the offers
    are only gathered when there is a lookup: 10,000 networks offer their subnets,
    and a config without port forwards asks for none)."""
    types = resource_types()
    lookups = []
    for s in subjects:
        t = types.get(s.inst.type)
        if t is not None and t.lookups is not None:
            lookups += [(s, lookup) for lookup in t.lookups(s)]
    if not lookups:
        return
    offers: dict[tuple, tuple[object, Subject]] = {}
    for s in subjects:
        t = types.get(s.inst.type)
        if t is not None and t.offers is not None:
            for offer in t.offers(s):
                offers.setdefault((offer.kind, offer.key), (offer.value, s))
    for s, lookup in lookups:
        found = offers.get((lookup.kind, lookup.key))
        if found is not None:
            message = lookup.check(found[0], found[1].address)
            if message:
                yield s, Finding(lookup.path, message)


def cross_findings(subjects: list[Subject], scopes: Mapping[str, object] | None = None) -> Iterator[CrossFinding]:
    if not subjects:        # nothing to compare: the plugins' types are not even loaded
        return
    yield from claim_findings(subjects, scope_of(scopes))
    yield from lookup_findings(subjects)
