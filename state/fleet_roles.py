"""Each agent's own PostgreSQL role: it reads the fleet's rows but writes only its own
host's (row-level security on fleet_hosts, fleet_slots and fleet_results keyed by
``current_user``, which is the host's name), takes the rollout row lock it needs to
ask for a slot, and audits under its own name. The operator's role owns the tables
and is not bound by the policies."""
from __future__ import annotations

from psycopg import sql

AGENTS = "kvmnet_agents"

_OWN_ROWS = ("fleet_hosts", "fleet_slots", "fleet_results")

_POLICIES = """
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS kvmnet_read ON {t};
CREATE POLICY kvmnet_read ON {t} FOR SELECT TO kvmnet_agents USING (true);
DROP POLICY IF EXISTS kvmnet_own_insert ON {t};
CREATE POLICY kvmnet_own_insert ON {t} FOR INSERT TO kvmnet_agents WITH CHECK (host = current_user);
DROP POLICY IF EXISTS kvmnet_own_update ON {t};
CREATE POLICY kvmnet_own_update ON {t} FOR UPDATE TO kvmnet_agents
    USING (host = current_user) WITH CHECK (host = current_user);
DROP POLICY IF EXISTS kvmnet_own_delete ON {t};
CREATE POLICY kvmnet_own_delete ON {t} FOR DELETE TO kvmnet_agents USING (host = current_user);
"""


class RoleError(Exception):
    """A host name that cannot be an agent's role."""


def enable(conn) -> None:
    """The agents' group role, its grants and the row policies (idempotent)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('kvmnet fleet roles'))")
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (AGENTS,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(AGENTS)))
        g = sql.Identifier(AGENTS)
        for t in ("fleet_meta", "fleet_hosts", "fleet_rollouts", "fleet_slots", "fleet_results", "fleet_audit"):
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(t), g))
        for t in _OWN_ROWS:
            conn.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(sql.Identifier(t), g))
            conn.execute(sql.SQL(_POLICIES).format(t=sql.Identifier(t)))
        # asking for a slot locks the rollout row and may settle its state
        conn.execute(sql.SQL("GRANT UPDATE (state, message, ended_at) ON fleet_rollouts TO {}").format(g))
        conn.execute(sql.SQL("GRANT INSERT ON fleet_audit TO {}").format(g))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE fleet_slot_tokens, fleet_audit_id_seq TO {}").format(g))
        conn.execute("ALTER TABLE fleet_audit ENABLE ROW LEVEL SECURITY")
        conn.execute("DROP POLICY IF EXISTS kvmnet_read ON fleet_audit")
        conn.execute("CREATE POLICY kvmnet_read ON fleet_audit FOR SELECT TO kvmnet_agents USING (true)")
        conn.execute("DROP POLICY IF EXISTS kvmnet_own_insert ON fleet_audit")
        conn.execute("CREATE POLICY kvmnet_own_insert ON fleet_audit FOR INSERT TO kvmnet_agents "
                     "WITH CHECK (actor = current_user)")


def create_agent_role(conn, host: str, password: str | None = None) -> None:
    """A login role named after ``host``, member of the agents' group (created if
    missing; a role of that name that is not an agent's is refused)."""
    enable(conn)
    with conn.transaction():
        row = conn.execute(
            "SELECT r.rolsuper, pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = %s), 'MEMBER') "
            "FROM pg_roles r WHERE r.rolname = %s", (AGENTS, host)).fetchone()
        if row is not None and (row[0] or not row[1]):
            raise RoleError(f'a PostgreSQL role "{host}" exists and is not a kvmnet agent\'s; '
                            "rename the host or drop that role")
        role = sql.Identifier(host)
        if row is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(AGENTS), role))
        if password is not None:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
