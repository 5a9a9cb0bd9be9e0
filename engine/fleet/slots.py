"""Rollout slots in PostgreSQL: granted in a transaction that holds the rollout row
(``SELECT … FOR UPDATE``), so two agents asking at once are served one after the
other against the same counts; leased (a slot whose lease ran out no longer counts:
a host that died mid-apply frees its slot, nothing leaks); fenced (every write of a
slot holder names its token, and a holder whose slot was granted again, to a later
run of the same host, is refused).

Times are the server's (``now()``): no agent's clock matters. The decisions
themselves are :mod:`kvmnet.engine.fleet.pacing`'s, except the rollout's state
transitions, which the server applies (:mod:`kvmnet.state.fleet_settle`)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from psycopg.types.json import Jsonb

from kvmnet.engine.fleet.pacing import (ACTIVE, FAILED_RESULTS, Decision, Fleet, Rollout, decide,
                                        decide_unchanged, lost)

DEFAULT_LEASE = 30.0


@dataclass(frozen=True)
class Slot:
    rollout_id: int
    host: str
    token: int
    commit: str
    lease_seconds: float


def audit(conn, actor: str, action: str, **detail) -> None:
    conn.execute("INSERT INTO fleet_audit (actor, action, detail) VALUES (%s, %s, %s)",
                 (actor, action, Jsonb(detail)))


_ROLLOUT_COLUMNS = ("id, commit, state, max_unavailable, canary, max_failures, retry_failed, "
                    "selector, started_by, lost_after")


def _rollout(row) -> Rollout:
    return Rollout(*row)


def active_rollout(conn, *, lock: bool = False) -> Rollout | None:
    """The running, paused or aborting rollout, if any (``lock``: its row, FOR UPDATE,
    inside the caller's transaction)."""
    if lock:     # through the owner's function: an agent may not lock the row itself
        row = conn.execute(f"SELECT {_ROLLOUT_COLUMNS} FROM kvmnet_lock_rollout(NULL)").fetchone()
    else:
        row = conn.execute(f"SELECT {_ROLLOUT_COLUMNS} FROM fleet_rollouts WHERE state = ANY(%s)",
                           (list(ACTIVE),)).fetchone()
    return _rollout(row) if row else None


def host_labels(conn) -> dict[str, tuple[str, ...]]:
    return {h: tuple(labels or ()) for h, labels in conn.execute("SELECT host, labels FROM fleet_hosts")}


def read_fleet(conn, rollout: Rollout) -> Fleet:
    """The rows :func:`pacing.decide` needs, read in the caller's transaction."""
    hosts = host_labels(conn)
    live: set[str] = set()
    lapsed: set[str] = set()
    unseen: dict[str, float | None] = {}
    for host, is_live, age in conn.execute(
            "SELECT s.host, s.lease_expires > now(), "
            "extract(epoch FROM now() - greatest(h.last_seen, s.granted_at))::float8 "
            "FROM fleet_slots s JOIN fleet_hosts h ON h.host = s.host WHERE s.rollout_id = %s "
            "AND NOT EXISTS (SELECT 1 FROM fleet_results r WHERE r.rollout_id = s.rollout_id "
            "AND r.host = s.host)", (rollout.id,)):
        (live if is_live else lapsed).add(host)
        if not is_live:
            unseen[host] = age
    results = dict(conn.execute("SELECT host, result FROM fleet_results WHERE rollout_id = %s",
                                (rollout.id,)).fetchall())
    before = {h for (h,) in conn.execute(
        "SELECT DISTINCT r.host FROM fleet_results r JOIN fleet_rollouts o ON o.id = r.rollout_id "
        "WHERE o.commit = %s AND o.id <> %s AND r.result = ANY(%s)",
        (rollout.commit, rollout.id, list(FAILED_RESULTS)))}
    return Fleet(rollout, hosts, frozenset(live), results, frozenset(before), frozenset(lapsed), unseen)


def record_lost(conn, actor: str, fleet: Fleet) -> Fleet:
    """Record each lost host (pacing.lost) as ``failed``, audited; the fleet with
    those results. The row policy lets an agent write this for another host only
    while that host's lease has lapsed and it is unseen for ``lost_after``."""
    gone = lost(fleet)
    r = fleet.rollout
    for host, message in gone.items():
        conn.execute("INSERT INTO fleet_results (rollout_id, host, result, message) "
                     "VALUES (%s, %s, 'failed', %s) ON CONFLICT DO NOTHING", (r.id, host, message))
        audit(conn, actor, "host lost", rollout=r.id, commit=r.commit, host=host, result="failed",
              message=message)
    if not gone:
        return fleet
    return replace(fleet, results={**fleet.results, **{h: "failed" for h in gone}},
                   lapsed=fleet.lapsed - set(gone))


def settle_state(conn, actor: str, fleet: Fleet) -> Rollout:
    """Move the (locked) rollout to the state its rows call for, audited: lost hosts
    recorded as failed first, then step by step (running → aborting → stopped when
    nothing is in flight)."""
    return settle_fleet(conn, actor, fleet).rollout


def settle_fleet(conn, actor: str, fleet: Fleet) -> Fleet:
    """:func:`settle_state`, returning the fleet as it is now (rollout and results).
    The transitions are the server's (``kvmnet_settle_rollout``, the only writer of
    a rollout's state besides the operator's pause, resume and abort; its model is
    :func:`pacing.next_state`), computed from the rows this transaction sees."""
    fleet = record_lost(conn, actor, fleet)
    r = fleet.rollout
    state = conn.execute("SELECT kvmnet_settle_rollout(%s, %s)", (r.id, actor)).fetchone()[0]
    return fleet if state == r.state else replace(fleet, rollout=replace(r, state=state))


def settle(conn, actor: str) -> Rollout | None:
    """Lock the active rollout and move it to the state its rows call for (an
    aborting rollout whose last in-flight host died is stopped once its lease lapses)."""
    with conn.transaction():
        rollout = active_rollout(conn, lock=True)
        return settle_state(conn, actor, read_fleet(conn, rollout)) if rollout else None


def lost_pending(conn) -> bool:
    """Whether the active rollout has a host to record as lost (no lock: a cheap
    look an agent takes each pass before it settles)."""
    return conn.execute(
        "SELECT 1 FROM fleet_rollouts o JOIN fleet_slots s ON s.rollout_id = o.id "
        "JOIN fleet_hosts h ON h.host = s.host WHERE o.state = ANY(%s) AND s.lease_expires <= now() "
        "AND greatest(h.last_seen, s.granted_at) <= now() - make_interval(secs => o.lost_after) "
        "AND NOT EXISTS (SELECT 1 FROM fleet_results r WHERE r.rollout_id = o.id AND r.host = s.host) "
        "LIMIT 1", (list(ACTIVE),)).fetchone() is not None


def request_slot(conn, host: str, lease_seconds: float = DEFAULT_LEASE, *,
                 unchanged: bool = False) -> tuple[Slot | None, Decision]:
    """Ask for a slot in the active rollout for ``host`` (one transaction holding the
    rollout row). A slot whose lease ran out is granted again with a new token.

    ``unchanged``: the host's refreshing plan is empty. Where it could take a slot
    or waits only for one (pacing.decide_unchanged), its result ``applied`` is
    recorded here instead and no slot is taken: the verdict is ``unchanged``."""
    with conn.transaction():
        rollout = active_rollout(conn, lock=True)
        if rollout is None:
            return None, Decision("none", "no rollout is running")
        fleet = settle_fleet(conn, host, read_fleet(conn, rollout))
        rollout = fleet.rollout
        d = decide_unchanged(fleet, host) if unchanged else decide(fleet, host)
        if d.verdict == "unchanged":
            if host in fleet.results:           # recorded already: asked again after a lost connection
                return None, d
            conn.execute("INSERT INTO fleet_results (rollout_id, host, result, message) "
                         "VALUES (%s, %s, 'applied', %s)", (rollout.id, host, d.why))
            conn.execute("DELETE FROM fleet_slots WHERE rollout_id = %s AND host = %s", (rollout.id, host))
            audit(conn, host, "host result", rollout=rollout.id, commit=rollout.commit, result="applied",
                  message=d.why, unchanged=True)
            settle_state(conn, host, replace(fleet, results={**fleet.results, host: "applied"},
                                             live_slots=fleet.live_slots - {host},
                                             lapsed=fleet.lapsed - {host}))
            return None, d
        if d.verdict != "grant":
            return None, d
        row = conn.execute(
            "INSERT INTO fleet_slots (rollout_id, host, token, lease_expires) "
            "VALUES (%(r)s, %(h)s, nextval('fleet_slot_tokens'), now() + make_interval(secs => %(s)s)) "
            "ON CONFLICT (rollout_id, host) DO UPDATE SET token = nextval('fleet_slot_tokens'), "
            "granted_at = now(), lease_expires = EXCLUDED.lease_expires "
            "WHERE fleet_slots.lease_expires <= now() RETURNING token",
            {"r": rollout.id, "h": host, "s": lease_seconds}).fetchone()
        if row is None:     # it holds a live slot already: the same one
            row = conn.execute("SELECT token FROM fleet_slots WHERE rollout_id = %s AND host = %s",
                               (rollout.id, host)).fetchone()
        else:
            audit(conn, host, "slot granted", rollout=rollout.id, commit=rollout.commit, token=row[0],
                  why=d.why)
        return Slot(rollout.id, host, row[0], rollout.commit, lease_seconds), d


def renew(conn, slot: Slot) -> bool:
    """Extend the lease of a slot still held (same token, lease not yet run out)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE fleet_slots SET lease_expires = now() + make_interval(secs => %s) "
            "WHERE rollout_id = %s AND host = %s AND token = %s AND lease_expires > now() RETURNING 1",
            (slot.lease_seconds, slot.rollout_id, slot.host, slot.token)).fetchone()
    return row is not None


def report(conn, rollout_id: int, host: str, result: str, message: str, *, token: int | None = None) -> bool:
    """Record ``host``'s result in the rollout and free its slot (once: a second report
    changes nothing). With ``token``, only while that token still names the host's
    slot (fencing: a later grant to the same host supersedes it). False when refused."""
    with conn.transaction():
        row = conn.execute(f"SELECT {_ROLLOUT_COLUMNS} FROM kvmnet_lock_rollout(%s)", (rollout_id,)).fetchone()
        if row is None:
            return False
        if token is not None and conn.execute(
                "SELECT 1 FROM fleet_slots WHERE rollout_id = %s AND host = %s AND token = %s",
                (rollout_id, host, token)).fetchone() is None:
            return False
        done = conn.execute("INSERT INTO fleet_results (rollout_id, host, result, message) "
                            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                            (rollout_id, host, result, message)).fetchone()
        if done is None:
            return True
        conn.execute("DELETE FROM fleet_slots WHERE rollout_id = %s AND host = %s", (rollout_id, host))
        rollout = _rollout(row)
        audit(conn, host, "host result", rollout=rollout_id, commit=rollout.commit, result=result,
              message=message)
        if rollout.state in ACTIVE:
            settle_state(conn, host, read_fleet(conn, rollout))
    return True
