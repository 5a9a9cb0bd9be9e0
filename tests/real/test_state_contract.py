"""The state interface's contract, run against both backends: SQLite (a temp file)
and PostgreSQL (a fresh database in the throwaway cluster), directly and through a
transaction-mode PgBouncer (``pg-pooled``: every transaction may run in another
server session)."""
from __future__ import annotations

import os
import socket

import pytest

from kvmnet.state import (
    EXCLUSIVE, SHARED, HistoryEntry, InstanceRecord, Intent, LockError, StateError,
    open_pg_state, open_state,
)


@pytest.fixture(params=["sqlite", "pg", "pg-pooled"])
def make(request, tmp_path):
    """A function giving a backend of the same state each call (with an optional
    row check)."""
    opened = []

    def _make(check=None):
        if request.param == "sqlite":
            be = open_state(tmp_path / "kvmnet.state.db", check=check)
        else:
            db = "pg_db" if request.param == "pg" else "pg_pooled_db"
            be = open_pg_state(request.getfixturevalue(db), "kvm01", check=check)
        opened.append(be)
        return be
    yield _make
    for be in opened:
        be.close()


def rec(address: str, **attrs) -> InstanceRecord:
    rtype, name = address.split("[")[0].split(".")[-2:]
    return InstanceRecord(address=address, type=rtype, name=name, provider="iproute",
                          id=name, attrs=attrs or {"mtu": 1500})


def test_a_new_state_is_empty_and_reading_creates_nothing(make):
    st = make()
    snap = st.read()
    assert not snap.exists and snap.serial == 0 and snap.lineage is None
    assert st.history() == [] and st.open_intents() == []
    assert not make().read().exists


def test_lineage_serial_and_records_round_trip(make):
    st = make()
    with st.transaction() as w:
        lineage = w.lineage
        w.put(rec("bridge.a"))
        w.put(InstanceRecord("bridge.t[0]", "bridge", "t", 0, "iproute", None,
                             {"n": [1, 2.5, None, "x\u00e9"]}, {"orig": {"k": True}},
                             ["bridge.z", "bridge.a"]))
        w.put(InstanceRecord('bridge.v["0"]', "bridge", "v", "0", "iproute"))
        assert w.serial == 1
    snap = make().read()
    assert snap.lineage == lineage and snap.serial == 1 and snap.exists
    t = snap.instances["bridge.t[0]"]
    assert t.key == 0 and t.attrs == {"n": [1, 2.5, None, "x\u00e9"]}
    assert t.private == {"orig": {"k": True}} and t.dependencies == ["bridge.a", "bridge.z"]
    assert snap.instances['bridge.v["0"]'].key == "0"
    with st.transaction() as w:
        w.add_history(HistoryEntry("kvmnet apply"))     # history alone: no new serial
    assert st.read().serial == 1
    with st.transaction() as w:
        assert not w.remove("bridge.nope")
    assert st.read().serial == 1
    with st.transaction() as w:
        assert w.remove("bridge.a")
    assert make().read().serial == 2 and "bridge.a" not in make().read().instances


def test_put_keeps_created_at_and_moves_updated_at(make):
    st = make()
    with st.transaction() as w:
        first = w.put(rec("bridge.a"))
    with st.transaction() as w:
        second = w.put(rec("bridge.a", mtu=9000))
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert make().read().instances["bridge.a"].attrs == {"mtu": 9000}


def test_a_value_that_is_not_json_is_refused_and_nothing_is_written(make):
    st = make()
    with pytest.raises(StateError, match="bridge.a"):
        with st.transaction() as w:
            w.put(rec("bridge.ok"))
            w.put(rec("bridge.a", mtu=float("nan")))
    assert not make().read().exists or make().read().instances == {}


def test_an_exception_rolls_the_transaction_back(make):
    st = make()
    with st.transaction() as w:
        w.put(rec("bridge.a"))
    with pytest.raises(RuntimeError):
        with st.transaction() as w:
            w.put(rec("bridge.b"))
            w.remove("bridge.a")
            raise RuntimeError("boom")
    snap = make().read()
    assert set(snap.instances) == {"bridge.a"} and snap.serial == 1


def test_transactions_do_not_nest(make):
    st = make()
    with st.transaction():
        with pytest.raises(StateError, match="already open"):
            with st.transaction():
                pass


def test_history_add_update_list_and_errors(make):
    st = make()
    with st.transaction() as w:
        a = w.add_history(HistoryEntry("kvmnet apply", changes=[{"address": "bridge.a"}]))
        b = w.add_history(HistoryEntry("kvmnet destroy", snapshot={"x": [1]}))
        w.update_history(a, status="applied", serial_after=1, summary="1 added")
    hist = make().history()
    assert [h.id for h in hist] == [b, a] and b > a
    assert hist[1].status == "applied" and hist[1].changes == [{"address": "bridge.a"}]
    assert hist[0].snapshot == {"x": [1]} and hist[0].host == socket.gethostname()
    assert [h.id for h in make().history(1)] == [b]
    with pytest.raises(StateError, match="cannot update history field"):
        with st.transaction() as w:
            w.update_history(a, colour="red")
    with pytest.raises(StateError, match="no history entry"):
        with st.transaction() as w:
            w.update_history(999, status="failed")


def test_intents_are_recorded_and_closed(make):
    st = make()
    ids = st.record_intents([Intent("bridge.a", "create", "bridge", "iproute", {"mark": "m"}),
                             Intent("bridge.b", "delete", "bridge", "iproute")])
    assert [i.address for i in make().open_intents()] == ["bridge.a", "bridge.b"]
    assert make().open_intents()[0].identity == {"mark": "m"}
    with st.transaction() as w:
        assert w.close_intent(ids[0]) and not w.close_intent(12345)
    assert [i.id for i in make().open_intents()] == [ids[1]]
    assert make().read().serial == 0


def test_a_lazy_transaction_is_committed_like_any_other(make):
    """durable=False (a change's result, covered by its intent) only skips the
    flush at commit: the write is committed, seen by a new reader, the serial moves."""
    st = make()
    [iid] = st.record_intents([Intent("bridge.a", "create", "bridge", "iproute")])
    with st.transaction(durable=False) as w:
        w.put(rec("bridge.a"))
        w.close_intent(iid)
    fresh = make()
    assert list(fresh.read().instances) == ["bridge.a"] and fresh.read().serial == 1
    assert fresh.open_intents() == []
    with st.transaction() as w:                  # the next one is durable as before
        w.put(rec("bridge.b"))
    assert make().read().serial == 2


def test_settle_writes_a_result_and_closes_its_intents_at_once(make):
    """A change's result (put, or remove for a delete) and the closing of its
    intents, in the first statement of a transaction (PostgreSQL sends it with
    the BEGIN) or a later one, with and without intents; a rollback undoes both."""
    st = make()
    a, b = st.record_intents([Intent("bridge.a", "create", "bridge", "iproute"),
                              Intent("bridge.a", "update", "bridge", "iproute")])
    [c] = st.record_intents([Intent("bridge.c", "create", "bridge", "iproute")])
    with st.transaction(durable=False) as w:
        w.settle("bridge.a", rec("bridge.a"), [a, b])
        w.settle("bridge.c", rec("bridge.c"), [])
    fresh = make()
    assert sorted(fresh.read().instances) == ["bridge.a", "bridge.c"]
    assert [i.id for i in fresh.open_intents()] == [c] and fresh.read().serial == 1
    with pytest.raises(RuntimeError), st.transaction() as w:
        w.settle("bridge.c", None, [c])
        raise RuntimeError("rolled back")
    assert [i.id for i in make().open_intents()] == [c] and "bridge.c" in make().read().instances
    with st.transaction() as w:
        w.settle("bridge.c", None, [c])
        w.settle("bridge.gone", None, [])        # not there: nothing changes for it
    fresh = make()
    assert list(fresh.read().instances) == ["bridge.a"] and fresh.open_intents() == []
    assert fresh.read().serial == 2


def test_the_first_write_of_a_new_state_under_its_lock(make):
    """Under the lock (so the schema is there) but before any write: the first
    statement cannot travel with the BEGIN on PostgreSQL (the workspace's row is
    not there yet) and is run again alone, once the row is made."""
    st = make()
    lock = st.lock(EXCLUSIVE, "apply")
    try:
        [iid] = st.record_intents([Intent("bridge.a", "create", "bridge", "iproute")])
        with st.transaction(durable=False) as w:
            w.settle("bridge.a", rec("bridge.a"), [iid])
    finally:
        lock.release()
    fresh = make()
    snap = fresh.read()
    assert snap.exists and list(snap.instances) == ["bridge.a"] and snap.serial == 1
    assert fresh.open_intents() == []


def test_outputs_change_the_serial_only_when_they_differ(make):
    st = make()
    with st.transaction() as w:
        w.set_outputs({"a": {"x": 1}, "pw": "s"}, frozenset({"pw"}))
    snap = make().read()
    assert snap.outputs == {"a": {"x": 1}, "pw": "s"} and snap.sensitive_outputs == {"pw"}
    with st.transaction() as w:
        w.set_outputs({"a": {"x": 1}, "pw": "s"}, frozenset({"pw"}))
    assert make().read().serial == snap.serial


def test_the_row_check_names_the_row(make):
    st = make()
    with st.transaction() as w:
        w.put(rec("bridge.a", mtu="big"))
    checked = make(check=lambda r: "attrs.mtu: 'big' is not of type 'integer'"
                   if r.attrs.get("mtu") == "big" else "")
    with pytest.raises(StateError, match=r"in the row of 'bridge.a', attrs.mtu.*state rm bridge.a"):
        checked.read()


def test_shared_locks_coexist_and_exclusive_is_refused_naming_the_holder(make):
    st = make()
    with st.lock(SHARED, "kvmnet plan") as one, make().lock(SHARED, "kvmnet plan -x"):
        with pytest.raises(LockError, match="kvmnet plan"):
            make().lock(EXCLUSIVE, "kvmnet apply", timeout=0.2)
        assert {h.id for h in st.locks()} >= {one.id}
    with make().lock(EXCLUSIVE, "kvmnet apply") as ex:
        with pytest.raises(LockError, match=f"kvmnet apply .*pid {os.getpid()}"):
            make().lock(SHARED, "kvmnet plan", timeout=0)
        with pytest.raises(LockError, match="live process"):
            st.force_unlock(ex.id)
    with pytest.raises(LockError, match="no lock"):
        st.force_unlock("nope")
    assert st.locks() == []


def test_mark_interrupted_marks_entries_of_dead_processes(make):
    st = make()
    with st.transaction() as w:
        dead = w.add_history(HistoryEntry("kvmnet apply", pid=2**22 + 7))
        alive = w.add_history(HistoryEntry("kvmnet apply"))
    with pytest.raises(StateError, match="exclusive"):
        with st.lock(SHARED, "kvmnet plan") as shared:
            st.mark_interrupted(shared)
    with st.lock(EXCLUSIVE, "kvmnet apply") as lock:
        assert [e.id for e in st.mark_interrupted(lock)] == [dead]
    statuses = {h.id: h.status for h in make().history()}
    assert statuses == {dead: "interrupted", alive: "running"}


def test_backup_and_restore_bring_back_the_last_good_copy(make):
    st = make()
    assert st.backup() is None and not make().read().exists
    with st.transaction() as w:
        w.put(rec("bridge.a"))
        w.set_outputs({"o": 1})
    st.backup()
    good = make().read()
    with st.transaction() as w:
        w.remove("bridge.a")
        w.put(rec("bridge.b"))
    with st.lock(EXCLUSIVE, "kvmnet state restore") as lock:
        restored = st.restore(lock, "kvmnet state restore")
    after = make().read()
    assert restored.serial == good.serial == after.serial
    assert set(after.instances) == {"bridge.a"} and after.outputs == {"o": 1}
    assert after.lineage == good.lineage
    assert make().history(1)[0].command == "kvmnet state restore"
