"""State rows against their type's JSON Schema (engine/state_rows.py), with the
built-in types' schemas; the CLI's side is in tests/faults/test_state_faults.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kvmnet.engine.state_rows import row_problem, state_schema
from kvmnet.state import InstanceRecord, StateError, open_state

DATA = Path(__file__).parent.parent / "data"

NETWORK = {"name": "lab", "uuid": "00000000-0000-0000-0000-000000000001", "active": True,
           "autostart": True, "bridge": {"name": "virbr7"}, "forward": {"mode": "nat"},
           "mtu": None,
           "ip": [{"address": "10.0.0.1", "prefix": 24,
                   "dhcp": {"range": [{"start": "10.0.0.100", "end": "10.0.0.200"}],
                            "host": [{"mac": "52:54:00:00:00:10", "ip": "10.0.0.10"}]}}]}


def network(**attrs) -> InstanceRecord:
    return InstanceRecord(address="network.lab", type="network", name="lab", provider="libvirt",
                          attrs={**NETWORK, **attrs})


def test_a_row_in_the_canonical_form_fits():
    """Single blocks stored as themselves, computed uuid, a null: all fine."""
    assert row_problem(network()) == ""


def test_every_row_of_the_format_1_fixture_fits():
    """Rows an older release wrote are checked in today's shape (their upgrade)."""
    snap = open_state(DATA / "v1-networks.state.db").read()
    assert snap.instances
    assert {a: row_problem(r) for a, r in snap.instances.items()} == dict.fromkeys(snap.instances, "")


@pytest.mark.parametrize("attrs,problem", [
    ({"forward": {"mode": "natt"}}, "attrs.forward.mode: 'natt' is not one of"),
    ({"mtu": {"size": 10}}, "attrs.mtu.size: 10 is less than the minimum of 68"),
    ({"ip": [{"address": 5}]}, "attrs.ip[0].address: 5 is not of type 'string'"),
    ({"ip": [{"address": "10.0.0.1", "dhcp": {"host": [{"mac": 1, "ip": "10.0.0.9"}]}}]},
     "attrs.ip[0].dhcp.host[0].mac: 1 is not of type 'string'"),
    ({"colour": "red"}, "attrs.colour: network has no such attribute"),
    ({"name": 7}, "attrs.name: 7 is not of type 'string'"),
])
def test_a_row_that_does_not_fit_names_the_json_path(attrs, problem):
    assert row_problem(network(**attrs)).startswith(problem)


def test_a_row_whose_upgrade_fails_is_a_problem_not_a_traceback():
    got = row_problem(network(ip="10.0.0.1/24"))
    assert got.startswith("attrs"), got


def test_a_row_of_a_type_no_provider_serves_is_not_checked():
    rec = InstanceRecord(address="gizmo.g", type="gizmo", name="g", provider="gizmo",
                         attrs={"anything": [1, {"at": "all"}]})
    assert row_problem(rec) == ""


def test_state_schema_accepts_a_single_block_as_itself_and_computed_attributes():
    schema = {"type": "object", "additionalProperties": False, "properties": {
        "b": {"type": "array", "maxItems": 1, "items": {"$ref": "#/$defs/b"}},
        "many": {"type": "array", "items": {"$ref": "#/$defs/b"}}},
        "$defs": {"b": {"type": "object", "additionalProperties": False, "required": ["x"],
                        "properties": {"x": {"type": "integer"}}}}}
    from jsonschema import Draft202012Validator
    v = Draft202012Validator(state_schema(schema, frozenset({"uuid"})))
    assert v.is_valid({"b": {"x": 1}, "uuid": "u"}) and v.is_valid({"b": [{"x": 1}]})
    assert not v.is_valid({"b": {"y": 1}}) and not v.is_valid({"many": {"x": 1}})
    assert schema["properties"]["b"]["type"] == "array"          # the type's own schema is untouched


def test_the_store_reports_the_first_row_that_does_not_fit_and_checks_each_row_once(tmp_path):
    path = tmp_path / "s.db"
    shutil.copy(DATA / "v1-networks.state.db", path)
    calls: list[str] = []

    def check(rec):
        calls.append(rec.address)
        return "attrs.x: wrong" if rec.attrs.get("x") else ""

    st = open_state(path, check=check)
    n = len(st.read().instances)
    st.read()
    assert len(calls) == n                    # the second read checks nothing again
    with st.transaction() as w:
        w.put(InstanceRecord(address="bridge.z", type="bridge", name="z", provider="iproute",
                             attrs={"x": 1}))
    with pytest.raises(StateError, match=r"in the row of 'bridge.z', attrs.x: wrong; .*"
                                         r"kvmnet state rm bridge.z"):
        st.read()
    assert open_state(path).read().instances["bridge.z"].attrs == {"x": 1}   # unchecked: read
