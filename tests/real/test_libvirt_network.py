"""The libvirt provider's ``network`` against a real libvirtd in a network namespace."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from kvmnet.engine.resources import canonical
from kvmnet.sdk.provider import Change, ProviderError

LINEAGE = str(uuid.uuid4())


def mark(address: str) -> str:
    return f"kvmnet:{LINEAGE}:{address}"


@pytest.fixture
def prov(libvirt):
    from kvmnet.providers.libvirt import LibvirtProvider
    p = LibvirtProvider({"uri": libvirt.uri})
    yield p
    p.close()


def apply(p, action, before, after, address="network.t"):
    (res,) = list(p.apply([Change(action, "network", address, before, after, mark=mark(address))]))
    return res.attrs


def nat(name="t1", bridge="kvt1", net="10.31.0", hosts=(), ranges=None, **kw):
    return dict(name=name, mode="nat", bridge=bridge, autostart=True, **kw,
                ip=[dict(address=f"{net}.1", prefix=24,
                         dhcp_range=ranges if ranges is not None else [dict(start=f"{net}.100", end=f"{net}.200")],
                         dhcp_host=[dict(h) for h in hosts])])


def mode(a):
    return a["forward"]["mode"]


def bridge(a):
    return (a.get("bridge") or {}).get("name")


def dhcp(a, section, ip=0):
    """The ``ip``-th ip block's DHCP ``range``/``host`` entries."""
    return ((a["ip"][ip].get("dhcp") or {}).get(section)) or []


def addr_of(sb, ifname):
    out = json.loads(sb.ip("-j", "addr", "show", "dev", ifname).stdout)
    return [f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"] if a["family"] == "inet"]


def dnsmasq_for(sb, name):
    conf = f"--conf-file=/var/lib/libvirt/dnsmasq/{name}.conf"
    return [c for c in sb.process_cmdlines() if c and c[0].endswith("dnsmasq") and conf in c]


def hostsfile(sb, name):
    p = sb.host_path(f"/var/lib/libvirt/dnsmasq/{name}.hostsfile")
    return sorted(p.read_text().split()) if p.exists() else []


def test_nat_network_creates_bridge_dnsmasq_and_reads_back(libvirt, prov):
    attrs = apply(prov, "create", None, nat(nat_port_range=[2000, 3000], mtu=1400, domain="lab.test"))
    assert attrs["uuid"] and attrs["active"] is True and attrs["autostart"] is True
    assert bridge(attrs) == "kvt1"
    assert attrs["bridge"]["stp"] is True and attrs["bridge"]["delay"] == 0     # libvirt's defaults, read back
    assert canonical("network", attrs) == attrs
    # the real bridge with the gateway address, and a real dnsmasq, in the sandbox netns
    assert addr_of(libvirt, "kvt1") == ["10.31.0.1/24"]
    assert dnsmasq_for(libvirt, "t1"), libvirt.process_cmdlines()
    live = prov.read("network", ["t1"])["t1"]
    assert live.attrs == attrs
    assert live.mark.lineage == LINEAGE and live.mark.address == "network.t"
    assert live.attrs["forward"] == {"mode": "nat", "nat": {"port": {"start": 2000, "end": 3000}}}
    assert live.attrs["mtu"] == {"size": 1400} and live.attrs["domain"] == {"name": "lab.test"}
    assert live.attrs["ip"] == [{"address": "10.31.0.1", "prefix": 24,
                                 "dhcp": {"range": [{"start": "10.31.0.100", "end": "10.31.0.200"}]}}]
    assert live.attrs["kept"] == []


def test_route_isolated_and_bridge_modes(libvirt, prov):
    libvirt.ip("link", "add", "kvhost0", "type", "bridge")
    try:
        route = apply(prov, "create", None, dict(name="r1", mode="route", bridge="kvr1",
                                                 ip=[dict(address="10.32.0.1", prefix=24)]))
        iso = apply(prov, "create", None, dict(name="i1", mode="isolated",
                                               ip=[dict(address="10.33.0.1", netmask="255.255.255.0",
                                                        dhcp_range=[dict(start="10.33.0.10", end="10.33.0.20")])]))
        br = apply(prov, "create", None, dict(name="b1", mode="bridge", bridge="kvhost0"))
        assert (mode(route), route["active"], bridge(route)) == ("route", True, "kvr1")
        assert addr_of(libvirt, "kvr1") == ["10.32.0.1/24"]
        assert mode(iso) == "isolated" and bridge(iso).startswith("virbr")  # libvirt picked it
        assert iso["ip"][0]["prefix"] == 24 and addr_of(libvirt, bridge(iso)) == ["10.33.0.1/24"]
        assert (mode(br), bridge(br), br.get("ip"), br["active"]) == ("bridge", "kvhost0", None, True)
        got = prov.read("network", [])
        assert {n: mode(got[n].attrs) for n in ("r1", "i1", "b1")} == {"r1": "route", "i1": "isolated", "b1": "bridge"}
        # a bridge-mode network is a consumer of its host bridge
        cons = prov.consumers("bridge", {"name": "kvhost0"})
        assert [(c.kind, c.name, c.via) for c in cons] == [("network", "b1", ("network", "b1"))]
    finally:
        libvirt.clean()
        libvirt.ip("link", "del", "kvhost0", check=False)


def test_dhcp_hosts_and_ranges_update_in_place(libvirt, prov):
    web = dict(mac="52:54:00:aa:00:01", ip="10.34.0.10", name="web")
    db = dict(mac="52:54:00:aa:00:02", ip="10.34.0.11", name="db")
    a0 = apply(prov, "create", None, nat("t2", "kvt2", "10.34.0", hosts=[web]))
    uuid0 = a0["uuid"]
    pids0 = [c for c in dnsmasq_for(libvirt, "t2")]
    assert hostsfile(libvirt, "t2") == ["52:54:00:aa:00:01,10.34.0.10,web"]

    # add one, modify one
    a1 = apply(prov, "update", a0, nat("t2", "kvt2", "10.34.0",
                                       hosts=[dict(web, ip="10.34.0.20"), db]))
    assert a1["uuid"] == uuid0
    assert hostsfile(libvirt, "t2") == ["52:54:00:aa:00:01,10.34.0.20,web", "52:54:00:aa:00:02,10.34.0.11,db"]
    assert {h["mac"]: h["ip"] for h in dhcp(a1, "host")} == {web["mac"]: "10.34.0.20", db["mac"]: "10.34.0.11"}

    # remove one, change the range; the network stays up with the same UUID
    a2 = apply(prov, "update", a1, nat("t2", "kvt2", "10.34.0", hosts=[db],
                                       ranges=[dict(start="10.34.0.50", end="10.34.0.60")]))
    assert a2["uuid"] == uuid0 and a2["active"] is True
    assert hostsfile(libvirt, "t2") == ["52:54:00:aa:00:02,10.34.0.11,db"]
    assert dhcp(a2, "range") == [{"start": "10.34.0.50", "end": "10.34.0.60"}]
    conf = libvirt.host_path("/var/lib/libvirt/dnsmasq/t2.conf").read_text()
    assert "dhcp-range=10.34.0.50,10.34.0.60" in conf
    assert dnsmasq_for(libvirt, "t2") and pids0
    # live and saved agree: nothing is reported as drift
    live = prov.read("network", ["t2"])["t2"]
    assert live.attrs == a2
    conn = libvirt.connect()
    try:
        import libvirt as lv
        net = conn.networkLookupByName("t2")
        assert "10.34.0.50" in net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)
        assert "10.34.0.50" in net.XMLDesc(0)
    finally:
        conn.close()


def test_autostart_toggles_in_place(libvirt, prov):
    a0 = apply(prov, "create", None, nat("t3", "kvt3", "10.35.0"))
    a1 = apply(prov, "update", a0, dict(nat("t3", "kvt3", "10.35.0"), autostart=False))
    assert a1["autostart"] is False and a1["uuid"] == a0["uuid"] and a1["active"] is True
    assert "no" in libvirt.virsh("net-info", "t3").stdout.split("Autostart:")[1].split("\n")[0]
    a2 = apply(prov, "update", a1, nat("t3", "kvt3", "10.35.0"))
    assert a2["autostart"] is True


def test_live_only_update_shows_as_drift_and_update_repairs_it(libvirt, prov):
    want = nat("t4", "kvt4", "10.36.0", hosts=[dict(mac="52:54:00:bb:00:01", ip="10.36.0.10", name="a")])
    a0 = apply(prov, "create", None, want)
    libvirt.virsh("net-update", "t4", "add", "ip-dhcp-host",
                  "<host mac='52:54:00:bb:00:02' ip='10.36.0.11' name='sneaky'/>", "--live")
    drifted = prov.read("network", [])["t4"].attrs
    assert drifted != a0
    hosts = {h["mac"]: h["name"] for h in dhcp(drifted, "host")}
    assert hosts == {"52:54:00:bb:00:01": "a", "52:54:00:bb:00:02": "sneaky (live only)"}
    # the update brings live and saved back to the desired hosts
    a1 = apply(prov, "update", drifted, want)
    assert a1 == a0
    assert hostsfile(libvirt, "t4") == ["52:54:00:bb:00:01,10.36.0.10,a"]


def test_saved_definition_edit_shows_as_drift(libvirt, prov):
    import libvirt as lv
    want = nat("t5", "kvt5", "10.37.0", hosts=[dict(mac="52:54:00:cc:00:01", ip="10.37.0.10", name="a")])
    a0 = apply(prov, "create", None, want)
    conn = libvirt.connect()
    try:   # what `virsh net-edit` does: redefine the saved XML
        net = conn.networkLookupByName("t5")
        xml = net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)
        xml = xml.replace("ip='10.37.0.10'", "ip='10.37.0.99'").replace("<bridge ", "<mtu size='1300'/><bridge ")
        conn.networkDefineXML(xml)
    finally:
        conn.close()
    drifted = prov.read("network", [])["t5"]
    assert drifted.attrs["uuid"] == a0["uuid"]
    assert drifted.attrs["mtu"] == {"size": 1300}             # saved definition wins
    assert {h["ip"]: h["name"] for h in dhcp(drifted.attrs, "host")} == {
        "10.37.0.10": "a (live only)", "10.37.0.99": "a (saved only)"}
    assert drifted.mark is not None and drifted.mark.lineage == LINEAGE   # metadata kept by net-edit
    # an in-place update puts DHCP right in both definitions; the mtu needs a replace
    with pytest.raises(ProviderError, match="mtu cannot change in place"):
        apply(prov, "update", drifted.attrs, dict(want, mtu=1500))
    a1 = apply(prov, "update", drifted.attrs, want)
    assert dhcp(a1, "host") == [dict(mac="52:54:00:cc:00:01", ip="10.37.0.10", name="a")]
    assert a1["mtu"] == {"size": 1300} and a1["uuid"] == a0["uuid"]
    assert prov.replace_paths("network", drifted.attrs, canonical("network", dict(want, mtu=None))) == []
    assert prov.replace_paths("network", drifted.attrs, canonical("network", dict(want, mtu=1500))) == ["mtu"]


def test_import_adopts_default_network_without_changing_it(libvirt, prov):
    libvirt.define_default_network()
    conn = libvirt.connect()
    try:
        before = conn.networkLookupByName("default").XMLDesc(0)
    finally:
        conn.close()
    obj = prov.import_object("network", "default")
    assert obj.mark is None
    assert mode(obj.attrs) == "nat" and bridge(obj.attrs) == "virbr0" and obj.attrs["active"]
    assert obj.attrs["ip"] == [{"address": "192.168.122.1", "prefix": 24,
                                "dhcp": {"range": [{"start": "192.168.122.2", "end": "192.168.122.254"}]}}]
    assert canonical("network", obj.attrs) == obj.attrs
    conn = libvirt.connect()
    try:
        assert conn.networkLookupByName("default").XMLDesc(0) == before
    finally:
        conn.close()
    assert prov.import_object("network", "nope") is None
    # creating it again is refused with a pointer to import
    with pytest.raises(ProviderError, match="kvmnet import"):
        apply(prov, "create", None, dict(name="default", mode="isolated"))


def test_update_of_imported_network_writes_the_mark_and_keeps_uuid(libvirt, prov):
    libvirt.define_default_network()
    obj = prov.import_object("network", "default")
    want = dict(obj.attrs)
    ip0 = want["ip"][0]
    want["ip"] = [dict(ip0, dhcp=dict(ip0["dhcp"], host=[dict(mac="52:54:00:dd:00:01", ip="192.168.122.5", name="x")]))]
    after = apply(prov, "update", obj.attrs, want, address="network.default")
    assert after["uuid"] == obj.attrs["uuid"]
    live = prov.read("network", ["default"])["default"]
    assert live.mark is not None and live.mark.address == "network.default"
    assert live.attrs == after          # the mark in the saved XML only is not drift
    assert hostsfile(libvirt, "default") == ["52:54:00:dd:00:01,192.168.122.5,x"]


def test_delete_removes_bridge_and_dnsmasq(libvirt, prov):
    a0 = apply(prov, "create", None, nat("t6", "kvt6", "10.38.0"))
    assert dnsmasq_for(libvirt, "t6")
    apply(prov, "delete", a0, None)
    assert "t6" not in prov.read("network", [])
    assert libvirt.ip("link", "show", "kvt6", check=False).returncode != 0
    deadline = time.monotonic() + 5
    while dnsmasq_for(libvirt, "t6") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not dnsmasq_for(libvirt, "t6")
    apply(prov, "delete", a0, None)     # already gone: fine


def test_failed_start_leaves_nothing_defined(libvirt, prov):
    apply(prov, "create", None, nat("t7", "kvt7", "10.39.0"))
    with pytest.raises(ProviderError, match='network "t8": start failed'):
        apply(prov, "create", None, nat("t8", "kvt8", "10.39.0"))   # same subnet: libvirt refuses
    assert "t8" not in prov.read("network", [])
