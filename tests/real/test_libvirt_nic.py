"""The libvirt provider's ``nic_attachment`` against a real running TCG guest, and the
consumer check, in a real libvirtd inside a network namespace.

One guest boot for the whole module: ``g-run`` runs (booted from Debian's cloud
kernel and a busybox initramfs), ``g-off`` is defined and shut off, both with a NIC
on network ``nicnet``.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from kvmnet.sdk.provider import Change, ProviderError

LINEAGE = str(uuid.uuid4())
NET, NET2 = "nicnet", "nicnet2"
BR, BR2 = "kvnic0", "kvnic1"


@pytest.fixture(scope="module")
def guests(libvirt_sandbox, guest_image):
    from kvmnet.sandbox.guest import define_guest, start_guest
    from kvmnet.providers.libvirt import LibvirtProvider
    sb = libvirt_sandbox
    p = LibvirtProvider({"uri": sb.uri})
    for name, bridge, net in ((NET, BR, "10.77.0"), (NET2, BR2, "10.78.0")):
        list(p.apply([Change("create", "network", f"network.{name}", None,
                             dict(name=name, mode="nat", bridge=bridge,
                                  ip=[dict(address=f"{net}.1", prefix=24)]),
                             mark=f"kvmnet:{LINEAGE}:network.{name}")]))
    sb.keep_networks |= {NET, NET2}
    sb.keep_domains |= {"g-run", "g-off"}
    try:
        start_guest(sb, "g-run", guest_image, network=NET, mac="52:54:00:77:00:01")
        define_guest(sb, "g-off", guest_image, network=NET, mac="52:54:00:77:00:02")
        yield sb
    finally:
        p.close()
        sb.keep_networks -= {NET, NET2}
        sb.keep_domains -= {"g-run", "g-off"}
        sb.clean()


@pytest.fixture
def prov(guests):
    from kvmnet.providers.libvirt import LibvirtProvider
    p = LibvirtProvider({"uri": guests.uri})
    yield p
    p.close()


def apply(p, action, before, after, address="nic_attachment.n"):
    (res,) = list(p.apply([Change(action, "nic_attachment", address, before, after,
                                  mark=f"kvmnet:{LINEAGE}:{address}")]))
    return res.attrs


def ports_of(sb, bridge):
    out = json.loads(sb.ip("-j", "link", "show", "master", bridge).stdout or "[]")
    return {l["ifname"]: l.get("address") for l in out}


def dom_xml(sb, name, inactive=False):
    import libvirt as lv
    conn = sb.connect()
    try:
        return conn.lookupByName(name).XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0)
    finally:
        conn.close()


def iface(sb, dom, mac, inactive=False):
    from kvmnet.providers.libvirt.nicxml import parse_interfaces
    return parse_interfaces(dom_xml(sb, dom, inactive)).get(mac)


def nic(**kw):
    return dict(dict(domain="g-run", network=NET, model="virtio", live=True, persistent=True,
                     link_state="up"), **kw)


def test_attach_update_detach_on_a_running_guest(guests, prov):
    sb = guests
    before_ports = ports_of(sb, BR)
    a = apply(prov, "create", None, nic())
    mac = a["mac"]
    assert mac and mac.startswith("52:54:00:") and a["live"] and a["persistent"]
    # the tap is on the network's bridge in the sandbox namespace (tap MAC fe:...)
    new_ports = {k: v for k, v in ports_of(sb, BR).items() if k not in before_ports}
    assert len(new_ports) == 1 and list(new_ports.values())[0][3:] == mac[3:]
    tap = list(new_ports)[0]
    assert iface(sb, "g-run", mac) and iface(sb, "g-run", mac, inactive=True)
    live = prov.read("nic_attachment", [])[f"g-run/{mac}"]
    assert live.attrs == a and live.mark.lineage == LINEAGE and live.mark.address == "nic_attachment.n"

    # link state down, live and saved, no restart
    a2 = apply(prov, "update", a, nic(mac=mac, link_state="down"))
    assert a2["link_state"] == "down"
    assert iface(sb, "g-run", mac).link_state == "down"
    assert iface(sb, "g-run", mac, inactive=True).link_state == "down"

    # move to another network in place: the tap moves to the other bridge
    a3 = apply(prov, "update", a2, nic(mac=mac, network=NET2, link_state="up"))
    assert a3["network"] == NET2 and a3["link_state"] == "up"
    assert tap in ports_of(sb, BR2) and tap not in ports_of(sb, BR)

    # detach: gone from the live and the saved definition, and its tap is gone
    apply(prov, "delete", a3, None)
    assert mac not in dom_xml(sb, "g-run") and mac not in dom_xml(sb, "g-run", inactive=True)
    assert iface(sb, "g-run", mac) is None
    assert tap not in ports_of(sb, BR2)
    assert f"g-run/{mac}" not in prov.read("nic_attachment", [])
    assert "kvmnet.dev/xmlns" not in dom_xml(sb, "g-run", inactive=True)   # its mark went with it
    # the guest kept running all along
    assert prov.read("nic_attachment", [])["g-run/52:54:00:77:00:01"].attrs["live"] is True


def test_attach_with_mac_queues_and_model_and_import(guests, prov):
    mac = "52:54:00:77:00:42"
    a = apply(prov, "create", None, nic(mac=mac, model="e1000e", link_state="down"))
    try:
        assert (a["mac"], a["model"], a["link_state"]) == (mac, "e1000e", "down")
        a = apply(prov, "update", a, nic(mac=mac, model="e1000e", link_state="up"))
        obj = prov.import_object("nic_attachment", f"g-run/{mac.upper()}")
        assert obj.id == f"g-run/{mac}" and obj.attrs == a
        assert prov.import_object("nic_attachment", "g-run/52:54:00:00:00:99") is None
        with pytest.raises(ProviderError, match="kvmnet import"):
            apply(prov, "create", None, nic(mac=mac))
    finally:
        apply(prov, "delete", a, None)


def test_virtio_multiqueue_attach(guests, prov):
    a = apply(prov, "create", None, nic(queues=2))
    try:
        assert a["driver"] == {"name": "vhost", "queues": 2}   # v1 queues: driver { queues }
        assert "queues='2'" in dom_xml(guests, "g-run")
    finally:
        apply(prov, "delete", a, None)


def test_config_only_nic_on_a_shut_off_domain(guests, prov):
    a = apply(prov, "create", None, nic(domain="g-off", bridge=BR2, network=None))
    try:
        assert a["bridge"] == BR2 and a["live"] is False and a["persistent"] is True
        assert a["mac"] in dom_xml(guests, "g-off", inactive=True)
        cons = prov.consumers("bridge", {"name": BR2})
        assert ("g-off", "shut off") in [(c.name, c.detail) for c in cons]
    finally:
        apply(prov, "delete", a, None)
    assert a["mac"] not in dom_xml(guests, "g-off", inactive=True)


def test_drift_when_relinked_or_detached_behind_kvmnets_back(guests, prov):
    sb = guests
    a = apply(prov, "create", None, nic())
    mac = a["mac"]
    sb.virsh("domif-setlink", "g-run", mac, "down")          # live only
    got = prov.read("nic_attachment", [])[f"g-run/{mac}"].attrs
    assert got["link_state"] == "down (saved: up)"
    fixed = apply(prov, "update", got, nic(mac=mac))
    assert fixed == a
    sb.virsh("detach-interface", "g-run", "network", "--mac", mac, "--live", "--config")
    deadline = time.monotonic() + 10
    while f"g-run/{mac}" in prov.read("nic_attachment", []) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"g-run/{mac}" not in prov.read("nic_attachment", [])


def test_consumers_of_a_network_running_and_shut_off(guests, prov):
    cons = prov.consumers("network", {"name": NET})
    assert [(c.kind, c.name, c.detail, c.via) for c in cons] == [
        ("domain", "g-off", "shut off", ("nic_attachment", "g-off/52:54:00:77:00:02")),
        ("domain", "g-run", "running", ("nic_attachment", "g-run/52:54:00:77:00:01")),
    ]
    # on the network's bridge, through the bridge as well
    names = [c.name for c in prov.consumers("bridge", {"name": BR})]
    assert "g-run" in names
    assert prov.consumers("vlan", {"name": "eth0.5"}) == []


def test_check_missing_domain_and_exactly_one_source(guests, prov):
    assert prov.check("nic_attachment", "nic_attachment.x", nic(domain="ghost")) == [
        ("domain", 'domain "ghost" does not exist')]
    assert prov.check("nic_attachment", "nic_attachment.x", nic()) == []
    assert prov.check("nic_attachment", "nic_attachment.x", nic(bridge=BR))[0][1].startswith("a nic_attachment needs exactly one")
    assert prov.check("nic_attachment", "nic_attachment.x", nic(model="e1000", queues=2)) == [
        ("queues", 'queues (vhost multiqueue) needs model = "virtio"')]
    with pytest.raises(ProviderError, match='domain "ghost" does not exist'):
        apply(prov, "create", None, nic(domain="ghost"))


def test_nics_of_one_domain_changed_from_several_threads_keep_every_mark(guests, prov):
    # the engine runs up to 4 libvirt changes at once; a domain's NIC marks are one
    # metadata element, so NIC changes of one domain must not interleave
    from concurrent.futures import ThreadPoolExecutor
    macs = [f"52:54:00:77:10:{i:02x}" for i in range(4)]
    wanted = [nic(domain="g-off", bridge=BR2, network=None, mac=m) for m in macs]
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: apply(prov, "create", None, wanted[i], f"nic_attachment.n{i}"),
                             range(4)))
    try:
        live = prov.read("nic_attachment", [])
        for i, m in enumerate(macs):
            obj = live[f"g-off/{m}"]
            assert obj.mark is not None and obj.mark.address == f"nic_attachment.n{i}", obj.mark
    finally:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: apply(prov, "delete", made[i], None, f"nic_attachment.n{i}"), range(4)))
    inactive = dom_xml(guests, "g-off", inactive=True)
    assert not any(m in inactive for m in macs)
    assert not any(f"g-off/{m}" in prov.read("nic_attachment", []) for m in macs)
