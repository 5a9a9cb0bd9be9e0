"""The state keeps the output values an apply leaves (the ``outputs`` table)."""
from __future__ import annotations

import sqlite3

import pytest

from kvmnet.state import StateError, open_state


def test_outputs_round_trip_and_change_the_serial_only_when_they_change(tmp_path):
    st = open_state(tmp_path / "s.db")
    assert st.read().outputs == {}
    with st.transaction() as w:
        w.set_outputs({"b": [1, "x"], "a": {"k": True}}, frozenset({"a"}))
    snap = st.read()
    assert snap.outputs == {"a": {"k": True}, "b": [1, "x"]} and snap.sensitive_outputs == {"a"}
    serial = snap.serial
    with st.transaction() as w:
        w.set_outputs({"b": [1, "x"], "a": {"k": True}}, frozenset({"a"}))
    assert st.read().serial == serial               # the same values: no change
    with st.transaction() as w:
        w.set_outputs({})
    snap = st.read()
    assert snap.outputs == {} and snap.serial == serial + 1
    assert snap.to_dict()["outputs"] == {}


def test_a_state_without_the_outputs_table_has_none(tmp_path):
    st = open_state(tmp_path / "s.db")
    with st.transaction() as w:
        w.lineage                                   # creates the state, no outputs table
    assert st.read().exists and st.read().outputs == {}


def test_a_damaged_outputs_row_is_one_clear_error(tmp_path):
    st = open_state(tmp_path / "s.db")
    with st.transaction() as w:
        w.set_outputs({"a": 1})
    st.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE outputs SET value = 'not json'")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="damaged"):
        open_state(tmp_path / "s.db").read()


def test_a_value_that_is_not_json_is_refused(tmp_path):
    st = open_state(tmp_path / "s.db")
    with pytest.raises(StateError, match="outputs"):
        with st.transaction() as w:
            w.set_outputs({"a": float("nan")})
