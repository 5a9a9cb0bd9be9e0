"""The fleet's tables in PostgreSQL: hosts and the status their agents report,
rollouts, the slots a rollout grants (expiring leases with fencing tokens, granted in
a row-locked transaction), each host's result per rollout, and the audit trail.

One DDL shared by the agent, the rollout and the fleet view, plus the functions that
settle a rollout's state (:mod:`kvmnet.state.fleet_settle`); :func:`ensure` creates
what is missing (idempotent, in one transaction)."""
from __future__ import annotations

from kvmnet.state import fleet_settle

CONDITIONS = ("Pending", "Progressing", "Available", "Failing", "Reverted")
ROLLOUT_STATES = ("running", "paused", "aborting", "stopped", "done")
RESULTS = ("applied", "failed", "reverted", "skipped")

SCHEMA_VERSION = 5    # 2: drift_requested; 3: rollout message; 4: lost_after; 5: settle functions

DDL = f"""
CREATE TABLE IF NOT EXISTS fleet_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_hosts (
    host            text PRIMARY KEY,
    labels          text[] NOT NULL DEFAULT '{{}}',
    agent_version   text,
    desired_commit  text,
    applied_commit  text,
    condition       text NOT NULL DEFAULT 'Pending'
                    CHECK (condition IN ({", ".join(f"'{c}'" for c in CONDITIONS)})),
    message         text,
    plan_summary    jsonb,
    drift           jsonb,
    drift_checked   timestamptz,
    last_seen       timestamptz
);
CREATE TABLE IF NOT EXISTS fleet_rollouts (
    id               bigserial PRIMARY KEY,
    commit           text NOT NULL,
    started_by       text NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    max_unavailable  text NOT NULL,
    canary           integer NOT NULL,
    max_failures     integer NOT NULL,
    retry_failed     boolean NOT NULL DEFAULT false,
    selector         text,
    state            text NOT NULL
                     CHECK (state IN ({", ".join(f"'{s}'" for s in ROLLOUT_STATES)})),
    ended_at         timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS fleet_one_active_rollout
    ON fleet_rollouts ((true)) WHERE state IN ('running', 'paused', 'aborting');
CREATE TABLE IF NOT EXISTS fleet_slots (
    rollout_id     bigint NOT NULL REFERENCES fleet_rollouts(id),
    host           text NOT NULL REFERENCES fleet_hosts(host) ON DELETE CASCADE,
    token          bigint NOT NULL,
    granted_at     timestamptz NOT NULL DEFAULT now(),
    lease_expires  timestamptz NOT NULL,
    PRIMARY KEY (rollout_id, host)
);
CREATE SEQUENCE IF NOT EXISTS fleet_slot_tokens;
CREATE TABLE IF NOT EXISTS fleet_results (
    rollout_id  bigint NOT NULL REFERENCES fleet_rollouts(id),
    host        text NOT NULL,
    result      text NOT NULL CHECK (result IN ({", ".join(f"'{r}'" for r in RESULTS)})),
    message     text,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, host)
);
CREATE TABLE IF NOT EXISTS fleet_audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{{}}'
);
-- fleet drift: the operator asks, the host's agent answers and clears it
ALTER TABLE fleet_hosts ADD COLUMN IF NOT EXISTS drift_requested timestamptz;
ALTER TABLE fleet_rollouts ADD COLUMN IF NOT EXISTS message text;
-- a host whose lease lapsed and that is unseen this long counts as failed
ALTER TABLE fleet_rollouts ADD COLUMN IF NOT EXISTS lost_after float8 NOT NULL DEFAULT 120;
INSERT INTO fleet_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
    ON CONFLICT (key) DO NOTHING;
"""


def installed_version(conn) -> int | None:
    """The fleet schema version the database holds (None: no fleet tables yet)."""
    if conn.execute("SELECT to_regclass('fleet_meta')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT value FROM fleet_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def ensure(conn) -> None:
    """Create or upgrade the fleet's tables where the database holds an older
    version (a psycopg 3 connection; one transaction, serialised by an advisory
    transaction lock so two first runs do not race). A current database is only
    read: the DDL's ALTER TABLEs take ACCESS EXCLUSIVE locks, and running them on
    every command deadlocked with agents holding row locks mid-rollout."""
    with conn.transaction():
        if (installed_version(conn) or 0) >= SCHEMA_VERSION:
            return
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('kvmnet fleet schema'))")
        if (installed_version(conn) or 0) >= SCHEMA_VERSION:
            return
        conn.execute(DDL)
        fleet_settle.install(conn)
        conn.execute("UPDATE fleet_meta SET value = %s WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION),))
