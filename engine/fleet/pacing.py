"""Who gets a rollout slot now, and what state the rollout is in, decided from rows.

Pure functions over plain records (read by :mod:`kvmnet.engine.fleet.slots` in the
row-locked transaction that grants): the budget (``--max-unavailable`` as a count or
a percentage, rounded down, at least 1), the canaries (hosts labelled ``canary``,
else the first N by name; the others wait until every canary is Available), the
failure limit, pause and abort, the skip of a host that already failed this
commit (unless ``--retry-failed``), a host whose agent is lost (its slot's lease
lapsed and it has not been seen for ``--lost-after``: it counts as failed), and a
host whose plan is empty (Available at once, taking no slot)."""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

ACTIVE = ("running", "paused", "aborting")
FAILED_RESULTS = ("failed", "reverted")
DEFAULT_LOST_AFTER = 120.0     # seconds: four default leases (slots.DEFAULT_LEASE)


@dataclass(frozen=True)
class Rollout:
    id: int
    commit: str
    state: str
    max_unavailable: str
    canary: int
    max_failures: int
    retry_failed: bool = False
    selector: str | None = None
    started_by: str = ""
    lost_after: float = DEFAULT_LOST_AFTER


@dataclass(frozen=True)
class Fleet:
    """What the grant decision reads: the rollout, every known host (name → labels),
    the hosts holding a live slot, each host's result in this rollout, and the hosts
    that failed or reverted this commit in an earlier rollout."""
    rollout: Rollout
    hosts: dict[str, tuple[str, ...]]
    live_slots: frozenset[str] = frozenset()
    results: dict[str, str] = field(default_factory=dict)
    failed_before: frozenset[str] = frozenset()
    lapsed: frozenset[str] = frozenset()       # slot lease expired without a result
    # lapsed host → seconds since its last sign of life (heartbeat or grant, the later)
    unseen: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """``grant``, ``wait`` (ask again later), ``skip`` (record it and stop asking) or
    ``none`` (this rollout has nothing for the host), and why."""
    verdict: str
    why: str


def parse_budget(spec: str) -> tuple[int, bool]:
    """``"3"`` → (3, False); ``"10%"`` → (10, True). ValueError when it is neither."""
    m = re.fullmatch(r"\s*(\d+)\s*(%?)\s*", spec or "")
    if not m:
        raise ValueError(f'--max-unavailable "{spec}" is neither a count (3) nor a percentage (10%)')
    n, pct = int(m.group(1)), bool(m.group(2))
    if pct and not 0 < n <= 100:
        raise ValueError(f'--max-unavailable "{spec}": a percentage is between 1% and 100%')
    if not pct and n < 1:
        raise ValueError(f'--max-unavailable "{spec}": at least one host must be allowed a slot')
    return n, pct


def budget(spec: str, total: int) -> int:
    """How many hosts may hold a slot at once: percentages round down, minimum 1."""
    n, pct = parse_budget(spec)
    return max(1, total * n // 100) if pct else n


def parse_selector(selector: str | None) -> list[str]:
    """``--hosts 'kvm0[1-9],edge*'``: comma-separated globs; none selects every host."""
    return [p.strip() for p in (selector or "").split(",") if p.strip()]


def selected(rollout: Rollout, hosts: dict[str, tuple[str, ...]]) -> list[str]:
    """The rollout's hosts, by name."""
    globs = parse_selector(rollout.selector)
    return sorted(h for h in hosts if not globs or any(fnmatch.fnmatchcase(h, g) for g in globs))


def canaries(rollout: Rollout, hosts: dict[str, tuple[str, ...]]) -> list[str]:
    """The selected hosts labelled ``canary``, else the first ``rollout.canary`` by name
    (none when ``--canary 0``)."""
    if rollout.canary <= 0:
        return []
    names = selected(rollout, hosts)
    labelled = [h for h in names if "canary" in hosts[h]]
    return labelled or names[:rollout.canary]


def failures(fleet: Fleet) -> int:
    return sum(1 for r in fleet.results.values() if r in FAILED_RESULTS)


def lost(fleet: Fleet) -> dict[str, str]:
    """The hosts whose agent is lost, each with its result message: the slot's lease
    lapsed without a result and the host has not been seen for ``lost_after``
    seconds (or never). They count as failed, so the rollout can end."""
    r = fleet.rollout
    if r.state not in ACTIVE:
        return {}
    out = {}
    for host in sorted(fleet.lapsed):
        age = fleet.unseen.get(host)
        if host in fleet.results or (age is not None and age < r.lost_after):
            continue
        seen = "never seen" if age is None else f"last seen {age:.0f} s ago"
        out[host] = (f"agent lost: {seen}, after its slot's lease lapsed "
                     f"(--lost-after {r.lost_after:g} s)")
    return out


def _finished(fleet: Fleet, host: str) -> bool:
    """``host`` has a result, or is not retried. A host whose lease lapsed without a
    result (its agent died mid-apply) is not finished: its agent, restarted, asks
    again and gets a slot with a new token."""
    return host in fleet.results or (host in fleet.failed_before and not fleet.rollout.retry_failed)


def next_state(fleet: Fleet) -> tuple[str, str] | None:
    """The rollout's next state and why, or None when it stays as it is. The server
    decides and applies it (``kvmnet_settle_rollout``, state/fleet_settle.py); this
    is its model, held equal by tests/real/test_fleet_settle.py.

    Failures above the limit, or a canary that is not Available, turn a running (or
    paused) rollout into ``aborting``: no new slots, in-flight hosts finish. An
    aborting rollout with no slot left in flight is ``stopped``; a running one whose
    every host has finished is ``done``."""
    r = fleet.rollout
    if r.state in ("running", "paused"):
        n = failures(fleet)
        if n > r.max_failures:
            return "aborting", f"{n} host(s) failed, more than --max-failures {r.max_failures}"
        bad = [h for h in canaries(r, fleet.hosts) if h in fleet.results and fleet.results[h] != "applied"]
        if bad:
            return "aborting", f"canary {bad[0]} did not become Available ({fleet.results[bad[0]]})"
    if r.state == "aborting" and not fleet.live_slots:
        return "stopped", "no host is applying any more"
    if r.state == "running" and not fleet.live_slots \
            and all(_finished(fleet, h) for h in selected(r, fleet.hosts)):
        return "done", "every host has a result"
    return None


def decide(fleet: Fleet, host: str) -> Decision:
    """Whether ``host`` may take a slot now."""
    r = fleet.rollout
    names = selected(r, fleet.hosts)
    if host not in names:
        return Decision("none", f"{host} is not selected by rollout #{r.id}")
    if host in fleet.results:
        return Decision("none", f"{host} already has a result in rollout #{r.id}: {fleet.results[host]}")
    if host in fleet.failed_before and not r.retry_failed:
        return Decision("skip", f"{host} failed or reverted commit {r.commit[:12]} before; "
                                "it is not retried unless the rollout is started with --retry-failed")
    if r.state != "running":
        return Decision("wait", f"rollout #{r.id} is {r.state}: no new slots")
    if host in fleet.live_slots:
        return Decision("grant", f"{host} already holds a slot")
    cans = canaries(r, fleet.hosts)
    if host not in cans:
        pending = [h for h in cans if fleet.results.get(h) != "applied"]
        if pending:
            return Decision("wait", f"waiting for the canaries to be Available: {', '.join(pending)}")
    cap = budget(r.max_unavailable, len(names))
    if len(fleet.live_slots) >= cap:
        return Decision("wait", f"all {cap} slot(s) are taken (--max-unavailable {r.max_unavailable})")
    return Decision("grant", f"slot {len(fleet.live_slots) + 1} of {cap}")


def decide_unchanged(fleet: Fleet, host: str) -> Decision:
    """Whether ``host``, whose refreshing plan is empty, is Available now without a
    slot (``unchanged``): it changes nothing, so neither the budget nor the canaries
    hold it back; pause, abort, an existing result and the skip of a host that failed
    this commit before still do. A host already ``applied`` in this rollout whose plan
    is empty is ``unchanged`` again (an agent that asks again after a lost connection
    learns its result), and nothing new is recorded."""
    if fleet.results.get(host) == "applied":
        return Decision("unchanged", f"no changes: commit {fleet.rollout.commit[:12]} is already in place")
    d = decide(fleet, host)
    if d.verdict == "grant" or (d.verdict == "wait" and fleet.rollout.state == "running"):
        return Decision("unchanged", f"no changes: commit {fleet.rollout.commit[:12]} is already in place")
    return d
