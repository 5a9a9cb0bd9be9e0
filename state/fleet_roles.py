"""Each agent's own PostgreSQL role: it reads the fleet's rows but writes only its own
host's (row-level security on fleet_hosts, fleet_slots and fleet_results keyed by
``current_user``, which is the host's name), and audits under its own name. It may
not write the rollout's row: it locks it and settles its state only through the
table owner's ``SECURITY DEFINER`` functions (:mod:`kvmnet.state.fleet_settle`),
which apply only what the rows justify. In the PostgreSQL state (schema
``kvmnet``, one workspace per host, named after the host directory) it reads and
writes only its own workspace's rows. The operator's role owns the tables and is
not bound by the policies; the policies bind the agents only, so any other role (a
read-only monitoring role, a second operator's) keeps what its privileges give."""
from __future__ import annotations

import psycopg
from psycopg import sql

from kvmnet.state.fleet_settle import grant_agents

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


# the policies restrict the agents only: every other role keeps what its grants give
_OTHERS = """
DROP POLICY IF EXISTS kvmnet_not_agents ON {t};
CREATE POLICY kvmnet_not_agents ON {t} FOR ALL TO PUBLIC
    USING (NOT pg_has_role(current_user, 'kvmnet_agents', 'MEMBER'))
    WITH CHECK (NOT pg_has_role(current_user, 'kvmnet_agents', 'MEMBER'));
"""

# the state's tables keyed by workspace (state/pg_schema.py): an agent's own only
_STATE_OWN = ("workspaces", "instances", "history", "intents", "outputs", "backup_meta",
              "backup_instances", "locks")

_STATE_POLICY = """
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS kvmnet_own_workspace ON {t};
CREATE POLICY kvmnet_own_workspace ON {t} FOR ALL TO kvmnet_agents
    USING (workspace = current_user) WITH CHECK (workspace = current_user);
"""

_LOST_POLICY = """
CREATE POLICY kvmnet_lost_insert ON fleet_results FOR INSERT TO kvmnet_agents WITH CHECK (
    result = 'failed' AND message LIKE 'agent lost:%' AND EXISTS (
        SELECT 1 FROM fleet_slots s JOIN fleet_hosts h ON h.host = s.host
                 JOIN fleet_rollouts o ON o.id = s.rollout_id
         WHERE s.rollout_id = fleet_results.rollout_id AND s.host = fleet_results.host
           AND s.lease_expires <= now()
           AND greatest(h.last_seen, s.granted_at) <= now() - make_interval(secs => o.lost_after)))
"""


class RoleError(Exception):
    """A host name that cannot be an agent's role."""


def enable(conn, state_schema: str = "kvmnet") -> None:
    """The agents' group role, its grants and the row policies (idempotent), on the
    fleet's tables and on the PostgreSQL state's (in ``state_schema``, created here
    when missing, so an agent never needs the right to create tables)."""
    from kvmnet.state.pg_schema import schema_name_problem
    if schema_name_problem(state_schema):
        raise RoleError(schema_name_problem(state_schema))
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
        # asking for a slot locks the rollout row and may settle its state: through
        # the owner's functions (state/fleet_settle.py), never by writing the row
        grant_agents(conn, AGENTS)
        conn.execute(sql.SQL("GRANT INSERT ON fleet_audit TO {}").format(g))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE fleet_slot_tokens, fleet_audit_id_seq TO {}").format(g))
        # any agent may record a lost host's failure (its lease lapsed, it is unseen
        # for the rollout's lost_after), so a dead agent cannot hold a rollout open
        conn.execute("DROP POLICY IF EXISTS kvmnet_lost_insert ON fleet_results")
        conn.execute(_LOST_POLICY)
        for t in (*_OWN_ROWS, "fleet_audit"):
            conn.execute(sql.SQL(_OTHERS).format(t=sql.Identifier(t)))
        _enable_state(conn, state_schema, g)
        conn.execute("ALTER TABLE fleet_audit ENABLE ROW LEVEL SECURITY")
        conn.execute("DROP POLICY IF EXISTS kvmnet_read ON fleet_audit")
        conn.execute("CREATE POLICY kvmnet_read ON fleet_audit FOR SELECT TO kvmnet_agents USING (true)")
        conn.execute("DROP POLICY IF EXISTS kvmnet_own_insert ON fleet_audit")
        conn.execute("CREATE POLICY kvmnet_own_insert ON fleet_audit FOR INSERT TO kvmnet_agents "
                     "WITH CHECK (actor = current_user)")


def _enable_state(conn, schema: str, g: sql.Identifier) -> None:
    """The state's tables in ``schema`` (made if missing, identified first: a foreign
    or newer schema is refused), each agent reading and writing its own workspace."""
    from kvmnet.state.pg_schema import TABLES, ddl, identity_problem
    s = sql.Identifier(schema)
    tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = %s", (schema,))}
    identity = []
    if "kvmnet_schema" in tables:
        identity = [(a, int(v)) for a, v in conn.execute(
            sql.SQL("SELECT app, format_version FROM {}.kvmnet_schema").format(s))]
    problem = identity_problem(tables, identity, schema)
    if problem:
        raise RoleError(f"the PostgreSQL state: {problem}")
    if not set(TABLES) <= tables:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('kvmnet state schema'))")
        conn.execute(ddl(schema))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, g))
    conn.execute(sql.SQL("GRANT SELECT ON {}.kvmnet_schema TO {}").format(s, g))
    conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {}.lock_tokens TO {}").format(s, g))
    for t in _STATE_OWN:
        table = sql.SQL("{}.{}").format(s, sql.Identifier(t))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(table, g))
        conn.execute(sql.SQL(_STATE_POLICY).format(t=table))
        conn.execute(sql.SQL(_OTHERS).format(t=table))


def create_agent_role(conn, host: str, password: str | None = None, state_schema: str = "kvmnet") -> None:
    """A login role named after ``host``, member of the agents' group (created if
    missing; a role of that name that is not an agent's is refused)."""
    enable(conn, state_schema)
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


def drop_agent_role(conn, host: str) -> str:
    """Drop the agent's login role of ``host`` (inside the caller's transaction);
    what was done, for the audit and the operator. A role of that name that is not
    an agent's is left alone. RoleError when it cannot be dropped: it owns objects
    or holds privileges granted to it directly, or the operator may not drop roles."""
    row = conn.execute(
        "SELECT r.rolsuper, pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = %s), 'MEMBER') "
        "FROM pg_roles r WHERE r.rolname = %s", (AGENTS, host)).fetchone()
    if row is None:
        return "no role"
    if row[0] or not row[1]:
        return "role left alone: not a kvmnet agent's"
    try:
        with conn.transaction():
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(host)))
    except psycopg.errors.DependentObjectsStillExist as e:
        detail = "; ".join(str(e.diag.message_detail or e).split("\n"))
        raise RoleError(f'the PostgreSQL role "{host}" cannot be dropped: {detail}; reassign or drop '
                        f'what it owns (REASSIGN OWNED BY / DROP OWNED BY, in each database), '
                        f'then forget the host again') from None
    except psycopg.errors.InsufficientPrivilege as e:
        raise RoleError(f'the PostgreSQL role "{host}" cannot be dropped: {e.diag.message_primary}; '
                        "forget the host as a role with CREATEROLE") from None
    return "role dropped"
