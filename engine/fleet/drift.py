"""``fleet drift``: the operator asks every selected host's agent for a drift check
(``fleet_hosts.drift_requested``), each agent runs it on its own host
(:func:`run_drift_check`) and reports the result (:func:`report_drift`); the operator
shows results as they arrive (:func:`arrived`).

The check is a refresh-only plan against the live system: what changed outside
kvmnet since the last apply. Its report, stored in ``fleet_hosts.drift``::

    {"resources": 2, "addresses": ["bridge.br0", "sysctl_profile.forwarding"]}
"""
from __future__ import annotations

from collections.abc import Iterable

ADDRESSES_KEPT = 100     # a report names at most this many drifted addresses


def run_drift_check(prepared, snapshot, providers, timings=None) -> dict:
    """The drift of one host: a refresh-only plan of ``prepared`` (the host's config)
    against ``snapshot`` (its state) read live through ``providers`` (a started
    :class:`~kvmnet.engine.registry.ProviderSet`). Returns the report the agent
    stores; a plan error raises :class:`~kvmnet.engine.diagnostics.DiagnosticError`
    (the agent reports it as its message)."""
    from kvmnet.engine.diagnostics import DiagnosticError, Diagnostics
    from kvmnet.engine.plan.planner import PlanOptions, make_plan
    from kvmnet.engine.timings import NULL
    plan = make_plan(prepared, snapshot, providers, PlanOptions(refresh=True, refresh_only=True),
                     timings=timings or NULL)
    if plan.errors:
        diags = Diagnostics()
        for e in plan.errors:
            diags.add(str(e))
        raise DiagnosticError(diags)
    addresses = sorted(c.address for c in plan.resource_drift)
    return {"resources": len(addresses), "addresses": addresses[:ADDRESSES_KEPT]}


def request(conn, hosts: Iterable[str]):
    """Ask the agents of ``hosts`` for a drift check; returns the server time of the
    request (results checked at or after it answer it) and the hosts asked."""
    with conn.transaction():
        rows = conn.execute("UPDATE fleet_hosts SET drift_requested = now() WHERE host = ANY(%s) "
                            "RETURNING host, now()", (list(hosts),)).fetchall()
    at = rows[0][1] if rows else conn.execute("SELECT now()").fetchone()[0]
    return at, sorted(r[0] for r in rows)


def pending_request(conn, host: str):
    """Agent side: the time of the drift check asked of ``host``, or None."""
    row = conn.execute("SELECT drift_requested FROM fleet_hosts WHERE host = %s", (host,)).fetchone()
    return row[0] if row else None


def report_drift(conn, host: str, drift: dict, requested=None) -> None:
    """Agent side: store ``host``'s drift report, checked now; the request it answers
    (``requested``, from :func:`pending_request`) is cleared, a newer one is kept."""
    from psycopg.types.json import Jsonb
    with conn.transaction():
        conn.execute("UPDATE fleet_hosts SET drift = %s, drift_checked = now(), "
                     "drift_requested = CASE WHEN drift_requested <= %s THEN NULL ELSE drift_requested END "
                     "WHERE host = %s", (Jsonb(drift), requested, host))


def arrived(conn, hosts: Iterable[str], since) -> dict[str, dict]:
    """The drift reports of ``hosts`` checked at or after ``since``: host -> report."""
    rows = conn.execute("SELECT host, drift FROM fleet_hosts WHERE host = ANY(%s) AND drift_checked >= %s",
                        (list(hosts), since)).fetchall()
    return {h: d for h, d in rows}
