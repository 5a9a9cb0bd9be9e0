"""The fleet view: what every host's agent last reported (``fleet_hosts``), which
hosts are stale, and the same as JSON and as Prometheus metrics.

Ages are computed by the PostgreSQL server (``now() - last_seen``), so an operator's
clock never makes a host look stale or fresh."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_INTERVAL = 60.0        # seconds between an agent's reports (agent install --interval)
DEFAULT_STALE_INTERVALS = 3    # a host silent for more intervals than this is stale

# a host the latest rollout recorded as lost (pacing.lost) and not seen since shows
# that failure: its own row still says what its agent last reported
STATUS_SQL = """
SELECT h.host, h.labels, h.agent_version, h.desired_commit, h.applied_commit,
       CASE WHEN l.message IS NULL THEN h.condition ELSE 'Failing' END, coalesce(l.message, h.message),
       h.plan_summary, h.drift,
       extract(epoch FROM now() - h.drift_checked)::float8,
       extract(epoch FROM now() - h.last_seen)::float8,
       h.drift_requested IS NOT NULL
  FROM fleet_hosts h
  LEFT JOIN fleet_results l ON l.host = h.host AND l.result = 'failed' AND l.message LIKE 'agent lost:%'
       AND l.rollout_id = (SELECT max(id) FROM fleet_rollouts)
       AND (h.last_seen IS NULL OR h.last_seen <= l.at)
 ORDER BY h.host
"""

ROLLOUT_SQL = """
SELECT r.id, r.commit, r.state,
       (SELECT count(*) FROM fleet_slots s WHERE s.rollout_id = r.id AND s.lease_expires > now()),
       (SELECT coalesce(jsonb_object_agg(result, n), '{}'::jsonb)
          FROM (SELECT result, count(*) AS n FROM fleet_results x WHERE x.rollout_id = r.id
                GROUP BY result) c)
  FROM fleet_rollouts r ORDER BY r.id DESC LIMIT 1
"""


@dataclass
class HostStatus:
    """One host as its agent last reported it; ages in seconds (None: never)."""

    host: str
    labels: list[str] = field(default_factory=list)
    agent_version: str | None = None
    desired_commit: str | None = None
    applied_commit: str | None = None
    condition: str = "Pending"
    message: str | None = None
    plan_summary: dict | None = None
    drift: dict | None = None
    drift_age: float | None = None
    seen_age: float | None = None
    drift_requested: bool = False
    stale: bool = False

    @property
    def drift_resources(self) -> int | None:
        """How many resources the last drift check found changed outside kvmnet."""
        if not isinstance(self.drift, dict):
            return None
        n = self.drift.get("resources")
        return n if isinstance(n, int) else None

    def to_json(self) -> dict:
        return {"host": self.host, "labels": self.labels, "agent_version": self.agent_version,
                "desired_commit": self.desired_commit, "applied_commit": self.applied_commit,
                "in_sync": self.in_sync, "condition": self.condition, "message": self.message,
                "plan_summary": self.plan_summary, "drift": self.drift,
                "drift_age_seconds": _round(self.drift_age), "last_seen_seconds": _round(self.seen_age),
                "drift_requested": self.drift_requested, "stale": self.stale}

    @property
    def in_sync(self) -> bool:
        return self.desired_commit is not None and self.desired_commit == self.applied_commit


@dataclass
class RolloutStatus:
    """The latest rollout: its state, the slots held now, the results so far."""

    id: int
    commit: str
    state: str
    slots_in_use: int
    results: dict[str, int]

    @property
    def active(self) -> bool:
        return self.state in ("running", "paused", "aborting")

    def to_json(self) -> dict:
        return {"id": self.id, "commit": self.commit, "state": self.state, "active": self.active,
                "slots_in_use": self.slots_in_use, "results": self.results}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def is_stale(seen_age: float | None, interval: float, intervals: int) -> bool:
    """Silent for more than ``intervals`` report intervals (or never seen)."""
    return seen_age is None or seen_age > interval * intervals


def read_hosts(conn, interval: float = DEFAULT_INTERVAL,
               intervals: int = DEFAULT_STALE_INTERVALS) -> list[HostStatus]:
    """Every host's status row (a psycopg 3 connection), stale ones flagged."""
    hosts = []
    for row in conn.execute(STATUS_SQL).fetchall():
        h = HostStatus(host=row[0], labels=list(row[1] or []), agent_version=row[2], desired_commit=row[3],
                       applied_commit=row[4], condition=row[5], message=row[6], plan_summary=row[7],
                       drift=row[8], drift_age=row[9], seen_age=row[10], drift_requested=row[11])
        h.stale = is_stale(h.seen_age, interval, intervals)
        hosts.append(h)
    return hosts


def read_rollout(conn) -> RolloutStatus | None:
    """The latest rollout, or None before the first one."""
    row = conn.execute(ROLLOUT_SQL).fetchone()
    if row is None:
        return None
    return RolloutStatus(id=row[0], commit=row[1], state=row[2], slots_in_use=row[3],
                         results={k: int(v) for k, v in (row[4] or {}).items()})


def age_text(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d`` ago; ``never``."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit} ago"
    return f"{s}s ago"


def drift_text(h: HostStatus) -> str:
    n = h.drift_resources
    if n is None:
        return "unchecked"
    return "none" if n == 0 else f"{n} resource{'s' if n != 1 else ''}"


def summary(hosts: list[HostStatus]) -> dict[str, int]:
    """Counts over the fleet: hosts, in sync, stale, drifted, per condition."""
    t = {"hosts": len(hosts), "in_sync": sum(h.in_sync for h in hosts),
         "stale": sum(h.stale for h in hosts), "drifted": sum(bool(h.drift_resources) for h in hosts)}
    for h in hosts:
        t[h.condition] = t.get(h.condition, 0) + 1
    return t


# Prometheus text exposition format (version 0.0.4)

def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    else:
        text = repr(round(value, 3)) if isinstance(value, float) else str(value)
    return f"{name}{{{inner}}} {text}" if inner else f"{name} {text}"


def metrics_text(hosts: list[HostStatus], rollout: RolloutStatus | None) -> str:
    """The fleet view as Prometheus metrics: per host up, applied/desired commit,
    condition, drift and last-seen age; the latest rollout's gauges."""
    from kvmnet.state.fleet_schema import CONDITIONS, RESULTS
    out: list[str] = []

    def family(name: str, help_: str, samples: list[str]) -> None:
        out.extend([f"# HELP {name} {help_}", f"# TYPE {name} gauge", *samples])

    family("kvmnet_fleet_host_up", "1 if the host's agent reported within the stale limit, else 0",
           [_sample("kvmnet_fleet_host_up", {"host": h.host}, 0 if h.stale else 1) for h in hosts])
    family("kvmnet_fleet_host_applied", "The commit the host has applied (value 1)",
           [_sample("kvmnet_fleet_host_applied", {"host": h.host, "commit": h.applied_commit}, 1)
            for h in hosts if h.applied_commit])
    family("kvmnet_fleet_host_desired", "The commit the host should have (value 1)",
           [_sample("kvmnet_fleet_host_desired", {"host": h.host, "commit": h.desired_commit}, 1)
            for h in hosts if h.desired_commit])
    family("kvmnet_fleet_host_in_sync", "1 if the applied commit is the desired one",
           [_sample("kvmnet_fleet_host_in_sync", {"host": h.host}, int(h.in_sync)) for h in hosts])
    family("kvmnet_fleet_host_condition", "1 for the host's current condition, 0 for the others",
           [_sample("kvmnet_fleet_host_condition", {"host": h.host, "condition": c}, int(h.condition == c))
            for h in hosts for c in CONDITIONS])
    family("kvmnet_fleet_host_drift_resources", "Resources the host's last drift check found changed outside kvmnet",
           [_sample("kvmnet_fleet_host_drift_resources", {"host": h.host}, h.drift_resources)
            for h in hosts if h.drift_resources is not None])
    family("kvmnet_fleet_host_drift_checked_seconds", "Seconds since the host's last drift check",
           [_sample("kvmnet_fleet_host_drift_checked_seconds", {"host": h.host}, float(h.drift_age))
            for h in hosts if h.drift_age is not None])
    family("kvmnet_fleet_host_last_seen_seconds", "Seconds since the host's agent last reported",
           [_sample("kvmnet_fleet_host_last_seen_seconds", {"host": h.host}, float(h.seen_age))
            for h in hosts if h.seen_age is not None])
    family("kvmnet_fleet_hosts_stale", "Hosts whose agent is silent beyond the stale limit",
           [_sample("kvmnet_fleet_hosts_stale", {}, sum(h.stale for h in hosts))])
    family("kvmnet_fleet_rollout_active", "1 while a rollout is running, paused or aborting",
           [_sample("kvmnet_fleet_rollout_active", {}, int(bool(rollout and rollout.active)))])
    if rollout is not None:
        family("kvmnet_fleet_rollout_info", "The latest rollout (value 1)",
               [_sample("kvmnet_fleet_rollout_info",
                        {"id": str(rollout.id), "commit": rollout.commit, "state": rollout.state}, 1)])
        family("kvmnet_fleet_rollout_slots_in_use", "Slots of the latest rollout whose lease has not expired",
               [_sample("kvmnet_fleet_rollout_slots_in_use", {}, rollout.slots_in_use)])
        family("kvmnet_fleet_rollout_results", "Hosts of the latest rollout per result",
               [_sample("kvmnet_fleet_rollout_results", {"result": r}, rollout.results.get(r, 0))
                for r in RESULTS])
    return "\n".join(out) + "\n"
