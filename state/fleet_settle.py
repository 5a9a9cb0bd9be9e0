"""The rollout's state transitions, decided and applied by PostgreSQL itself.

An agent may not write ``fleet_rollouts`` (state/fleet_roles.py grants it no UPDATE),
yet asking for a slot must lock the rollout row and may have to settle its state.
Both go through ``SECURITY DEFINER`` functions owned by the table owner, with their
``search_path`` pinned: ``kvmnet_lock_rollout`` locks a rollout row (FOR UPDATE) and
returns it; ``kvmnet_settle_rollout`` recomputes from the rows (results, live slots,
host labels, the rollout's selection, canaries and failure limit) what
:func:`kvmnet.engine.fleet.pacing.next_state` decides, applies it step by step and
audits each step. The function is the one implementation that writes; ``next_state``
is its model in Python, held equal by a property test (tests/real/test_fleet_settle.py).

``kvmnet_glob_regex`` is :func:`fnmatch.fnmatchcase`'s translation of a ``--hosts``
glob (CPython's ``fnmatch._translate``) into a PostgreSQL regular expression; NULL
for a glob that matches nothing."""
from __future__ import annotations

FUNCTIONS = ("kvmnet_lock_rollout(bigint)", "kvmnet_settle_rollout(bigint, text)")

_GLOB = r"""
CREATE OR REPLACE FUNCTION {schema}.kvmnet_glob_regex(pat text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT AS $fn$
DECLARE
    res text := '^';
    i int := 1;
    n int := length(pat);
    j int; k int; p int;
    c text; stuff text; chunk text;
    chunks text[];
    star boolean := false;
BEGIN
    WHILE i <= n LOOP
        c := substr(pat, i, 1);
        i := i + 1;
        IF c = '*' THEN
            IF NOT star THEN res := res || '.*'; END IF;
            star := true;
            CONTINUE;
        END IF;
        star := false;
        IF c = '?' THEN
            res := res || '.';
        ELSIF c = '[' THEN
            j := i;
            IF j <= n AND substr(pat, j, 1) = '!' THEN j := j + 1; END IF;
            IF j <= n AND substr(pat, j, 1) = ']' THEN j := j + 1; END IF;
            WHILE j <= n AND substr(pat, j, 1) <> ']' LOOP j := j + 1; END LOOP;
            IF j > n THEN
                res := res || '\[';
                CONTINUE;
            END IF;
            stuff := substr(pat, i, j - i);
            IF position('-' IN stuff) = 0 THEN
                stuff := replace(stuff, '\', '\\');
            ELSE
                chunks := '{{}}';
                k := CASE WHEN substr(pat, i, 1) = '!' THEN i + 2 ELSE i + 1 END;
                LOOP
                    p := CASE WHEN k < j THEN position('-' IN substr(pat, k, j - k)) ELSE 0 END;
                    EXIT WHEN p = 0;
                    k := k + p - 1;
                    chunks := chunks || substr(pat, i, k - i);
                    i := k + 1;
                    k := k + 3;
                END LOOP;
                chunk := substr(pat, i, j - i);
                IF chunk <> '' THEN
                    chunks := chunks || chunk;
                ELSE
                    chunks[cardinality(chunks)] := chunks[cardinality(chunks)] || '-';
                END IF;
                FOR k IN REVERSE cardinality(chunks) .. 2 LOOP
                    IF ascii(right(chunks[k - 1], 1)) > ascii(chunks[k]) THEN
                        chunks[k - 1] := left(chunks[k - 1], -1) || substr(chunks[k], 2);
                        chunks := chunks[1:k - 1] || chunks[k + 1:];
                    END IF;
                END LOOP;
                SELECT string_agg(replace(replace(x, '\', '\\'), '-', '\-'), '-' ORDER BY o)
                  INTO stuff FROM unnest(chunks) WITH ORDINALITY AS u(x, o);
            END IF;
            i := j + 1;
            IF stuff = '' THEN
                RETURN NULL;
            ELSIF stuff = '!' THEN
                res := res || '.';
            ELSE
                IF left(stuff, 1) = '!' THEN
                    stuff := '^' || substr(stuff, 2);
                ELSIF left(stuff, 1) IN ('^', '[') THEN
                    stuff := '\' || stuff;
                END IF;
                res := res || '[' || stuff || ']';
            END IF;
        ELSIF position(c IN '\^$.|?*+()[]{{}}') > 0 THEN
            res := res || '\' || c;
        ELSE
            res := res || c;
        END IF;
    END LOOP;
    RETURN res || '$';
END
$fn$;
"""

_SELECTED = """
CREATE OR REPLACE FUNCTION {schema}.kvmnet_rollout_hosts(selector text)
RETURNS TABLE (host text, labels text[])
LANGUAGE sql STABLE SET search_path = {schema}, pg_temp AS $fn$
    WITH pats AS MATERIALIZED (      -- each glob translated once, not once a host
        SELECT kvmnet_glob_regex(btrim(g, E' \\t\\n\\r\\f\\v')) AS re
          FROM unnest(string_to_array(coalesce(selector, ''), ',')) g
         WHERE btrim(g, E' \\t\\n\\r\\f\\v') <> '')
    SELECT h.host, h.labels FROM fleet_hosts h
     WHERE NOT EXISTS (SELECT 1 FROM pats) OR EXISTS (SELECT 1 FROM pats WHERE h.host ~ pats.re)
$fn$;
"""

_LOCK = """
CREATE OR REPLACE FUNCTION {schema}.kvmnet_lock_rollout(rollout_id bigint) RETURNS SETOF fleet_rollouts
LANGUAGE sql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
    SELECT * FROM fleet_rollouts
     WHERE CASE WHEN rollout_id IS NULL THEN state IN ('running', 'paused', 'aborting')
                ELSE id = rollout_id END
       FOR UPDATE
$fn$;
"""

_SETTLE = """
CREATE OR REPLACE FUNCTION {schema}.kvmnet_settle_rollout(rollout_id bigint, actor text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    r fleet_rollouts%ROWTYPE;
    who text := actor;
    n int;
    bad_host text;
    bad_result text;
    live boolean;
    open_host boolean;
    nxt text;
    why text;
BEGIN
    -- an agent audits under its own name, whatever it passes
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kvmnet_agents')
       AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND NOT rolsuper)
       AND pg_has_role(session_user, 'kvmnet_agents', 'MEMBER') THEN
        who := session_user;
    END IF;
    SELECT * INTO r FROM fleet_rollouts o WHERE o.id = kvmnet_settle_rollout.rollout_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    LOOP
        nxt := NULL;
        SELECT EXISTS (SELECT 1 FROM fleet_slots s WHERE s.rollout_id = r.id AND s.lease_expires > now()
                         AND NOT EXISTS (SELECT 1 FROM fleet_results x
                                          WHERE x.rollout_id = r.id AND x.host = s.host))
          INTO live;
        IF r.state IN ('running', 'paused') THEN
            SELECT count(*) INTO n FROM fleet_results x
             WHERE x.rollout_id = r.id AND x.result IN ('failed', 'reverted');
            IF n > r.max_failures THEN
                nxt := 'aborting';
                why := format('%s host(s) failed, more than --max-failures %s', n, r.max_failures);
            ELSIF r.canary > 0 THEN
                WITH sel AS (SELECT * FROM kvmnet_rollout_hosts(r.selector)),
                     lab AS (SELECT sel.host FROM sel WHERE 'canary' = ANY(sel.labels)),
                     can AS (SELECT lab.host FROM lab
                             UNION ALL
                             SELECT f.host FROM (SELECT sel.host FROM sel ORDER BY sel.host COLLATE "C"
                                                  LIMIT r.canary) f
                              WHERE NOT EXISTS (SELECT 1 FROM lab))
                SELECT can.host, x.result INTO bad_host, bad_result
                  FROM can JOIN fleet_results x ON x.rollout_id = r.id AND x.host = can.host
                 WHERE x.result <> 'applied'
                 ORDER BY can.host COLLATE "C" LIMIT 1;
                IF bad_host IS NOT NULL THEN
                    nxt := 'aborting';
                    why := format('canary %s did not become Available (%s)', bad_host, bad_result);
                END IF;
            END IF;
        END IF;
        IF nxt IS NULL AND r.state = 'aborting' AND NOT live THEN
            nxt := 'stopped';
            why := 'no host is applying any more';
        END IF;
        IF nxt IS NULL AND r.state = 'running' AND NOT live THEN
            SELECT EXISTS (
                SELECT 1 FROM kvmnet_rollout_hosts(r.selector) sel
                 WHERE NOT EXISTS (SELECT 1 FROM fleet_results x WHERE x.rollout_id = r.id AND x.host = sel.host)
                   AND (r.retry_failed OR NOT EXISTS (
                        SELECT 1 FROM fleet_results x JOIN fleet_rollouts o ON o.id = x.rollout_id
                         WHERE o.commit = r.commit AND o.id <> r.id AND x.host = sel.host
                           AND x.result IN ('failed', 'reverted'))))
              INTO open_host;
            IF NOT open_host THEN
                nxt := 'done';
                why := 'every host has a result';
            END IF;
        END IF;
        EXIT WHEN nxt IS NULL;
        UPDATE fleet_rollouts o
           SET state = nxt,
               ended_at = CASE WHEN nxt IN ('stopped', 'done') THEN now() ELSE o.ended_at END,
               message = CASE WHEN nxt = 'stopped' AND o.message IS NOT NULL
                              THEN o.message || '; ' || why ELSE why END
         WHERE o.id = r.id;
        INSERT INTO fleet_audit (actor, action, detail)
        VALUES (who, 'rollout ' || nxt, jsonb_build_object('rollout', r.id, 'commit', r.commit, 'why', why));
        r.state := nxt;
    END LOOP;
    RETURN r.state;
END
$fn$;
"""


def install(conn) -> None:
    """Create (or replace) the functions next to ``fleet_rollouts``, in the caller's
    transaction; only the table owner and the agents' group (when it exists: an
    upgraded fleet's agents keep working) may execute the two that act with the
    owner's rights."""
    from psycopg import sql
    schema, owner = conn.execute(
        "SELECT n.nspname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'fleet_rollouts'::regclass").fetchone()
    s = sql.Identifier(schema)
    for ddl in (_GLOB, _SELECTED, _LOCK, _SETTLE):
        conn.execute(sql.SQL(ddl).format(schema=s))
    for f in FUNCTIONS:
        conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {}.{} FROM PUBLIC").format(s, sql.SQL(f)))
        # a superuser creating them must not leave them running with its rights
        conn.execute(sql.SQL("ALTER FUNCTION {}.{} OWNER TO {}").format(s, sql.SQL(f), sql.Identifier(owner)))
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'kvmnet_agents'").fetchone():
        grant_agents(conn, "kvmnet_agents")


def grant_agents(conn, group: str) -> None:
    """The agents' group may execute the two functions and may not update the
    rollout's row (an upgraded fleet's agents held that right)."""
    from psycopg import sql
    g = sql.Identifier(group)
    conn.execute(sql.SQL("REVOKE UPDATE ON fleet_rollouts FROM {}").format(g))
    for f in FUNCTIONS:
        conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(f), g))
