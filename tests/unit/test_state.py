"""The state store against real SQLite files and real processes (no mocks).

Lock tests start real child processes (``python -c``) that hold a lock while the
test tries to take it; crash tests SIGKILL a child in the middle of writing.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from kvmnet.state import (
    EXCLUSIVE, SHARED, HistoryEntry, InstanceRecord, LockError, StateError,
    StateSnapshot, open_state,
)


def rec(address: str, **attrs) -> InstanceRecord:
    rtype, _, rest = address.partition(".")
    return InstanceRecord(address=address, type=rtype, name=rest.split("[")[0],
                          provider="sysctl", id=rest, attrs=attrs)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "kvmnet.state.db"


@pytest.fixture
def st(state_path: Path):
    backend = open_state(state_path)
    yield backend
    backend.close()


# -- reading a state that does not exist ------------------------------------------

def test_read_of_missing_state_is_empty_and_creates_nothing(st, tmp_path):
    snap = st.read()
    assert snap == StateSnapshot(lineage=None, serial=0, instances={}, exists=False)
    assert st.history() == []
    assert st.locks() == []
    with st.transaction():
        pass                                      # a transaction that writes nothing
    assert list(tmp_path.iterdir()) == []


def test_empty_file_reads_as_no_state(st, state_path):
    state_path.touch()                            # e.g. a crash right after creation
    assert st.read().exists is False
    assert st.history() == []


def test_a_file_that_is_not_sqlite_is_a_clear_error(st, state_path):
    state_path.write_text("this is not a database, it is a plan file\n" * 20)
    with pytest.raises(StateError, match="state .*kvmnet.state.db is not a kvmnet state"):
        st.read()
    with pytest.raises(StateError, match="is not a kvmnet state"):
        st.history()
    with pytest.raises(StateError, match="is not a kvmnet state"):
        with st.transaction() as w:
            w.put(rec("sysctl_profile.a"))


def test_a_state_of_a_newer_format_is_refused(st, state_path):
    with st.transaction() as w:
        w.put(rec("sysctl_profile.a"))
    st.close()
    conn = sqlite3.connect(state_path)
    with conn:
        conn.execute("UPDATE meta SET format_version = 99")
    conn.close()
    with pytest.raises(StateError, match="format 99.*upgrade kvmnet"):
        st.read()
    with pytest.raises(StateError, match="format 99"):
        with st.transaction() as w:
            w.put(rec("sysctl_profile.b"))


# -- creating, lineage, serial ------------------------------------------------------

def test_first_write_creates_file_and_side_files_0600_even_with_open_umask(st, state_path):
    old = os.umask(0)
    try:
        with st.transaction() as w:
            w.put(rec("sysctl_profile.a", settings={"net.ipv4.ip_forward": "1"}))
    finally:
        os.umask(old)
    assert mode_of(state_path) == 0o600
    side = [p for p in state_path.parent.iterdir() if p != state_path]
    assert side, "WAL mode keeps -wal/-shm files while a connection is open"
    for p in side:
        assert mode_of(p) == 0o600, p


def test_existing_file_with_loose_mode_is_tightened_on_write(st, state_path):
    with st.transaction() as w:
        w.put(rec("sysctl_profile.a"))
    st.close()
    os.chmod(state_path, 0o644)
    with st.transaction() as w:
        w.put(rec("sysctl_profile.b"))
    assert mode_of(state_path) == 0o600


def test_new_state_gets_a_lineage_and_serial_counts_changing_transactions(st, state_path):
    with st.transaction() as w:
        lineage = w.lineage
        assert w.serial == 0                      # nothing changed yet
        w.put(rec("sysctl_profile.a"))
        w.put(rec("sysctl_profile.b"))
        assert w.serial == 1
    assert str(uuid.UUID(lineage)) == lineage
    assert w.serial == 1
    snap = st.read()
    assert (snap.lineage, snap.serial, snap.exists) == (lineage, 1, True)
    assert sorted(snap.instances) == ["sysctl_profile.a", "sysctl_profile.b"]

    with st.transaction() as w:
        assert w.remove("sysctl_profile.nope") is False
        w.add_history(HistoryEntry("kvmnet apply"))   # history is not instance state
    assert st.read().serial == 1

    with st.transaction() as w:
        w.put(rec("sysctl_profile.a"))    # identical (a drift repair): still a change
    assert st.read().serial == 2
    with st.transaction() as w:
        w.put(rec("sysctl_profile.a", settings={"vm.swappiness": "10"}))
    with st.transaction() as w:
        assert w.remove("sysctl_profile.b") is True
    snap = st.read()
    assert (snap.lineage, snap.serial) == (lineage, 4)
    assert list(snap.instances) == ["sysctl_profile.a"]

    other = open_state(state_path.parent / "other.db")
    with other.transaction() as w:
        w.put(rec("sysctl_profile.a"))
    assert other.read().lineage != lineage
    other.close()


def test_a_lazy_transaction_commits_without_fsync_and_the_next_durable_one_fsyncs(st, state_path):
    """durable=False: committed (another reader sees it) with synchronous=NORMAL, no
    fsync at its commit; every other transaction, intents included, is FULL."""
    from kvmnet.state.intents import Intent

    def synchronous(w) -> int:
        return w._begin().execute("PRAGMA synchronous").fetchone()[0]

    with st.transaction(durable=False) as w:
        w.put(rec("sysctl_profile.a"))
        assert synchronous(w) == 1                      # NORMAL
    other = open_state(state_path)
    assert list(other.read().instances) == ["sysctl_profile.a"]
    other.close()
    with st.transaction() as w:
        assert synchronous(w) == 2                      # FULL again
    st.record_intents([Intent("sysctl_profile.b", "create", "sysctl_profile", "sysctl")])
    assert st._synchronous == "FULL"


def test_lineage_is_known_before_the_first_change(st):
    """The engine puts the lineage into ownership marks before it creates anything."""
    with st.transaction() as w:
        hid = w.add_history(HistoryEntry("kvmnet apply", serial_before=0))
        lineage = w.lineage
    snap = st.read()
    assert snap.exists and snap.lineage == lineage and snap.serial == 0
    assert st.history()[0].id == hid


# -- records -----------------------------------------------------------------------

def test_records_round_trip_with_their_types(st):
    records = [
        InstanceRecord("network.n[0]", "network", "n", 0, "libvirt", "n0",
                       {"mode": "nat", "autostart": True, "mtu": 1500,
                        "ip": [{"address": "10.1.0.1", "prefix": 24,
                                "dhcp_host": [{"mac": "52:54:00:00:00:01"}]}]},
                       {}, ["bridge.b"]),
        InstanceRecord('network.v["0"]', "network", "v", "0", "libvirt", None, {}, {}, []),
        InstanceRecord("sysctl_profile.p", "sysctl_profile", "p", None, "sysctl",
                       "net.ipv4.ip_forward",
                       {"settings": {"net.ipv4.ip_forward": "1"}, "persist": False},
                       {"original": {"net.ipv4.ip_forward": "0"}}, []),
    ]
    with st.transaction() as w:
        stored = [w.put(r) for r in records]
    got = st.read().instances
    for r, s in zip(records, stored):
        g = got[r.address]
        assert g == s
        assert (g.type, g.name, g.key, g.provider, g.id, g.attrs, g.private,
                g.dependencies) == (r.type, r.name, r.key, r.provider, r.id, r.attrs,
                                    r.private, r.dependencies)
        assert g.created_at and g.created_at == g.updated_at
    assert type(got["network.n[0]"].key) is int and type(got['network.v["0"]'].key) is str
    assert json.loads(json.dumps(st.read().to_dict()))["serial"] == 1
    assert StateSnapshot.from_dict(st.read().to_dict()) == st.read()


def test_put_keeps_created_at_and_moves_updated_at(st):
    with st.transaction() as w:
        first = w.put(rec("sysctl_profile.a", settings={"a.b": "1"}))
    time.sleep(0.01)
    with st.transaction() as w:
        second = w.put(rec("sysctl_profile.a", settings={"a.b": "2"}))
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert st.read().instances["sysctl_profile.a"] == second


def test_a_value_that_is_not_json_is_refused_and_nothing_is_written(st):
    with st.transaction() as w:
        w.put(rec("sysctl_profile.a"))
    before = st.read()
    with pytest.raises(StateError, match="sysctl_profile.b"):
        with st.transaction() as w:
            w.put(rec("sysctl_profile.c"))
            w.put(rec("sysctl_profile.b", settings={"x.y": object()}))
    assert st.read() == before


# -- transactions --------------------------------------------------------------------

def test_exception_rolls_back_and_leaves_the_file_unchanged(st, state_path):
    with st.transaction() as w:
        w.put(rec("sysctl_profile.a"))
        w.add_history(HistoryEntry("kvmnet apply"))
    before = st.read()
    files_before = {p.name: digest(p) for p in state_path.parent.iterdir()}
    with pytest.raises(RuntimeError):
        with st.transaction() as w:
            w.put(rec("sysctl_profile.b"))
            w.remove("sysctl_profile.a")
            w.add_history(HistoryEntry("kvmnet destroy"))
            raise RuntimeError("provider failed")
    assert w.serial == 1
    assert st.read() == before
    assert len(st.history()) == 1
    assert {p.name: digest(p) for p in state_path.parent.iterdir()} == files_before


def test_transactions_do_not_nest(st):
    with st.transaction():
        with pytest.raises(StateError, match="already open"):
            with st.transaction():
                pass


def test_a_write_in_another_process_is_seen_by_the_next_read(st, state_path):
    with st.transaction() as w:
        w.put(rec("sysctl_profile.a"))
    assert st.read().serial == 1
    run_child(CHILD_PUT, state_path, "sysctl_profile.b").check_returncode()
    snap = st.read()
    assert snap.serial == 2 and "sysctl_profile.b" in snap.instances


def test_reading_never_changes_the_state_file(st, state_path):
    with st.transaction() as w:
        for i in range(50):
            w.put(rec(f"sysctl_profile.p[{i}]"))
        w.add_history(HistoryEntry("kvmnet apply"))
    st.close()                                    # checkpoints the WAL into the file
    before = (digest(state_path), state_path.stat().st_mtime_ns)
    reader = open_state(state_path)
    assert len(reader.read().instances) == 50
    assert len(reader.history()) == 1
    with reader.lock(SHARED, "kvmnet plan"):
        reader.read()
    reader.close()
    assert (digest(state_path), state_path.stat().st_mtime_ns) == before


CHILD_WRITE_N = r"""
import sys
from kvmnet.state import open_state, InstanceRecord
st = open_state(sys.argv[1])
for i in range(int(sys.argv[3])):
    with st.transaction() as w:
        w.put(InstanceRecord(f"sysctl_profile.{sys.argv[2]}[{i}]", "sysctl_profile",
                             sys.argv[2], i, "sysctl"))
"""


def test_concurrent_writers_are_serialised(st, state_path):
    """Without the run lock (a bug elsewhere), SQLite still serialises writers."""
    with st.transaction() as w:
        w.put(rec("sysctl_profile.seed"))
    procs = [subprocess.Popen([sys.executable, "-c", CHILD_WRITE_N, str(state_path),
                               name, "100"], stderr=subprocess.PIPE, text=True)
             for name in ("a", "b", "c")]
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    snap = st.read()
    assert len(snap.instances) == 301 and snap.serial == 301


# -- history -------------------------------------------------------------------------

def test_history_add_update_list(st):
    with st.transaction() as w:
        first = w.add_history(HistoryEntry("kvmnet apply", serial_before=0,
                                           snapshot={"sysctl": {"a.b": "0"}}))
        w.put(rec("sysctl_profile.a"))
        w.update_history(first, status="applied", serial_after=1,
                         finished="2025-01-01T00:00:00+00:00", summary="1 added",
                         changes=[{"address": "sysctl_profile.a", "action": "create",
                                   "before": None, "after": {"settings": {}}}])
    with st.transaction() as w:
        second = w.add_history(HistoryEntry("kvmnet destroy", serial_before=1))
    assert second > first
    entries = st.history()
    assert [e.id for e in entries] == [second, first]     # newest first
    e = entries[1]
    assert (e.command, e.status, e.serial_before, e.serial_after, e.summary) == (
        "kvmnet apply", "applied", 0, 1, "1 added")
    assert e.changes[0]["action"] == "create" and e.changes[0]["before"] is None
    assert e.snapshot == {"sysctl": {"a.b": "0"}}
    assert (e.host, e.pid) == (socket.gethostname(), os.getpid())
    assert entries[0].status == "running" and entries[0].finished is None
    assert [x.id for x in st.history(limit=1)] == [second]
    assert HistoryEntry.from_dict(e.to_dict()) == e


def test_history_update_errors(st):
    with st.transaction() as w:
        hid = w.add_history(HistoryEntry("kvmnet apply"))
    with pytest.raises(StateError, match="no history entry 999"):
        with st.transaction() as w:
            w.update_history(999, status="failed")
    with pytest.raises(StateError, match="bogus"):
        with st.transaction() as w:
            w.update_history(hid, bogus=1)
    assert st.history()[0].status == "running"


# -- locking -------------------------------------------------------------------------

CHILD_LOCK = r"""
import sys
from kvmnet.state import open_state
path, mode, command = sys.argv[1:4]
st = open_state(path)
lock = st.lock(mode, command, timeout=float(sys.argv[4]) if len(sys.argv) > 4 else 0)
print("LOCKED", lock.id, flush=True)
sys.stdin.read()            # hold until the test closes our stdin (or kills us)
lock.release()
print("RELEASED", flush=True)
"""

CHILD_PUT = r"""
import sys
from kvmnet.state import open_state, InstanceRecord
st = open_state(sys.argv[1])
with st.transaction() as w:
    w.put(InstanceRecord(sys.argv[2], "sysctl_profile", "b", None, "sysctl"))
"""

CHILD_WRITER = r"""
import sys
from kvmnet.state import open_state, InstanceRecord, HistoryEntry
st = open_state(sys.argv[1])
blob = {"xml": "<network>" + "x" * 20000 + "</network>"}
i = 0
while True:
    with st.transaction() as w:
        hid = w.add_history(HistoryEntry("kvmnet apply", snapshot=blob))
        w.put(InstanceRecord(f"sysctl_profile.p[{i}]", "sysctl_profile", "p", i,
                             "sysctl", attrs={"settings": {"k.v": str(i)}, "pad": blob}))
        w.update_history(hid, status="applied")
    i += 1
    print(i, flush=True)
"""


def run_child(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, text=True, timeout=60)


class Holder:
    """A child process holding a lock until :meth:`stop` or :meth:`kill`."""

    def __init__(self, path: Path, mode: str, command: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_LOCK, str(path), mode, command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["LOCKED"], self.proc.stderr.read()
        self.id = line[1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            assert self.proc.stdout.readline().strip() == "RELEASED"
            self.proc.wait(10)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(path, mode, command):
        h = Holder(path, mode, command)
        started.append(h)
        return h

    yield start
    for h in started:
        if h.proc.poll() is None:
            h.kill()


def test_lock_works_before_the_state_exists_and_never_creates_it(st, state_path):
    with st.lock(EXCLUSIVE, "kvmnet apply") as lock:
        assert lock.mode == EXCLUSIVE and lock.stale == []
        lock_file = Path(str(state_path) + ".lock")
        assert mode_of(lock_file) == 0o600
        [held] = st.locks()
        assert (held.id, held.pid, held.mode, held.command, held.alive) == (
            lock.id, os.getpid(), EXCLUSIVE, "kvmnet apply", True)
        records_dir = Path(str(state_path) + ".lock.d")
        assert mode_of(records_dir) == 0o700
        assert all(mode_of(p) == 0o600 for p in records_dir.iterdir())
    assert not state_path.exists()
    assert st.locks() == []


def test_shared_locks_do_not_block_each_other(st, state_path, holders):
    a = holders(state_path, SHARED, "kvmnet plan")
    b = holders(state_path, SHARED, "kvmnet plan --refresh-only")
    t0 = time.monotonic()
    with st.lock(SHARED, "kvmnet plan", timeout=0) as mine:
        assert time.monotonic() - t0 < 1
        assert {h.id for h in st.locks()} == {a.id, b.id, mine.id}
        assert mine.stale == []


def _assert_names(message: str, holder: Holder, command: str) -> None:
    assert message.startswith("state is locked by ")
    assert (f"{command} (pid {holder.pid} on {socket.gethostname()} since "
            in message)
    assert f"lock ID {holder.id})" in message


def test_exclusive_waits_for_timeout_then_names_every_shared_holder(st, state_path,
                                                                     holders):
    a = holders(state_path, SHARED, "kvmnet plan")
    b = holders(state_path, SHARED, "kvmnet plan --detailed-exitcode")
    t0 = time.monotonic()
    with pytest.raises(LockError) as err:
        st.lock(EXCLUSIVE, "kvmnet apply", timeout=0.5)
    waited = time.monotonic() - t0
    assert 0.5 <= waited < 3
    msg = str(err.value)
    _assert_names(msg, a, "kvmnet plan")
    _assert_names(msg, b, "kvmnet plan --detailed-exitcode")
    assert "since 20" in msg                              # an ISO time
    assert "force-unlock" not in msg                      # live holders: just wait
    assert "--lock-timeout" in msg


def test_shared_is_blocked_by_exclusive_and_timeout_zero_tries_once(st, state_path,
                                                                     holders):
    h = holders(state_path, EXCLUSIVE, "kvmnet apply --auto-approve")
    t0 = time.monotonic()
    with pytest.raises(LockError) as err:
        st.lock(SHARED, "kvmnet plan", timeout=0)
    assert time.monotonic() - t0 < 0.5
    _assert_names(str(err.value), h, "kvmnet apply --auto-approve")
    with pytest.raises(LockError):
        st.lock(EXCLUSIVE, "kvmnet destroy", timeout=0)


def test_a_waiter_gets_the_lock_when_the_holder_releases(st, state_path, holders):
    h = holders(state_path, EXCLUSIVE, "kvmnet apply")
    t0 = time.monotonic()
    import threading
    threading.Timer(0.4, h.stop).start()
    with st.lock(EXCLUSIVE, "kvmnet destroy", timeout=10) as lock:
        assert time.monotonic() - t0 >= 0.3
        assert lock.stale == []                   # released cleanly: no stale record
        assert [x.id for x in st.locks()] == [lock.id]


def test_lock_of_a_killed_holder_is_released_and_reported_stale(st, state_path, holders):
    h = holders(state_path, EXCLUSIVE, "kvmnet apply")
    h.kill()                                      # SIGKILL: no chance to clean up
    [left] = st.locks()
    assert (left.id, left.pid, left.alive) == (h.id, h.pid, False)
    with st.lock(EXCLUSIVE, "kvmnet apply", timeout=0) as lock:
        assert [(s.id, s.pid, s.command) for s in lock.stale] == [
            (h.id, h.pid, "kvmnet apply")]
        assert [x.id for x in st.locks()] == [lock.id]


def test_shared_taker_clears_only_dead_records(st, state_path, holders):
    live = holders(state_path, SHARED, "kvmnet plan")
    dead = holders(state_path, SHARED, "kvmnet plan")
    dead.kill()
    with st.lock(SHARED, "kvmnet plan") as lock:
        assert [s.id for s in lock.stale] == [dead.id]
        assert {x.id for x in st.locks()} == {live.id, lock.id}


def test_force_unlock_refuses_a_live_holder_and_clears_a_dead_one(st, state_path,
                                                                   holders):
    h = holders(state_path, EXCLUSIVE, "kvmnet apply")
    with pytest.raises(LockError, match="live holder is never overridden") as err:
        st.force_unlock(h.id)
    assert f"pid {h.pid}" in str(err.value)
    assert [x.id for x in st.locks()] == [h.id]

    with pytest.raises(LockError) as err:
        st.force_unlock("no-such-id")
    assert "no lock with ID no-such-id" in str(err.value)
    assert h.id in str(err.value)                  # names the known IDs

    h.kill()
    cleared = st.force_unlock(h.id)
    assert cleared.id == h.id and cleared.pid == h.pid
    assert st.locks() == []
    with pytest.raises(LockError, match="no lock is held"):
        st.force_unlock(h.id)


def test_holder_on_another_host_gets_the_force_unlock_hint(st, state_path, holders):
    """Shared storage: a holder record from another host cannot be checked for life."""
    h = holders(state_path, EXCLUSIVE, "kvmnet apply")
    record = Path(str(state_path) + ".lock.d") / f"{h.id}.json"
    data = json.loads(record.read_text())
    data["host"] = "kvm02.example"
    record.write_text(json.dumps(data))
    [seen] = st.locks()
    assert seen.alive is None
    with pytest.raises(LockError) as err:
        st.lock(SHARED, "kvmnet plan", timeout=0)
    assert "on kvm02.example since" in str(err.value)
    assert f"kvmnet force-unlock {h.id}" in str(err.value)
    assert st.force_unlock(h.id).host == "kvm02.example"


def test_reused_pid_does_not_make_a_dead_holder_look_alive(st, state_path):
    """A record naming our own pid but another process start time is stale."""
    records = Path(str(state_path) + ".lock.d")
    records.mkdir(mode=0o700)
    fake = {"id": "f00", "mode": EXCLUSIVE, "host": socket.gethostname(),
            "pid": os.getpid(), "started": "2020-01-01T00:00:00+00:00",
            "command": "kvmnet apply", "pid_start": 1}
    (records / "f00.json").write_text(json.dumps(fake))
    assert st.locks()[0].alive is False
    with st.lock(SHARED, "kvmnet plan") as lock:
        assert [s.id for s in lock.stale] == ["f00"]


CHILD_HANDOVER = r"""
import os, sys, time
from kvmnet.state import open_state
st = open_state(sys.argv[1])
lock = st.lock("exclusive", "kvmnet apply --confirm-timeout 60")
pid = os.fork()
if pid == 0:                      # the waiter that outlives the terminal
    lock.adopt()
    print("WAITER", os.getpid(), lock.id, flush=True)
    time.sleep(60)
    os._exit(0)
lock.detach()                     # the foreground process goes away
"""


def test_a_lock_handed_to_a_forked_waiter_stays_held_and_names_it(st, state_path):
    parent = subprocess.Popen([sys.executable, "-c", CHILD_HANDOVER, str(state_path)],
                              stdout=subprocess.PIPE, text=True)
    words = parent.stdout.readline().split()
    assert words[0] == "WAITER", words
    waiter_pid, lock_id = int(words[1]), words[2]
    try:
        parent.wait(10)
        [held] = st.locks()
        assert (held.id, held.pid, held.alive) == (lock_id, waiter_pid, True)
        with pytest.raises(LockError) as err:
            st.lock(SHARED, "kvmnet plan", timeout=0)
        assert f"pid {waiter_pid} " in str(err.value)
    finally:
        os.kill(waiter_pid, signal.SIGKILL)
    with lock_once_free(st) as lock:     # the waiter is not our child: wait for it to go
        assert [s.id for s in lock.stale] == [lock_id]


def lock_once_free(st, within=10.0):
    """The exclusive lock of ``st``, tried once every 50 ms until its killed holder
    is gone (at most ``within`` seconds); each try clears dead holders itself."""
    deadline = time.monotonic() + within
    while True:
        try:
            return st.lock(EXCLUSIVE, "kvmnet apply", timeout=0)
        except LockError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_lock_in_a_missing_directory_is_a_clear_error(tmp_path):
    st = open_state(tmp_path / "nope" / "kvmnet.state.db")
    with pytest.raises(LockError, match="does not exist"):
        st.lock(SHARED, "kvmnet plan")


def test_dependencies_are_a_set_stored_sorted(st):
    r = rec("bridge.b")
    r.dependencies = {"vlan.v", "network.a"}
    with st.transaction() as w:
        assert w.put(r).dependencies == ["network.a", "vlan.v"]
    r.dependencies = ["vlan.v", "network.a"]
    with st.transaction() as w:
        w.put(r)
    snap = st.read()
    assert snap.instances["bridge.b"].dependencies == ["network.a", "vlan.v"]


def test_lock_mode_is_checked(st):
    with pytest.raises(ValueError):
        st.lock("write", "kvmnet apply")


# -- crash safety ----------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_sigkill_of_a_writer_leaves_a_readable_state_of_committed_transactions(
        state_path, seed):
    rng = random.Random(seed)
    child = subprocess.Popen([sys.executable, "-c", CHILD_WRITER, str(state_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "1", child.stderr.read()
        time.sleep(rng.uniform(0.02, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        reported = [int(x) for x in child.stdout.read().split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reported_commits = max(reported, default=1)
    print("commits reported before the kill:", reported_commits)

    conn = sqlite3.connect(state_path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    st = open_state(state_path)
    snap = st.read()
    # each transaction added exactly one instance and bumped serial once; the kill
    # may land between a commit and the child's report of it
    assert snap.serial == len(snap.instances)
    assert reported_commits <= snap.serial <= reported_commits + 1
    assert sorted(r.key for r in snap.instances.values()) == list(range(snap.serial))
    history = st.history()
    assert len(history) == snap.serial and all(e.status == "applied" for e in history)
    # and the state is writable again
    with st.transaction() as w:
        w.put(rec("sysctl_profile.after"))
    assert st.read().serial == snap.serial + 1
    st.close()


# -- interrupted runs, the last good copy ------------------------------------------------------
def test_mark_interrupted_marks_only_entries_of_dead_processes(st):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with st.transaction() as w:
        gone = w.add_history(HistoryEntry("kvmnet apply", pid=dead.pid))
        mine = w.add_history(HistoryEntry("kvmnet destroy"))       # this process: alive
        done = w.add_history(HistoryEntry("kvmnet apply", pid=dead.pid, status="failed"))
    with st.lock(EXCLUSIVE, "test") as lock:
        marked = st.mark_interrupted(lock)
        assert [e.id for e in marked] == [gone]
        assert st.mark_interrupted(lock) == []                     # nothing left to mark
    by_id = {e.id: e for e in st.history()}
    assert by_id[gone].status == "interrupted" and by_id[gone].finished
    assert f"pid {dead.pid}" in by_id[gone].summary
    assert by_id[mine].status == "running" and by_id[done].status == "failed"


def test_mark_interrupted_needs_the_exclusive_lock(st):
    with st.lock(SHARED, "test") as lock:
        with pytest.raises(StateError, match="exclusive"):
            st.mark_interrupted(lock)


def test_backup_of_no_state_is_none_and_of_a_state_a_readable_copy(st, state_path):
    assert st.backup() is None and not Path(f"{state_path}.backup").exists()
    with st.transaction() as w:
        w.put(rec("sysctl_profile.a"))
    path = st.backup()
    copy = open_state(path).read()
    assert set(copy.instances) == {"sysctl_profile.a"} and copy.serial == 1
    assert os.stat(path).st_mode & 0o777 == 0o600


# -- format 1 (history statuses spelled success / rolled-back) ------------------------
DATA = Path(__file__).parent.parent / "data"


def test_a_format_1_state_reads_its_statuses_in_todays_spelling_and_is_upgraded_on_write(tmp_path):
    """tests/data/v1-networks.state.db: format 1, one history entry ``success``.
    Reading maps the old spelling without writing; the next write transaction
    rewrites the rows and the format, and a finished run is never taken for an
    interrupted one."""
    path = tmp_path / "v1.state.db"
    path.write_bytes((DATA / "v1-networks.state.db").read_bytes())
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO history (command, status, host, pid) "
                     "VALUES ('kvmnet apply', 'rolled-back', 'elsewhere', 1)")
    conn.close()
    before = digest(path)
    st = open_state(path)
    assert [h.status for h in st.history()] == ["rolled back", "applied"]
    assert digest(path) == before
    with st.lock(EXCLUSIVE, "test") as lock:
        assert st.mark_interrupted(lock) == []
        with st.transaction() as w:
            w.put(rec("sysctl_profile.a"))
    st.close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT format_version FROM meta").fetchone()[0] == 2
    assert [r[0] for r in raw.execute("SELECT status FROM history ORDER BY id")] == [
        "applied", "rolled back"]
    raw.close()
    assert [h.status for h in open_state(path).history()] == ["rolled back", "applied"]
