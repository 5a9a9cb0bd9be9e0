"""The rollout's state is the server's to settle (state/fleet_settle.py), against a real
PostgreSQL: an agent's role cannot write the rollout row, its call of the settling
function changes only what the rows justify, and the function decides exactly what
pacing.next_state decides (hypothesis, on random small fleets), host globs included."""
from __future__ import annotations

import fnmatch
from dataclasses import replace

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kvmnet.engine.fleet import pacing, rollout, slots
from kvmnet.state import fleet_roles, fleet_schema

COMMIT = "abcdef1" * 5 + "0" * 5


def _db(conninfo: str, hosts) -> psycopg.Connection:
    c = psycopg.connect(conninfo, autocommit=True)
    fleet_schema.ensure(c)
    for h, labels in hosts:
        c.execute("INSERT INTO fleet_hosts (host, labels) VALUES (%s, %s)", (h, labels))
    return c


def _audit(c, rid):
    return [(actor, action, d.get("why")) for actor, action, d in c.execute(
        "SELECT actor, action, detail FROM fleet_audit WHERE action IN "
        "('rollout aborting', 'rollout stopped', 'rollout done') AND (detail->>'rollout')::bigint = %s "
        "ORDER BY id", (rid,))]


def test_a_rogue_agent_cannot_write_or_unjustly_settle_a_rollout(pg_cluster, pg_db):
    c = _db(pg_db, [("rw01", []), ("rw02", [])])
    for h in ("rw01", "rw02"):
        fleet_roles.create_agent_role(c, h)
    # a fleet of schema version 4 granted the agents this; the upgrade takes it back
    c.execute("GRANT UPDATE (state, message, ended_at) ON fleet_rollouts TO kvmnet_agents")
    c.execute("REVOKE EXECUTE ON FUNCTION kvmnet_settle_rollout(bigint, text) FROM kvmnet_agents")
    c.execute("UPDATE fleet_meta SET value = '4' WHERE key = 'schema_version'")
    fleet_schema.ensure(c)
    rid = rollout.start(c, commit=COMMIT, actor="ops", max_unavailable="1", canary=0, max_failures=0)
    before = c.execute("SELECT state, message, ended_at FROM fleet_rollouts WHERE id = %s", (rid,)).fetchone()
    with psycopg.connect(pg_cluster.conninfo(c.info.dbname, user="rw01"), autocommit=True) as rogue:
        for column, value in (("state", "stopped"), ("message", "all fine"), ("ended_at", "now()")):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                rogue.execute(f"UPDATE fleet_rollouts SET {column} = {value!r} WHERE id = %s".replace(
                    "'now()'", "now()"), (rid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            rogue.execute("SELECT id FROM fleet_rollouts FOR UPDATE")
        # nothing justifies a change: the function leaves the rollout as it is
        assert rogue.execute("SELECT kvmnet_settle_rollout(%s, 'ops')", (rid,)).fetchone()[0] == "running"
        assert rogue.execute("SELECT id FROM kvmnet_lock_rollout(NULL)").fetchone()[0] == rid
        # its own failure does justify one; the audit names the agent, not the name it passed
        rogue.execute("INSERT INTO fleet_results (rollout_id, host, result, message) "
                      "VALUES (%s, 'rw01', 'failed', 'probe broke')", (rid,))
        assert rogue.execute("SELECT kvmnet_settle_rollout(%s, 'ops')", (rid,)).fetchone()[0] == "stopped"
    assert before == ("running", None, None)
    assert _audit(c, rid) == [("rw01", "rollout aborting", "1 host(s) failed, more than --max-failures 0"),
                              ("rw01", "rollout stopped", "no host is applying any more")]
    state, ended = c.execute("SELECT state, ended_at FROM fleet_rollouts WHERE id = %s", (rid,)).fetchone()
    assert state == "stopped" and ended is not None


def test_only_the_agents_and_the_owner_may_execute_the_owners_functions(pg_cluster, pg_db):
    c = _db(pg_db, [("rw03", [])])
    fleet_roles.create_agent_role(c, "rw03")
    rid = rollout.start(c, commit=COMMIT, actor="ops", max_unavailable="1", canary=0, max_failures=0)
    c.execute("DROP ROLE IF EXISTS rw_viewer")
    c.execute("CREATE ROLE rw_viewer LOGIN")
    c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO rw_viewer")
    try:
        with psycopg.connect(pg_cluster.conninfo(c.info.dbname, user="rw_viewer"), autocommit=True) as v:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
                v.execute("SELECT kvmnet_settle_rollout(%s, 'x')", (rid,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
                v.execute("SELECT * FROM kvmnet_lock_rollout(NULL)")
    finally:
        c.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM rw_viewer")
        c.execute("DROP ROLE rw_viewer")
    owner, definer, config = c.execute(
        "SELECT pg_get_userbyid(proowner), prosecdef, proconfig FROM pg_proc "
        "WHERE proname = 'kvmnet_settle_rollout'").fetchone()
    assert owner == c.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'fleet_rollouts'").fetchone()[0]
    assert definer and config == ["search_path=public, pg_temp"]


_GLOB_CHARS = "ab1-*?[]!^\\,"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(st.text("ab1-[]!^\\", min_size=1, max_size=5),
                                st.text(_GLOB_CHARS.replace(",", ""), min_size=1, max_size=7)),
                      min_size=1, max_size=8))
def test_the_servers_glob_is_fnmatchcase(pg_db, pairs):
    c = _glob_db(pg_db)
    got = c.execute("SELECT coalesce(h ~ kvmnet_glob_regex(g), false) FROM unnest(%s::text[], %s::text[]) "
                    "WITH ORDINALITY AS u(h, g, o) ORDER BY o",
                    ([h for h, _ in pairs], [g for _, g in pairs])).fetchall()
    assert [r[0] for r in got] == [fnmatch.fnmatchcase(h, g) for h, g in pairs]


_CONNS: dict[str, psycopg.Connection] = {}


@pytest.fixture(autouse=True, scope="module")
def _close_conns():
    yield
    for conn in _CONNS.values():
        conn.close()
    _CONNS.clear()


def _glob_db(conninfo: str) -> psycopg.Connection:
    """One connection per test database for every hypothesis example (closed at exit)."""
    if conninfo not in _CONNS:
        for old in _CONNS.values():
            old.close()
        _CONNS.clear()
        _CONNS[conninfo] = _db(conninfo, [])
    return _CONNS[conninfo]


HOSTS = ["kvm01", "kvm02", "kvm03", "kvm10", "edge1", "Kvm04"]
GLOBS = ["kvm0[1-3]", "kvm0?", "edge*", " kvm10 ", "", "nomatch", "[!k]*", "kvm*"]
RESULTS = [None, "applied", "failed", "reverted", "skipped"]


@st.composite
def fleets(draw):
    hosts = draw(st.lists(st.sampled_from(HOSTS), unique=True, min_size=1, max_size=6))
    return {
        "hosts": {h: draw(st.sampled_from([[], ["canary"], ["x"], ["x", "canary"]])) for h in hosts},
        "selector": draw(st.one_of(st.none(), st.lists(st.sampled_from(GLOBS), min_size=1, max_size=3)
                                   .map(",".join))),
        "state": draw(st.sampled_from(["running", "paused", "aborting", "stopped", "done"])),
        "canary": draw(st.integers(0, 3)),
        "max_failures": draw(st.integers(0, 2)),
        "retry_failed": draw(st.booleans()),
        "results": {h: r for h in [*hosts, "gone9"] if (r := draw(st.sampled_from(RESULTS)))},
        # a slot per host: none, live, or lapsed
        "slots": {h: s for h in hosts if (s := draw(st.sampled_from([None, "live", "lapsed"])))},
        "failed_before": draw(st.lists(st.sampled_from(hosts), unique=True, max_size=3)),
        "message": draw(st.sampled_from([None, "abort by ops"])),
    }


def _model_steps(fleet: pacing.Fleet) -> list[tuple[str, str]]:
    steps = []
    while (step := pacing.next_state(fleet)) is not None:
        steps.append(step)
        fleet = replace(fleet, rollout=replace(fleet.rollout, state=step[0]))
    return steps


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=fleets())
def test_the_servers_settling_is_pacing_next_state(pg_db, f):
    c = _glob_db(pg_db)
    with c.transaction(force_rollback=True):
        for h, labels in f["hosts"].items():
            c.execute("INSERT INTO fleet_hosts (host, labels, last_seen) VALUES (%s, %s, now())", (h, labels))
        old = c.execute("INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, max_failures, "
                        "state) VALUES (%s, 'ops', '1', 0, 0, 'stopped') RETURNING id", (COMMIT,)).fetchone()[0]
        for h in f["failed_before"]:
            c.execute("INSERT INTO fleet_results (rollout_id, host, result) VALUES (%s, %s, 'reverted')", (old, h))
        rid = c.execute(
            "INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, max_failures, retry_failed, "
            "selector, state, message) VALUES (%s, 'ops', '1', %s, %s, %s, %s, %s, %s) RETURNING id",
            (COMMIT, f["canary"], f["max_failures"], f["retry_failed"], f["selector"], f["state"],
             f["message"])).fetchone()[0]
        for h, r in f["results"].items():
            c.execute("INSERT INTO fleet_results (rollout_id, host, result) VALUES (%s, %s, %s)", (rid, h, r))
        for h, s in f["slots"].items():
            c.execute("INSERT INTO fleet_slots (rollout_id, host, token, lease_expires) VALUES "
                      "(%s, %s, nextval('fleet_slot_tokens'), now() + make_interval(secs => %s))",
                      (rid, h, 60 if s == "live" else -60))
        row = c.execute(f"SELECT {slots._ROLLOUT_COLUMNS} FROM fleet_rollouts WHERE id = %s", (rid,)).fetchone()
        fleet = slots.read_fleet(c, slots._rollout(row))
        expected = _model_steps(fleet)
        event(" → ".join([f["state"], *(s for s, _ in expected)]))
        event("why: " + (expected[0][1].split()[0] if expected else "-"))
        final = c.execute("SELECT kvmnet_settle_rollout(%s, 'tester')", (rid,)).fetchone()[0]
        assert _audit(c, rid) == [("tester", f"rollout {s}", why) for s, why in expected]
        assert final == (expected[-1][0] if expected else f["state"])
        state, message, ended = c.execute("SELECT state, message, ended_at FROM fleet_rollouts WHERE id = %s",
                                          (rid,)).fetchone()
        assert state == final
        if expected:
            last = expected[-1][1]
            prior = f["message"] if len(expected) == 1 else expected[-2][1]
            assert message == (f"{prior}; {last}" if final == "stopped" and prior else last)
            assert (ended is not None) == (final in ("stopped", "done"))
