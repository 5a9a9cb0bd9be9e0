"""A state file caught mid-checkpoint is not called truncated.

SQLite's checkpoint writes page 1 (with the database's new size) before the pages
that extend the file, then removes the write-ahead log; one look at the file that
straddles it sees a header promising more pages than the file holds and no log."""
from __future__ import annotations

import threading

import pytest

from kvmnet.state import open_state
from kvmnet.state.backend import StateError
from kvmnet.state.faults import DATABASE, inspect_path
from kvmnet.state.records import InstanceRecord


def _full_state(tmp_path) -> bytes:
    path = tmp_path / "full.db"
    st = open_state(str(path))
    with st.lock("exclusive", "test"), st.transaction() as w:
        for i in range(30):
            w.put(InstanceRecord(address=f"bridge.b{i}", type="bridge", name=f"b{i}", key=None,
                                 provider="iproute", id=f"b{i}", attrs={"name": f"b{i}", "pad": "x" * 400}))
    st.close()
    data = path.read_bytes()
    assert len(data) > 4096 * 2
    return data


def test_a_file_that_grows_to_its_header_while_being_looked_at_is_a_database(tmp_path):
    data = _full_state(tmp_path)
    path = tmp_path / "s.db"
    path.write_bytes(data[:4096])              # page 1 written, the rest not yet
    grow = threading.Timer(0.03, path.write_bytes, (data,))
    grow.start()
    try:
        assert inspect_path(str(path)) == DATABASE
    finally:
        grow.join()


def test_a_file_that_stays_short_is_truncated(tmp_path):
    data = _full_state(tmp_path)
    path = tmp_path / "s.db"
    path.write_bytes(data[:4096])
    with pytest.raises(StateError, match=r"is truncated \(4096 bytes of \d+\)"):
        inspect_path(str(path))
