"""v1 compatibility: a state file written by kvmnet's release before issue 11 reads
in today's network shape, and the v1 config it was written from still validates
and canonicalizes to the same attributes.

tests/data/v1-networks.state.db was written by that release (commit e1664c9, the
``main`` this work started from) running ``kvmnet apply`` of tests/data/v1-networks.hcl
against libvirt's test:///default driver; it is data, never rewritten by a test.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from kvmnet.engine.resources import canonical, state_attrs
from kvmnet.state import open_state

DATA = Path(__file__).parent.parent / "data"


def rows(tmp_path):
    copy = tmp_path / "v1.state.db"
    shutil.copy(DATA / "v1-networks.state.db", copy)
    with open_state(copy) as st:
        return st.read().instances


def test_a_v1_state_row_is_upgraded_on_read(tmp_path):
    recs = rows(tmp_path)
    lab = recs["network.lab"]
    assert lab.attrs["mode"] == "nat" and lab.attrs["bridge"] == "virbr7"    # as v1 wrote it
    a = state_attrs(lab)
    assert "mode" not in a and "nat_port_range" not in a and "vlan_tag" not in a
    assert a["forward"] == {"mode": "nat", "nat": {"port": {"start": 2000, "end": 3000}}}
    assert a["bridge"] == {"name": "virbr7"} and a["mtu"] == {"size": 9000}
    assert a["domain"] == {"name": "lab.test"}
    assert a["ip"] == [{"address": "10.77.0.1", "prefix": 24,
                        "dhcp": {"range": [{"start": "10.77.0.100", "end": "10.77.0.200"}],
                                 "host": [{"mac": "52:54:00:aa:00:01", "ip": "10.77.0.10", "name": "web"}]}}]
    assert a["uuid"] == lab.attrs["uuid"] and a["autostart"] is True
    assert canonical("network", a) == a          # already canonical: upgrading is idempotent
    iso = state_attrs(recs["network.iso"])
    assert iso["forward"] == {"mode": "isolated"} and iso["ip"] == [{"address": "10.78.0.1", "prefix": 24}]


def test_the_v1_config_canonicalizes_like_the_upgraded_row(tmp_path):
    """The v1 config's attributes (as the HCL loader gives them: blocks as lists)."""
    v1 = {"name": "lab", "mode": "nat", "bridge": "virbr7", "mtu": 9000, "domain": "lab.test",
          "nat_port_range": [2000, 3000], "autostart": True,
          "ip": [{"address": "10.77.0.1", "prefix": 24,
                  "dhcp_range": [{"start": "10.77.0.100", "end": "10.77.0.200"}],
                  "dhcp_host": [{"mac": "52:54:00:AA:00:01", "ip": "10.77.0.10", "name": "web"}]}]}
    a = state_attrs(rows(tmp_path)["network.lab"])
    want = canonical("network", v1)
    assert {k: v for k, v in a.items() if k not in ("uuid", "active")} == want


def test_the_v1_config_file_validates_unchanged(tmp_path):
    from kvmnet.engine.prepare import prepare
    (tmp_path / "main.hcl").write_text((DATA / "v1-networks.hcl").read_text())
    prepared = prepare(str(tmp_path), use_cache=False)
    assert prepared.diagnostics.errors == []
    lab = next(i for a, i in prepared.instances.items() if a == "network.lab")
    a = canonical("network", lab.attrs)
    assert a["forward"]["nat"]["port"] == {"start": 2000, "end": 3000} and a["ip"][0]["prefix"] == 24
