"""The operator's side of a rollout: start one (refused while another is active, the
refusal naming who started it), pause, resume, abort (no new slots; in-flight hosts
finish), and forget a retired host. Every change is a row in ``fleet_audit``."""
from __future__ import annotations

import re
from dataclasses import replace

import psycopg

from kvmnet.engine.fleet.pacing import DEFAULT_LOST_AFTER, Rollout, parse_budget, parse_selector, selected
from kvmnet.engine.fleet.slots import active_rollout, audit, host_labels, read_fleet, settle_state
from kvmnet.state.fleet_roles import RoleError, drop_agent_role


class FleetError(Exception):
    """A refusal; its text is the one ``Error:`` line."""


COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def check_commit(commit: str) -> str:
    """A rollout names its commit by the full id only: an abbreviation and the full
    id of one commit must never count as two commits (``--retry-failed``)."""
    if not COMMIT.fullmatch(commit or ""):
        raise FleetError(f'--commit "{commit}" is not a full commit id: give all its 40 (or 64) hex digits '
                         f"(git rev-parse {commit or 'COMMIT'})")
    return commit


def _who_runs(conn) -> str:
    row = conn.execute("SELECT id, commit, started_by, started_at, state FROM fleet_rollouts "
                       "WHERE state IN ('running', 'paused', 'aborting')").fetchone()
    if row is None:
        return "another rollout"
    rid, commit, by, at, state = row
    return f"rollout #{rid} of {commit[:12]} ({state}), started by {by} at {at:%Y-%m-%d %H:%M:%S %Z}"


def start(conn, *, commit: str, actor: str, max_unavailable: str, canary: int, max_failures: int,
          selector: str | None = None, retry_failed: bool = False,
          lost_after: float = DEFAULT_LOST_AFTER) -> int:
    """Create the rollout; its id. Refused while another one is active, or when it
    selects none of the hosts known to the fleet."""
    check_commit(commit)
    try:
        parse_budget(max_unavailable)
    except ValueError as e:
        raise FleetError(str(e)) from None
    if canary < 0:
        raise FleetError("--canary must be 0 or more")
    if max_failures < 0:
        raise FleetError("--max-failures must be 0 or more")
    if not lost_after > 0:
        raise FleetError(f"--lost-after must be more than 0 seconds, not {lost_after:g}")
    if selector is not None and not parse_selector(selector):
        raise FleetError(f'--hosts "{selector}" selects nothing; give one or more globs')
    try:
        with conn.transaction():
            rid = conn.execute(
                "INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, max_failures, "
                "retry_failed, selector, lost_after, state) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'running') RETURNING id",
                (commit, actor, max_unavailable, canary, max_failures, retry_failed, selector,
                 lost_after)).fetchone()[0]
            known = host_labels(conn)
            names = selected(Rollout(rid, commit, "running", max_unavailable, canary, max_failures,
                                     retry_failed, selector), known)
            if not names:       # a typo in --hosts would start a rollout of nothing
                raise FleetError(f'--hosts "{selector}" matches none of the {len(known)} hosts known to the '
                                 "fleet; nothing was started" if known else
                                 "no host has reported to the fleet yet (start the agents first); "
                                 "nothing was started")
            conn.execute("UPDATE fleet_hosts SET desired_commit = %s WHERE host = ANY(%s)", (commit, names))
            audit(conn, actor, "rollout started", rollout=rid, commit=commit, max_unavailable=max_unavailable,
                  canary=canary, max_failures=max_failures, selector=selector, retry_failed=retry_failed,
                  lost_after=lost_after)
    except psycopg.errors.UniqueViolation:
        raise FleetError(f"a rollout is already active: {_who_runs(conn)}; "
                         "wait for it, or pause or abort it first") from None
    return rid


_MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": (("running",), "paused"), "resume": (("paused",), "running"),
    "abort": (("running", "paused"), "aborting")}


def change(conn, action: str, actor: str) -> Rollout:
    """pause, resume or abort the active rollout (audited); the rollout as it is now."""
    allowed, to = _MOVES[action]
    with conn.transaction():
        r = active_rollout(conn, lock=True)
        if r is None:
            raise FleetError(f"no rollout is active: nothing to {action}")
        if r.state not in allowed:
            raise FleetError(f"rollout #{r.id} is {r.state}: it cannot {action}")
        conn.execute("UPDATE fleet_rollouts SET state = %s, message = %s WHERE id = %s",
                     (to, f"{action} by {actor}", r.id))
        audit(conn, actor, f"rollout {action}", rollout=r.id, commit=r.commit)
        r = replace(r, state=to)
        return settle_state(conn, actor, read_fleet(conn, r))


def forget(conn, host: str, actor: str) -> str:
    """Remove a retired host's row (its slots go with it; its results and the audit
    stay) and drop its agent's PostgreSQL role, in one transaction; what became of
    the role. Refused, changing nothing, while it holds a live slot or when its role
    cannot be dropped (it owns objects or holds privileges of its own)."""
    with conn.transaction():
        if conn.execute("SELECT 1 FROM fleet_hosts WHERE host = %s FOR UPDATE", (host,)).fetchone() is None:
            raise FleetError(f'no host "{host}" in the fleet')
        live = conn.execute("SELECT rollout_id, lease_expires FROM fleet_slots WHERE host = %s "
                            "AND lease_expires > now()", (host,)).fetchone()
        if live:
            raise FleetError(f"{host} holds a slot in rollout #{live[0]} (lease until "
                             f"{live[1]:%H:%M:%S %Z}); abort the rollout or wait for the host to finish")
        conn.execute("DELETE FROM fleet_hosts WHERE host = %s", (host,))
        try:
            role = drop_agent_role(conn, host)
        except RoleError as e:
            raise FleetError(str(e)) from None
        audit(conn, actor, "host forgotten", host=host, role=role)
    return role
