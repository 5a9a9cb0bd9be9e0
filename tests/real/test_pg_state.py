"""The PostgreSQL state backend against a real server (the throwaway cluster): row
leases and fencing, a server restart mid-run, a dead server, bad connection strings,
foreign and newer schemas, `state migrate` both ways, and plan/apply/destroy of
bridges in a namespace through the CLI with a backend "pg" block."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.state import (
    EXCLUSIVE, HistoryEntry, InstanceRecord, Intent, LockError, StateError, open_pg_state,
    open_state,
)
from kvmnet.state.migrate import differences, migrate, take
from tests.conftest import ROOT
from tests.unit.test_state import lock_once_free

KVMNET = [sys.executable, "-m", "kvmnet"]
pytestmark = [pytest.mark.real,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a PostgreSQL cluster)")]


def rec(name: str, **attrs) -> InstanceRecord:
    return InstanceRecord(f"bridge.{name}", "bridge", name, None, "iproute", name, attrs or {"mtu": 1})


def fill(st) -> None:
    st.record_intents([Intent("bridge.c", "create", "bridge", "iproute", {"mark": "m"})])
    with st.transaction() as w:
        h = w.add_history(HistoryEntry("kvmnet apply", changes=[{"address": "bridge.a"}]))
        w.put(rec("a"))
        w.put(InstanceRecord("bridge.t[0]", "bridge", "t", 0, "iproute", None, {"x": [1.5, None]},
                             {"p": 1}, ["bridge.a"]))
        w.set_outputs({"o": {"k": "v"}, "s": "secret"}, frozenset({"s"}))
        w.update_history(h, status="applied", serial_after=1)
    with st.transaction() as w:
        w.remove("bridge.a")


def test_migrate_sqlite_to_pg_and_back_loses_nothing(pg_db, tmp_path):
    sqlite = open_state(tmp_path / "a.db")
    fill(sqlite)
    before = take(sqlite)
    pg = open_pg_state(pg_db, "kvm01")
    migrate(sqlite, pg)
    assert differences(before, take(pg)) == []
    back = open_state(tmp_path / "b.db")
    migrate(pg, back)
    assert differences(before, take(back)) == []
    assert take(back).snapshot.serial == 2 and take(back).intents[0].identity == {"mark": "m"}
    with pytest.raises(StateError, match="already holds a state"):
        migrate(sqlite, pg)
    with pytest.raises(StateError, match="no state .* to migrate"):
        migrate(open_state(tmp_path / "none.db"), open_pg_state(pg_db, "kvm02"))


def test_workspaces_are_separate(pg_db):
    a, b = open_pg_state(pg_db, "kvm01"), open_pg_state(pg_db, "kvm02")
    with a.transaction() as w:
        w.put(rec("a"))
    assert not b.read().exists
    with b.lock(EXCLUSIVE, "kvmnet apply"), a.lock(EXCLUSIVE, "kvmnet apply"):
        pass


HOLDER = textwrap.dedent("""
    import sys, time
    from kvmnet.state import open_pg_state, InstanceRecord, EXCLUSIVE
    st = open_pg_state(sys.argv[1], "kvm01", lease_seconds=float(sys.argv[2]))
    lock = st.lock(EXCLUSIVE, "kvmnet apply (paused)")
    print("locked", flush=True)
    sys.stdin.readline()                 # the test pauses us here, past our lease
    try:
        with st.transaction() as w:
            w.put(InstanceRecord("bridge.stale", "bridge", "stale", None, "iproute"))
        print("wrote", flush=True)
    except Exception as e:
        print("refused:", e, flush=True)
""")


def test_a_paused_holder_whose_lease_expired_cannot_write_after_another_took_the_lock(pg_db):
    assert_a_paused_holder_is_fenced_off(pg_db, lease=3)


def assert_a_paused_holder_is_fenced_off(conninfo: str, lease: int) -> None:
    """A holder SIGSTOPped past its lease: another takes the lock, and the holder's
    write after SIGCONT is refused by the fencing token (also run through PgBouncer)."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, conninfo, str(lease)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert child.stdout.readline().strip() == "locked"
        st = open_pg_state(conninfo, "kvm01", lease_seconds=lease)
        with pytest.raises(LockError, match=r"kvmnet apply \(paused\)"):
            st.lock(EXCLUSIVE, "kvmnet apply", timeout=0)
        os.kill(child.pid, signal.SIGSTOP)           # no renewal from here on
        with st.lock(EXCLUSIVE, "kvmnet apply", timeout=10) as lock:
            assert any("paused" in h.command for h in lock.stale)
            os.kill(child.pid, signal.SIGCONT)
            child.stdin.write("go\n")
            child.stdin.flush()
            out = child.stdout.readline()
            assert out.startswith("refused:") and "lost" in out
            with st.transaction() as w:              # the new holder writes
                w.put(rec("new"))
        assert set(st.read().instances) == {"bridge.new"}
    finally:
        child.kill()
        child.wait()


def test_a_lease_is_renewed_while_held_and_a_lost_one_refuses_writes(pg_db):
    st = open_pg_state(pg_db, "kvm01", lease_seconds=3)
    with st.lock(EXCLUSIVE, "kvmnet apply") as lock:
        time.sleep(4)                                   # longer than the lease: renewed
        with st.transaction() as w:
            w.put(rec("a"))
        other = open_pg_state(pg_db, "kvm01")
        with pytest.raises(LockError, match="kvmnet apply"):
            other.lock(EXCLUSIVE, "kvmnet apply", timeout=0)
        with psycopg.connect(pg_db, autocommit=True) as c:  # an operator's force-unlock
            c.execute("UPDATE kvmnet.locks SET expires = now() - interval '1 s'")
        with pytest.raises(LockError, match="lost"):
            with st.transaction() as w:
                w.put(rec("b"))
        assert lock.id
    assert set(st.read().instances) == {"bridge.a"}


def test_a_holder_whose_lease_is_lost_is_told_before_the_lease_would_end(pg_db):
    st = open_pg_state(pg_db, "kvm01", lease_seconds=3)
    told: list[str] = []
    with st.lock(EXCLUSIVE, "kvmnet apply") as lock:
        lock.on_lost = told.append
        with psycopg.connect(pg_db, autocommit=True) as c:   # force-unlocked by an operator
            c.execute("DELETE FROM kvmnet.locks")
        deadline = time.monotonic() + 3
        while not told and time.monotonic() < deadline:
            time.sleep(0.05)
        assert told and "force-unlocked" in told[0] and not lock.held


def test_a_renewal_the_server_does_not_finish_in_time_loses_the_lease_before_it_ends(pg_db):
    st = open_pg_state(pg_db, "kvm01", lease_seconds=3)
    told: list[tuple[float, str]] = []
    with st.lock(EXCLUSIVE, "kvmnet apply") as lock, psycopg.connect(pg_db) as blocker:
        lock.on_lost = lambda why: told.append((time.time(), why))
        [(expires,)] = blocker.execute("SELECT expires FROM kvmnet.locks").fetchall()
        blocker.execute("LOCK TABLE kvmnet.locks IN ACCESS EXCLUSIVE MODE")  # renewals wait
        deadline = time.monotonic() + 4
        while not told and time.monotonic() < deadline:
            time.sleep(0.05)
        blocker.rollback()
        [(when, why)] = told
        assert when < expires.timestamp() and "could not renew the lease" in why
        with pytest.raises(LockError, match="was lost: could not renew"):
            st.read()                      # every access of the run now fails, at once
        [(after,)] = blocker.execute("SELECT expires FROM kvmnet.locks").fetchall()
        assert after == expires            # the renewal given up on never landed


def test_a_server_restart_between_transactions_is_retried(pg_db, pg_cluster):
    st = open_pg_state(pg_db, "kvm01")
    with st.transaction() as w:
        w.put(rec("a"))
    pg_cluster.restart()
    with st.transaction() as w:
        w.put(rec("b"))
    assert set(st.read().instances) == {"bridge.a", "bridge.b"}


def test_a_lease_held_across_a_server_restart_keeps_its_holder_writing(pg_db, pg_cluster):
    st = open_pg_state(pg_db, "kvm01", lease_seconds=10)
    with st.lock(EXCLUSIVE, "kvmnet apply"):
        with st.transaction() as w:
            w.put(rec("a"))
        pg_cluster.restart()
        with st.transaction() as w:        # reconnects; the lease row survived the restart
            w.put(rec("b"))
        with pytest.raises(LockError, match="kvmnet apply"):
            open_pg_state(pg_db, "kvm01").lock(EXCLUSIVE, "kvmnet apply", timeout=0)
    assert set(st.read().instances) == {"bridge.a", "bridge.b"}


def test_a_first_statement_refused_with_the_begin_is_run_again_alone(pg_db):
    """The first statement of a write travels with its BEGIN once the workspace's
    row was seen. When the row has gone since (deleted by hand: its rows go with
    it), that message fails on the foreign key; the plain path makes a new state
    and writes, and a statement the server refuses is still one line."""
    st = open_pg_state(pg_db, "kvm01")
    with st.transaction() as w:
        w.put(rec("a"))
        old = w.lineage
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("DELETE FROM kvmnet.workspaces WHERE workspace = 'kvm01'")
    [iid] = st.record_intents([Intent("bridge.b", "create", "bridge", "iproute")])
    with st.transaction(durable=False) as w:
        w.settle("bridge.b", rec("b"), [iid])
    snap = open_pg_state(pg_db, "kvm01").read()
    assert set(snap.instances) == {"bridge.b"} and snap.lineage != old and snap.serial == 1
    assert st.open_intents() == []
    with pytest.raises(StateError, match=r"^cannot write the state in PostgreSQL .*json") as e:
        with st.transaction() as w:
            w._execute("INSERT INTO kvmnet.intents (workspace, id, address, action, type, "
                       "provider, identity, created) VALUES (%s, 99, 'x', 'create', 'bridge', "
                       "'iproute', %s, 'now')", ("kvm01", "{not json"))
    assert "\n" not in str(e.value) and st.open_intents() == []


def test_an_intent_the_server_fences_off_is_written_by_nobody(pg_db):
    """An intent goes in one message whose insert the server makes only while the
    fence holds. A writer without the lease while another process holds it, and a
    holder whose lease row was deleted behind its back, write nothing and get the
    plain path's one line."""
    holder = open_pg_state(pg_db, "kvm01")
    with holder.transaction() as w:
        w.put(rec("a"))                              # the workspace's row is seen
    other = open_pg_state(pg_db + " ", "kvm01")      # same database, not this lease's key
    other.record_intents([Intent("bridge.x", "create", "bridge", "iproute")])
    lock = holder.lock(EXCLUSIVE, "kvmnet apply")
    try:
        [mine] = holder.record_intents([Intent("bridge.b", "create", "bridge", "iproute")])
        with pytest.raises(LockError, match=r"^state is locked by .*kvmnet apply.*this write was refused$"):
            other.record_intents([Intent("bridge.c", "create", "bridge", "iproute")])
        with psycopg.connect(pg_db, autocommit=True) as c:
            c.execute("DELETE FROM kvmnet.locks WHERE id = %s", (lock.holder.id,))
        with pytest.raises(LockError, match=r"was lost: its lease expired or was force-unlocked"):
            holder.record_intents([Intent("bridge.d", "create", "bridge", "iproute")])
    finally:
        lock.release()
    assert [i.address for i in other.open_intents()] == ["bridge.x", "bridge.b"]
    assert mine == other.open_intents()[1].id


def test_a_server_restart_inside_a_transaction_writes_none_of_it(pg_db, pg_cluster):
    st = open_pg_state(pg_db, "kvm01")
    with st.transaction() as w:
        w.put(rec("a"))
    with pytest.raises(StateError) as e:
        with st.transaction() as w:
            w.put(rec("b"))
            w.remove("bridge.a")
            pg_cluster.restart()
            w.put(rec("c"))
    assert "lost the connection" in str(e.value) and "\n" not in str(e.value)
    snap = open_pg_state(pg_db, "kvm01").read()
    assert set(snap.instances) == {"bridge.a"} and snap.serial == 1


def test_a_dead_server_and_a_bad_sslmode_are_one_line_each(tmp_path, pg_db):
    dead = open_pg_state(f"host={tmp_path} dbname=x connect_timeout=2", "kvm01")
    os.environ["KVMNET_PG_RETRY_SECONDS"] = "0.5"
    try:
        with pytest.raises(StateError, match=r"^cannot connect to the state in PostgreSQL ") as e:
            dead.read()
        assert "\n" not in str(e.value)
        with pytest.raises(StateError, match="cannot connect"):
            dead.lock(EXCLUSIVE, "kvmnet apply")
    finally:
        del os.environ["KVMNET_PG_RETRY_SECONDS"]
    bad = open_pg_state(pg_db + " sslmode=sometimes", "kvm01")
    with pytest.raises(StateError, match=r"connection string is not valid: .*sslmode") as e:
        bad.read()
    assert "\n" not in str(e.value)
    # a valid sslmode reaches libpq, which applies it (over a Unix socket it has no effect)
    assert not open_pg_state(pg_db + " sslmode=prefer", "kvm01").read().exists


def test_a_foreign_or_newer_schema_is_refused_and_left_alone(pg_db):
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE SCHEMA other; CREATE TABLE other.things (x int)")
    with pytest.raises(StateError, match="another program"):
        open_pg_state(pg_db, "kvm01", schema="other").read()
    with pytest.raises(StateError, match="another program"):
        with open_pg_state(pg_db, "kvm01", schema="other").transaction() as w:
            w.put(rec("a"))
    st = open_pg_state(pg_db, "kvm01")
    with st.transaction() as w:
        w.put(rec("a"))
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("UPDATE kvmnet.kvmnet_schema SET format_version = 99")
    with pytest.raises(StateError, match="newer kvmnet .*format 99"):
        open_pg_state(pg_db, "kvm01").read()
    with pytest.raises(StateError, match="schema_name"):
        open_pg_state(pg_db, "kvm01", schema="Bad-Name")


def kvmnet(cfg: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cfg.parent / "cache"), **(env or {}))
    return subprocess.run([*KVMNET, "-C", str(cfg), "--no-color", *args], capture_output=True,
                          text=True, env=e, cwd=str(cfg))


CONFIG = """
kvmnet {{
  backend "pg" {{
    workspace = "kvm01"
  }}
}}

provider "iproute" {{
  netns = "{ns}"
}}

resource "bridge" "lab" {{
  name = "br-pg"
  mtu  = {mtu}
}}
"""


def test_plan_apply_destroy_and_migrate_through_the_cli(ns, pg_db, tmp_path):
    cfg = tmp_path / "kvm01"
    cfg.mkdir()
    (cfg / "main.hcl").write_text(CONFIG.format(ns=ns, mtu=1400))
    env = {"PG_CONN_STR": pg_db}
    r = kvmnet(cfg, "apply", "--auto-approve", env=env)
    assert r.returncode == 0, r.stderr
    assert "mtu 1400" in in_ns(ns, "ip", "link", "show", "br-pg").stdout
    assert not (cfg / "kvmnet.state.db").exists()
    st = open_pg_state(pg_db, "kvm01")
    assert set(st.read().instances) == {"bridge.lab"} and st.history(1)[0].status == "applied"
    assert kvmnet(cfg, "plan", "--detailed-exitcode", env=env).returncode == 0
    r = kvmnet(cfg, "state", "restore", env=env)
    assert r.returncode == 0 and "from its backup rows: serial 1" in r.stdout, r.stderr
    (cfg / "main.hcl").write_text(CONFIG.format(ns=ns, mtu=1300))
    assert kvmnet(cfg, "plan", "--detailed-exitcode", env=env).returncode == 2
    r = kvmnet(cfg, "state", "migrate", "--to", "sqlite", env=env)
    assert r.returncode == 0 and "Migrated" in r.stdout, r.stderr
    assert set(open_state(cfg / "kvmnet.state.db").read().instances) == {"bridge.lab"}
    r = kvmnet(cfg, "destroy", "--auto-approve", env=env)
    assert r.returncode == 0, r.stderr
    assert in_ns(ns, "ip", "link", "show", "br-pg", check=False).returncode != 0
    assert st.read().instances == {}
    # no conn_str and no PG_CONN_STR; a dead server: one Error line, exit 1
    r = kvmnet(cfg, "plan", env={"PG_CONN_STR": ""})
    assert r.returncode == 1 and "PG_CONN_STR" in r.stderr
    r = kvmnet(cfg, "plan", env={"PG_CONN_STR": f"host={tmp_path} dbname=x connect_timeout=1",
                                 "KVMNET_PG_RETRY_SECONDS": "0.3"})
    assert r.returncode == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "cannot connect to the state" in errors[0], r.stderr


HANDOVER = r"""
import os, sys, time
from kvmnet.state import open_pg_state, InstanceRecord
st = open_pg_state(sys.argv[1], "kvm01", lease_seconds=3)
lock = st.lock("exclusive", "kvmnet apply --confirm-timeout 60")
pid = os.fork()
if pid == 0:                      # the confirm waiter: takes the lease over and renews it
    lock.adopt()
    print("WAITER", os.getpid(), lock.id, flush=True)
    time.sleep(5)                 # past the lease: only renewal keeps it
    be = open_pg_state(sys.argv[1], "kvm01")    # its own backend, as the waiter's
    with be.transaction() as w:
        w.put(InstanceRecord("bridge.kept", "bridge", "kept", None, "iproute"))
    print("WROTE", flush=True)
    time.sleep(60)
    os._exit(0)
lock.detach()                     # the foreground process goes away, the lease stays
"""


def test_a_lease_handed_to_a_forked_waiter_stays_held_renewed_and_names_it(pg_db):
    parent = subprocess.Popen([sys.executable, "-c", HANDOVER, pg_db], stdout=subprocess.PIPE,
                              text=True)
    words = parent.stdout.readline().split()
    assert words[0] == "WAITER", words
    waiter, lock_id = int(words[1]), words[2]
    try:
        parent.wait(10)
        st = open_pg_state(pg_db, "kvm01")
        [held] = st.locks()
        assert (held.id, held.pid, held.alive) == (lock_id, waiter, True)
        assert parent.stdout.readline().strip() == "WROTE"
        with pytest.raises(LockError, match=f"pid {waiter} "):
            st.lock(EXCLUSIVE, "kvmnet apply", timeout=0)
        assert "bridge.kept" in st.read().instances
    finally:
        os.kill(waiter, signal.SIGKILL)
    with lock_once_free(st) as lock:   # a dead holder on this host is cleared at once, not after its lease
        assert [s.id for s in lock.stale] == [lock_id]


def test_force_unlock_clears_a_holder_on_another_host_and_the_cli_does_too(pg_db, tmp_path):
    st = open_pg_state(pg_db, "kvm01")
    st.locks()                                           # creates the tables
    with psycopg.connect(pg_db, autocommit=True) as c:
        for lid in ("far-1", "far-2"):
            c.execute("INSERT INTO kvmnet.locks VALUES (%s, 'kvm01', 'exclusive', 'elsewhere', 42, "
                      "'2026-01-01T00:00:00+00:00', 'kvmnet apply', '', 0, "
                      "nextval('kvmnet.lock_tokens'), now() + interval '1 hour')", (lid,))
    assert [(h.id, h.alive) for h in st.locks()] == [("far-1", None), ("far-2", None)]
    with pytest.raises(LockError, match="pid 42 on elsewhere"):
        st.lock(EXCLUSIVE, "kvmnet apply", timeout=0)
    assert st.force_unlock("far-1").host == "elsewhere"
    cfg = tmp_path / "kvm01"
    cfg.mkdir()
    (cfg / "main.hcl").write_text('kvmnet {\n  backend "pg" {}\n}\n')
    r = kvmnet(cfg, "force-unlock", "far-2", env={"PG_CONN_STR": pg_db})
    assert r.returncode == 0, r.stderr
    assert st.locks() == []
    with st.lock(EXCLUSIVE, "kvmnet apply", timeout=0):
        pass
