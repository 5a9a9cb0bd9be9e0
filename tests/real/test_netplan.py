"""The netplan provider with the real ``netplan generate`` and the real kernel.

Every test writes under its own ``root_dir`` (tmp_path) and makes its live changes
inside a throw-away namespace; nothing touches the host's /etc/netplan.
"""
from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess

import pytest
import yaml

from kvmnet.sdk.ownership import parse_mark
from kvmnet.engine.resources import canonical
from kvmnet.sdk.provider import Change, Consumer, ProviderError
from kvmnet.sandbox.netns import add_veth, in_ns

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(shutil.which("netplan") is None, reason="netplan.io is not installed"),
]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")

LINEAGE = "11111111-2222-3333-4444-555555555555"


def mark(address):
    return f"kvmnet:{LINEAGE}:{address}"


def bridge(**kw):
    a = {"name": "br-lab", "interfaces": ["p0"], "stp": False, "forward_delay": 4, "mtu": 1400,
         "multicast_snooping": False, "addresses": ["10.9.0.1/24"],
         "routes": [{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}]}
    a.update(kw)
    return canonical("bridge", a)


def vlan(**kw):
    a = {"name": "p1.42", "id": 42, "link": "p1", "mtu": 1400, "addresses": ["10.42.0.1/24"]}
    a.update(kw)
    return canonical("vlan", a)


def run(provider, *changes):
    return list(provider.apply(list(changes)))


def create(rtype, attrs, address):
    return Change("create", rtype, address, None, attrs, mark=mark(address))


def units(root):
    """``netplan generate --root-dir`` of the file: {unit file name: parsed ini}."""
    subprocess.run(["netplan", "generate", "--root-dir", str(root)], check=True, capture_output=True)
    out = {}
    d = root / "run" / "systemd" / "network"
    for f in sorted(d.iterdir()):
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str
        cp.read(f)
        out[f.name] = cp
    return out


@pytest.fixture
def file_only(tmp_path):
    from kvmnet.providers.netplan import NetplanProvider
    p = NetplanProvider({"root_dir": str(tmp_path), "apply": False})
    yield p
    p.close()


@pytest.fixture
def ports(ns):
    for i in range(3):
        add_veth(ns, f"p{i}", f"q{i}")
    return ns


@pytest.fixture
def live(ports, tmp_path):
    from kvmnet.providers.netplan import NetplanProvider
    p = NetplanProvider({"root_dir": str(tmp_path), "netns": ports})
    yield p
    p.close()


# -- rendering through the real netplan generate (no kernel needed) ---------------

def test_bridge_and_vlan_render_to_networkd_units(file_only, tmp_path):
    run(file_only, create("bridge", bridge(dhcp4=False, nameservers=["10.9.0.53"]), "bridge.lab"),
        create("vlan", vlan(), "vlan.v42"))
    path = tmp_path / "etc" / "netplan" / "90-kvmnet.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert mark("bridge.lab") in path.read_text()
    u = units(tmp_path)
    assert u["10-netplan-br-lab.netdev"]["NetDev"]["Kind"] == "bridge"
    assert u["10-netplan-br-lab.netdev"]["NetDev"]["MTUBytes"] == "1400"
    assert u["10-netplan-br-lab.netdev"]["Bridge"]["STP"] == "false"
    assert u["10-netplan-br-lab.netdev"]["Bridge"]["ForwardDelaySec"] == "4"
    net = u["10-netplan-br-lab.network"]
    assert net["Network"]["Address"] == "10.9.0.1/24" and net["Network"]["DNS"] == "10.9.0.53"
    assert net["Route"]["Destination"] == "10.8.0.0/24" and net["Route"]["Gateway"] == "10.9.0.254"
    assert net["Route"]["Metric"] == "50"
    assert u["10-netplan-p0.network"]["Network"]["Bridge"] == "br-lab"
    assert u["10-netplan-p1.42.netdev"]["NetDev"]["Kind"] == "vlan"
    assert u["10-netplan-p1.42.netdev"]["VLAN"]["Id"] == "42"
    assert u["10-netplan-p1.42.network"]["Network"]["Address"] == "10.42.0.1/24"
    assert u["10-netplan-p1.network"]["Network"]["VLAN"] == "p1.42"


def test_file_only_read_back(file_only):
    res = run(file_only, create("bridge", bridge(multicast_snooping=None), "bridge.lab"),
              create("vlan", vlan(), "vlan.v42"))
    assert [r.attrs["name"] for r in res] == ["br-lab", "p1.42"]
    b = file_only.read("bridge", [])["br-lab"]
    assert b.mark == parse_mark(mark("bridge.lab"))
    assert b.attrs == dict(bridge(multicast_snooping=None), dhcp4=None, nameservers=None)
    v = file_only.read("vlan", [])["p1.42"]
    assert v.attrs == dict(vlan(), dhcp4=None, nameservers=None) and v.mark.address == "vlan.v42"


def test_file_only_rejects_multicast_snooping(file_only):
    assert [a for a, _ in file_only.check("bridge", "bridge.lab", bridge())] == ["multicast_snooping"]
    assert file_only.check("bridge", "bridge.lab", bridge(multicast_snooping=None)) == []


def test_a_port_defined_in_another_netplan_file_is_not_redeclared(file_only, tmp_path):
    other = tmp_path / "etc" / "netplan" / "50-cloud-init.yaml"
    other.parent.mkdir(parents=True)
    other.write_text("network:\n  version: 2\n  ethernets:\n    p0:\n      dhcp4: true\n")
    other.chmod(0o600)
    run(file_only, create("bridge", bridge(multicast_snooping=None), "bridge.lab"))
    doc = yaml.safe_load((tmp_path / "etc" / "netplan" / "90-kvmnet.yaml").read_text())
    assert "ethernets" not in doc["network"]
    assert units(tmp_path)["10-netplan-p0.network"]["Network"]["Bridge"] == "br-lab"


@pytest.mark.parametrize("which", ["50-other.yaml", "90-kvmnet.yaml"])
@pytest.mark.parametrize("kind", ["FIFO (named pipe)", "directory", "character device"])
def test_a_netplan_file_that_is_not_a_regular_file_is_refused_unread(file_only, tmp_path, which, kind):
    """A FIFO among the netplan files once blocked the apply for good (holding the
    state lock); now any non-regular file is one ProviderError naming it, and
    nothing is written."""
    import threading
    path = tmp_path / "etc" / "netplan" / which
    path.parent.mkdir(parents=True)
    if kind.startswith("FIFO"):
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    outcome: list = []

    def attempt():
        try:
            run(file_only, create("bridge", bridge(multicast_snooping=None), "bridge.lab"))
            outcome.append(None)
        except ProviderError as e:
            outcome.append(e)
    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout=20)
    if t.is_alive() and kind.startswith("FIFO"):
        try:                                # unblock the reader before failing
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    assert not t.is_alive() and outcome, "the apply must not block on the file"
    assert isinstance(outcome[0], ProviderError), outcome
    assert str(outcome[0]) == f"{path} is a {kind}, not a netplan file: move it away and run kvmnet again"
    assert sorted(p.name for p in path.parent.iterdir()) == [which]


def test_a_broken_render_keeps_the_old_file_and_gives_netplans_message(file_only, tmp_path):
    run(file_only, create("bridge", bridge(multicast_snooping=None), "bridge.lab"))
    path = tmp_path / "etc" / "netplan" / "90-kvmnet.yaml"
    old = path.read_text()
    bad = bridge(multicast_snooping=None, addresses=["10.300.1.1/24"])
    with pytest.raises(ProviderError) as e:
        run(file_only, Change("update", "bridge", "bridge.lab", bridge(), bad, mark=mark("bridge.lab")))
    msg = str(e.value)
    assert "netplan generate rejected" in msg and "10.300.1.1" in msg
    assert f"{path}:" in msg                      # file:line:col of the real path, not the scratch copy
    assert path.read_text() == old


def test_a_hand_edited_file_is_drift_and_an_update_restores_it(file_only, tmp_path):
    run(file_only, create("bridge", bridge(multicast_snooping=None), "bridge.lab"))
    path = tmp_path / "etc" / "netplan" / "90-kvmnet.yaml"
    path.write_text(path.read_text().replace("mtu: 1400", "mtu: 9000"))
    assert file_only.read("bridge", [])["br-lab"].attrs["mtu"] == 9000
    run(file_only, Change("update", "bridge", "bridge.lab", bridge(), bridge(multicast_snooping=None),
                          mark=mark("bridge.lab")))
    assert file_only.read("bridge", [])["br-lab"].attrs["mtu"] == 1400


def test_deleting_the_last_object_removes_the_file(file_only, tmp_path):
    run(file_only, create("bridge", bridge(multicast_snooping=None), "bridge.lab"),
        create("vlan", vlan(), "vlan.v42"))
    path = tmp_path / "etc" / "netplan" / "90-kvmnet.yaml"
    run(file_only, Change("delete", "vlan", "vlan.v42", vlan(), None))
    assert "p1.42" not in path.read_text() and "br-lab" in path.read_text()
    run(file_only, Change("delete", "bridge", "bridge.lab", bridge(), None))
    assert not path.exists()
    assert file_only.read("bridge", []) == {}


def test_a_foreign_file_entry_has_no_mark(file_only, tmp_path):
    path = tmp_path / "etc" / "netplan" / "90-kvmnet.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("network:\n  version: 2\n  bridges:\n    br-hand:\n      interfaces: []\n")
    assert file_only.read("bridge", [])["br-hand"].mark is None


# -- live and persistent, in a namespace ------------------------------------------

@needs_root
def test_create_is_live_and_in_the_file(live, ports, tmp_path):
    run(live, create("bridge", bridge(nameservers=["10.9.0.53"]), "bridge.lab"))
    obj = live.read("bridge", ["br-lab"])["br-lab"]
    assert obj.attrs == dict(bridge(), nameservers=["10.9.0.53"], dhcp4=None)
    assert obj.mark == parse_mark(mark("bridge.lab"))
    doc = yaml.safe_load((tmp_path / "etc" / "netplan" / "90-kvmnet.yaml").read_text())
    assert doc["network"]["bridges"]["br-lab"]["interfaces"] == ["p0"]
    assert "p0" in doc["network"]["ethernets"]
    assert in_ns(ports, "ip", "-d", "link", "show", "br-lab").stdout.count(mark("bridge.lab")) == 1


@needs_root
def test_kernel_drift_is_read(live, ports):
    run(live, create("bridge", bridge(), "bridge.lab"))
    in_ns(ports, "ip", "link", "set", "br-lab", "mtu", "1280")
    in_ns(ports, "ip", "link", "set", "p1", "master", "br-lab")
    attrs = live.read("bridge", ["br-lab"])["br-lab"].attrs
    assert attrs["mtu"] == 1280 and attrs["interfaces"] == ["p0", "p1"]


@needs_root
def test_file_drift_is_read_while_the_kernel_is_unchanged(live, tmp_path):
    run(live, create("bridge", bridge(), "bridge.lab"))
    path = tmp_path / "etc" / "netplan" / "90-kvmnet.yaml"
    path.write_text(path.read_text().replace("- p0", "- p2"))
    attrs = live.read("bridge", ["br-lab"])["br-lab"].attrs
    assert attrs["interfaces"] == ["p2"] and attrs["mtu"] == 1400


@needs_root
def test_update_changes_kernel_and_file_and_multicast_snooping_stays_live_only(live, ports, tmp_path):
    run(live, create("bridge", bridge(), "bridge.lab"))
    after = bridge(interfaces=["p1", "p2"], mtu=1300, stp=True, multicast_snooping=True, addresses=["10.9.0.2/24"],
                   routes=[])
    run(live, Change("update", "bridge", "bridge.lab", bridge(), after, mark=mark("bridge.lab")))
    assert live.read("bridge", ["br-lab"])["br-lab"].attrs == dict(after, dhcp4=None, nameservers=None)
    text = (tmp_path / "etc" / "netplan" / "90-kvmnet.yaml").read_text()
    assert "snooping" not in text and "p2" in text


@needs_root
def test_an_object_live_but_missing_from_the_file_reads_as_not_persisted(live, ports, tmp_path):
    run(live, create("bridge", bridge(), "bridge.lab"))
    (tmp_path / "etc" / "netplan" / "90-kvmnet.yaml").unlink()
    obj = live.read("bridge", ["br-lab"])["br-lab"]
    assert obj.mark == parse_mark(mark("bridge.lab"))          # from the link's alias
    assert obj.attrs["interfaces"] is None and obj.attrs["mtu"] is None


@needs_root
def test_a_failed_live_change_writes_the_file_for_what_succeeded(live, ports, tmp_path):
    good = create("bridge", bridge(), "bridge.lab")
    bad = create("bridge", bridge(name="br-bad", interfaces=["no-such-port"], addresses=[], routes=[]), "bridge.bad")
    results = []
    with pytest.raises(ProviderError, match="no-such-port"):
        for r in live.apply([good, bad]):
            results.append(r)
    assert [r.change.address for r in results] == ["bridge.lab"]
    text = (tmp_path / "etc" / "netplan" / "90-kvmnet.yaml").read_text()
    assert "br-lab" in text and "br-bad" not in text


@needs_root
def test_destroy_releases_ports_and_removes_the_entry(live, ports, tmp_path):
    run(live, create("bridge", bridge(), "bridge.lab"))
    in_ns(ports, "ip", "link", "set", "p2", "master", "br-lab")
    assert live.consumers("bridge", bridge()) == [Consumer("port", "p2", "enslaved", None)]
    in_ns(ports, "ip", "link", "set", "p2", "nomaster")
    run(live, Change("delete", "bridge", "bridge.lab", bridge(), None))
    assert live.read("bridge", ["br-lab"]) == {}
    assert not (tmp_path / "etc" / "netplan" / "90-kvmnet.yaml").exists()
    assert "master" not in in_ns(ports, "ip", "-j", "link", "show", "p0").stdout


@needs_root
def test_a_netplan_error_changes_nothing_live(live, ports, tmp_path):
    with pytest.raises(ProviderError, match="netplan generate rejected"):
        run(live, create("bridge", bridge(addresses=["10.300.1.1/24"]), "bridge.lab"))
    assert live.read("bridge", ["br-lab"]) == {}
    assert not (tmp_path / "etc" / "netplan" / "90-kvmnet.yaml").exists()
