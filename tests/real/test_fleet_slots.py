"""Slots, leases, fencing, pause/abort/forget and the agents' row policies against a
real PostgreSQL (the session's throwaway cluster)."""
from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from kvmnet.engine.fleet import rollout, slots
from kvmnet.state import fleet_roles, fleet_schema


def _db(conninfo: str, hosts: list[tuple[str, list[str]]]) -> psycopg.Connection:
    c = psycopg.connect(conninfo, autocommit=True)
    fleet_schema.ensure(c)
    for h, labels in hosts:
        c.execute("INSERT INTO fleet_hosts (host, labels) VALUES (%s, %s)", (h, labels))
    return c


def _start(c, **kw):
    args = dict(commit="abcdef1" * 5 + "0" * 5, actor="ops", max_unavailable="1", canary=1, max_failures=0)
    args.update(kw)
    return rollout.start(c, **args)


def test_slots_are_granted_within_the_budget_after_the_canary(pg_db):
    c = _db(pg_db, [(f"kvm{i:02d}", []) for i in range(1, 6)])
    _start(c, max_unavailable="40%", canary=1)
    assert slots.request_slot(c, "kvm02")[0] is None            # waits for the canary kvm01
    s1, _ = slots.request_slot(c, "kvm01")
    assert s1 is not None
    assert slots.request_slot(c, "kvm01")[0].token == s1.token   # the same slot, asked twice
    assert slots.report(c, s1.rollout_id, "kvm01", "applied", "ok", token=s1.token)
    a, _ = slots.request_slot(c, "kvm02")
    b, _ = slots.request_slot(c, "kvm03")
    none, why = slots.request_slot(c, "kvm04")                  # 40% of 5 = 2 slots
    assert a and b and none is None and "2 slot(s) are taken" in why.why


def test_a_lapsed_lease_frees_the_slot_and_fences_the_old_holder(pg_db):
    c = _db(pg_db, [("kvm01", []), ("kvm02", [])])
    _start(c, canary=0)
    s1, _ = slots.request_slot(c, "kvm01", lease_seconds=0.5)
    assert slots.request_slot(c, "kvm02")[0] is None
    time.sleep(0.7)
    assert not slots.renew(c, s1)                               # too late to renew
    s2, _ = slots.request_slot(c, "kvm02")
    assert s2 is not None                                       # the slot did not leak
    slots.report(c, s2.rollout_id, "kvm02", "applied", "ok", token=s2.token)
    again, _ = slots.request_slot(c, "kvm01")                    # kvm01's agent comes back
    assert again.token != s1.token
    assert not slots.report(c, s1.rollout_id, "kvm01", "applied", "zombie", token=s1.token)
    assert slots.report(c, again.rollout_id, "kvm01", "applied", "ok", token=again.token)
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"


def test_failures_above_the_limit_abort_and_the_rollout_stops_when_drained(pg_db):
    c = _db(pg_db, [(f"kvm{i:02d}", []) for i in range(1, 5)])
    _start(c, canary=0, max_unavailable="2", max_failures=0)
    a, _ = slots.request_slot(c, "kvm01")
    b, _ = slots.request_slot(c, "kvm02")
    slots.report(c, a.rollout_id, "kvm01", "failed", "boom", token=a.token)
    state, msg = c.execute("SELECT state, message FROM fleet_rollouts").fetchone()
    assert state == "aborting" and "more than --max-failures 0" in msg
    assert slots.request_slot(c, "kvm03")[0] is None
    slots.report(c, b.rollout_id, "kvm02", "applied", "ok", token=b.token)   # in flight: finishes
    state, msg = c.execute("SELECT state, message FROM fleet_rollouts").fetchone()
    assert state == "stopped" and msg.startswith("1 host(s) failed") and "no host is applying" in msg


def test_a_second_rollout_is_refused_naming_who_runs_the_first(pg_db):
    c = _db(pg_db, [("kvm01", [])])
    _start(c, actor="alice@ops1")
    with pytest.raises(rollout.FleetError, match="started by alice@ops1"):
        _start(c, actor="bob@ops2", commit="1234567" * 5 + "0" * 5)


def test_pause_resume_abort_and_forget(pg_db):
    c = _db(pg_db, [("kvm01", ["canary"]), ("kvm02", [])])
    _start(c, canary=1)
    assert rollout.change(c, "pause", "ops").state == "paused"
    assert "paused" in slots.request_slot(c, "kvm01")[1].why
    with pytest.raises(rollout.FleetError, match="cannot pause"):
        rollout.change(c, "pause", "ops")
    rollout.change(c, "resume", "ops")
    s, _ = slots.request_slot(c, "kvm01")
    with pytest.raises(rollout.FleetError, match="holds a slot"):
        rollout.forget(c, "kvm01", "ops")
    assert rollout.change(c, "abort", "ops").state == "aborting"
    slots.report(c, s.rollout_id, "kvm01", "applied", "ok", token=s.token)
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "stopped"
    rollout.forget(c, "kvm02", "ops")
    with pytest.raises(rollout.FleetError, match='no host "kvm02"'):
        rollout.forget(c, "kvm02", "ops")
    actions = [a for (a,) in c.execute("SELECT action FROM fleet_audit ORDER BY id")]
    assert actions == ["rollout started", "rollout pause", "rollout resume", "slot granted",
                       "rollout abort", "host result", "rollout stopped", "host forgotten"]
    with pytest.raises(rollout.FleetError, match="nothing to abort"):
        rollout.change(c, "abort", "ops")


def test_a_host_that_failed_the_commit_is_skipped_unless_retried(pg_db):
    c = _db(pg_db, [("kvm01", [])])
    rid = _start(c, canary=0, max_failures=5)
    s, _ = slots.request_slot(c, "kvm01")
    slots.report(c, rid, "kvm01", "reverted", "probe failed", token=s.token)
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"
    _start(c, canary=0, max_failures=5)
    none, d = slots.request_slot(c, "kvm01")
    assert none is None and d.verdict == "skip" and "--retry-failed" in d.why
    assert c.execute("SELECT count(*) FROM fleet_rollouts WHERE state = 'done'").fetchone()[0] == 2
    _start(c, canary=0, max_failures=5, retry_failed=True)
    assert slots.request_slot(c, "kvm01")[0] is not None


def test_bad_rollout_arguments_are_refused(pg_db):
    c = _db(pg_db, [])
    with pytest.raises(rollout.FleetError, match="no host has reported to the fleet yet"):
        _start(c)
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01'), ('kvm02')")
    with pytest.raises(rollout.FleetError, match=r'--hosts "web\[0-9\]" matches none of the 2 hosts known'):
        _start(c, selector="web[0-9]")
    assert c.execute("SELECT count(*) FROM fleet_rollouts").fetchone()[0] == 0
    assert c.execute("SELECT count(*) FROM fleet_audit").fetchone()[0] == 0
    for kw, msg in [({"commit": "main"}, "not a full commit id"), ({"commit": "abcdef1"}, "not a full commit id"),
                    ({"max_unavailable": "0"}, "at least one"),
                    ({"max_unavailable": "150%"}, "between 1% and 100%"), ({"max_unavailable": "ten"}, "neither"),
                    ({"canary": -1}, "--canary"), ({"max_failures": -1}, "--max-failures"),
                    ({"selector": " , "}, "selects nothing")]:
        with pytest.raises(rollout.FleetError, match=msg):
            _start(c, **kw)


def test_an_agent_role_writes_only_its_own_rows(pg_cluster, pg_db):
    c = _db(pg_db, [])
    for h in ("kvm01", "kvm02"):
        fleet_roles.create_agent_role(c, h)
        fleet_roles.create_agent_role(c, h)           # idempotent
    dbname = c.info.dbname
    with psycopg.connect(pg_cluster.conninfo(dbname, user="kvm02"), autocommit=True) as k2:
        k2.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm02')")
    with psycopg.connect(pg_cluster.conninfo(dbname, user="kvm01"), autocommit=True) as k1:
        k1.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01')")
        k1.execute("UPDATE fleet_hosts SET message = 'mine' WHERE host = 'kvm01'")
        cur = k1.execute("UPDATE fleet_hosts SET message = 'pwned' WHERE host = 'kvm02'")
        assert cur.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            k1.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm03')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            k1.execute("INSERT INTO fleet_audit (actor, action) VALUES ('kvm02', 'lie')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            k1.execute("DELETE FROM fleet_rollouts")
        _start(c, canary=0)
        s, _ = slots.request_slot(k1, "kvm01")           # the agent's own grant works under RLS
        assert s is not None
        assert slots.report(k1, s.rollout_id, "kvm01", "applied", "ok", token=s.token)
    assert c.execute("SELECT message FROM fleet_hosts WHERE host = 'kvm02'").fetchone()[0] is None
    # the policies bind the agents only: a monitoring role granted SELECT sees every row
    viewer = f"viewer_{uuid.uuid4().hex[:8]}"
    c.execute(f"CREATE ROLE {viewer} LOGIN")
    c.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {viewer}")
    try:
        with psycopg.connect(pg_cluster.conninfo(dbname, user=viewer), autocommit=True) as v:
            assert v.execute("SELECT count(*) FROM fleet_hosts").fetchone()[0] == 2
            assert v.execute("SELECT count(*) FROM fleet_results").fetchone()[0] == 1
    finally:
        c.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {viewer}")
        c.execute(f"DROP ROLE {viewer}")
    c.execute("CREATE ROLE postgresx LOGIN")
    with pytest.raises(fleet_roles.RoleError, match="not a kvmnet agent"):
        fleet_roles.create_agent_role(c, "postgresx")


def test_an_aborting_rollout_whose_last_holder_died_stops_once_its_lease_lapses(pg_db):
    c = _db(pg_db, [("kvm01", []), ("kvm02", [])])
    _start(c, canary=0)
    slots.request_slot(c, "kvm01", lease_seconds=0.5)
    rollout.change(c, "abort", "ops")
    assert slots.settle(c, "kvm02").state == "aborting"        # kvm01 may still be applying
    time.sleep(0.7)
    assert slots.settle(c, "kvm02").state == "stopped"


def test_a_lost_host_counts_as_failed_so_the_rollout_ends_and_status_says_so(pg_cluster, pg_db):
    from kvmnet.engine.fleet import view
    c = _db(pg_db, [])
    for h in ("lost01", "lost02"):
        fleet_roles.create_agent_role(c, h)
        c.execute("INSERT INTO fleet_hosts (host, last_seen) VALUES (%s, now())", (h,))
    rid = _start(c, canary=0, max_failures=1, lost_after=0.6)
    with psycopg.connect(pg_cluster.conninfo(c.info.dbname, user="lost02"), autocommit=True) as k2:
        s1, _ = slots.request_slot(c, "lost01", lease_seconds=0.3)   # lost01's agent dies
        assert slots.request_slot(k2, "lost02")[1].verdict == "wait"
        time.sleep(0.4)                                  # lease lapsed, but seen 0.4 s ago: not lost yet
        with pytest.raises(psycopg.errors.InsufficientPrivilege):   # no agent may claim it early
            k2.execute("INSERT INTO fleet_results (rollout_id, host, result, message) "
                       "VALUES (%s, 'lost01', 'failed', 'agent lost: lie')", (rid,))
        assert not slots.lost_pending(k2)
        time.sleep(0.4)
        assert slots.lost_pending(k2)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):   # only a failure, only "agent lost"
            k2.execute("INSERT INTO fleet_results (rollout_id, host, result, message) "
                       "VALUES (%s, 'lost01', 'applied', 'agent lost: lie')", (rid,))
        s2, _ = slots.request_slot(k2, "lost02")         # the other agent's grant records lost01
        assert s2 is not None
        assert slots.report(k2, rid, "lost02", "applied", "ok", token=s2.token)
    result, message = c.execute("SELECT result, message FROM fleet_results WHERE host = 'lost01'").fetchone()
    assert result == "failed" and message.startswith("agent lost: last seen ")
    assert "--lost-after 0.6 s" in message
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"
    assert c.execute("SELECT actor FROM fleet_audit WHERE action = 'host lost'").fetchone()[0] == "lost02"
    lost01 = {h.host: h for h in view.read_hosts(c)}["lost01"]
    assert lost01.condition == "Failing" and lost01.message == message
    assert not slots.report(c, rid, "lost01", "applied", "zombie", token=s1.token + 1000)
    c.execute("UPDATE fleet_hosts SET last_seen = now(), condition = 'Pending', message = 'back' "
              "WHERE host = 'lost01'")
    assert {h.host: h for h in view.read_hosts(c)}["lost01"].message == "back"   # seen since: its own row


def test_lost_hosts_above_the_limit_stop_the_rollout(pg_db):
    c = _db(pg_db, [("kvm01", []), ("kvm02", []), ("kvm03", [])])
    _start(c, canary=0, max_unavailable="2", max_failures=1, lost_after=0.3)
    slots.request_slot(c, "kvm01", lease_seconds=0.2)
    slots.request_slot(c, "kvm02", lease_seconds=0.2)
    time.sleep(0.5)
    assert slots.settle(c, "ops").state == "stopped"
    assert sorted(h for (h,) in c.execute("SELECT host FROM fleet_results WHERE result = 'failed'")) == \
        ["kvm01", "kvm02"]
    with pytest.raises(rollout.FleetError, match="--lost-after must be more than 0"):
        _start(c, lost_after=0)


def test_a_host_with_an_empty_plan_reports_applied_without_a_slot(pg_db):
    c = _db(pg_db, [("kvm01", []), ("kvm02", []), ("kvm03", [])])
    rid = _start(c, canary=1, max_unavailable="1")
    none, d = slots.request_slot(c, "kvm02", unchanged=True)     # the canary kvm01 has not applied
    assert none is None and d.verdict == "unchanged"
    s1, _ = slots.request_slot(c, "kvm01")
    assert slots.request_slot(c, "kvm03")[1].verdict == "wait"   # the one slot is kvm01's
    assert slots.request_slot(c, "kvm03", unchanged=True)[1].verdict == "unchanged"
    assert c.execute("SELECT count(*) FROM fleet_slots").fetchone()[0] == 1
    assert slots.request_slot(c, "kvm03", unchanged=True)[1].verdict == "unchanged"   # asked again: same answer
    assert c.execute("SELECT count(*) FROM fleet_audit WHERE action = 'host result'").fetchone()[0] == 2
    assert slots.report(c, rid, "kvm01", "applied", "ok", token=s1.token)
    rows = dict(c.execute("SELECT host, result FROM fleet_results").fetchall())
    assert rows == {"kvm01": "applied", "kvm02": "applied", "kvm03": "applied"}
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"
    granted = [d["host"] if "host" in d else a for a, d in c.execute(
        "SELECT actor, detail FROM fleet_audit WHERE action = 'slot granted'")]
    assert granted == ["kvm01"]
    _start(c, canary=0)
    rollout.change(c, "pause", "ops")
    assert slots.request_slot(c, "kvm02", unchanged=True)[1].verdict == "wait"   # paused: nothing recorded


def test_forget_drops_the_agents_role_or_refuses_changing_nothing(pg_cluster, pg_db):
    c = _db(pg_db, [])
    for h in ("gone01", "gone02", "gone03"):
        fleet_roles.create_agent_role(c, h)
        c.execute("INSERT INTO fleet_hosts (host) VALUES (%s)", (h,))

    def role(h):
        return c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (h,)).fetchone() is not None

    assert rollout.forget(c, "gone01", "ops") == "role dropped"
    assert not role("gone01")
    c.execute("CREATE TABLE gone02_owns (x int)")
    c.execute("ALTER TABLE gone02_owns OWNER TO gone02")
    with pytest.raises(rollout.FleetError, match='role "gone02" cannot be dropped: owner of table gone02_owns'):
        rollout.forget(c, "gone02", "ops")
    assert role("gone02") and c.execute("SELECT 1 FROM fleet_hosts WHERE host = 'gone02'").fetchone()
    c.execute("DROP TABLE gone02_owns")
    assert rollout.forget(c, "gone02", "ops") == "role dropped"
    c.execute("CREATE ROLE gone04 LOGIN")                # a role of that name that is no agent's
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('gone04'), ('gone05')")
    assert rollout.forget(c, "gone04", "ops") == "role left alone: not a kvmnet agent's" and role("gone04")
    assert rollout.forget(c, "gone05", "ops") == "no role"
    # an operator that may not drop roles is refused, and nothing changes
    c.execute("CREATE ROLE gone_op LOGIN NOCREATEROLE BYPASSRLS")
    c.execute("GRANT SELECT, DELETE, UPDATE, INSERT ON ALL TABLES IN SCHEMA public TO gone_op")
    c.execute("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO gone_op")
    with psycopg.connect(pg_cluster.conninfo(c.info.dbname, user="gone_op"), autocommit=True) as op:
        with pytest.raises(rollout.FleetError, match='role "gone03" cannot be dropped: permission denied'):
            rollout.forget(op, "gone03", "gone_op")
    assert role("gone03") and c.execute("SELECT 1 FROM fleet_hosts WHERE host = 'gone03'").fetchone()
    actions = [(a, d.get("role")) for a, d in c.execute(
        "SELECT action, detail FROM fleet_audit WHERE action = 'host forgotten' ORDER BY id")]
    assert actions == [("host forgotten", "role dropped")] * 2 + [("host forgotten", "role left alone: "
                                                                  "not a kvmnet agent's"),
                                                                 ("host forgotten", "no role")]
