"""Intents in the SQLite state: recorded and committed on their own, closed inside
the write transaction of the result, listed while open."""
from __future__ import annotations

import sqlite3

import pytest

from kvmnet.state import Intent, InstanceRecord, StateError, open_state


def rec(address="bridge.br0"):
    return InstanceRecord(address, "bridge", "br0", None, "iproute", "br0", {"name": "br0"}, {}, [])


def test_a_recorded_intent_is_open_until_closed_with_the_state_write(tmp_path):
    be = open_state(tmp_path / "s.db")
    assert be.open_intents() == []          # no file, no table: nothing open
    (iid,) = be.record_intents([Intent("bridge.br0", "create", "bridge", "iproute",
                                       {"id": "br0", "parts": {"temp": "kvt1"}})])
    serial = be.read().serial
    (it,) = be.open_intents()
    assert (it.id, it.address, it.identity["parts"]) == (iid, "bridge.br0", {"temp": "kvt1"})
    assert it.created
    with be.transaction() as w:
        w.put(rec())
        assert w.close_intent(iid) is True
    assert be.open_intents() == []
    assert be.read().serial == serial + 1   # the put counts, recording an intent does not


def test_closing_rolls_back_with_its_transaction(tmp_path):
    be = open_state(tmp_path / "s.db")
    iid = be.record_intent(Intent("bridge.br0", "create", "bridge", "iproute", {"id": "br0"}))
    with pytest.raises(RuntimeError):
        with be.transaction() as w:
            w.put(rec())
            w.close_intent(iid)
            raise RuntimeError("killed")
    assert [i.id for i in be.open_intents()] == [iid]
    assert be.read().instances == {}


def test_closing_in_a_state_without_the_table_is_a_no_op(tmp_path):
    be = open_state(tmp_path / "s.db")
    with be.transaction() as w:
        w.put(rec())
        assert w.close_intent(1) is False


def test_a_damaged_identity_is_a_state_error(tmp_path):
    be = open_state(tmp_path / "s.db")
    be.record_intent(Intent("bridge.br0", "create", "bridge", "iproute", {"id": "br0"}))
    be.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        db.execute("UPDATE intents SET identity = '[1'")
    with pytest.raises(StateError, match="damaged identity"):
        open_state(tmp_path / "s.db").open_intents()
