"""The libvirt provider against libvirt's in-process test driver (``test:///default``).

Fast and root-free; the same behaviours are also tested against a real libvirtd in
tests/real/test_libvirt_*.py (the test driver has no device hot-plug).
"""
from __future__ import annotations

import pytest

pytest.importorskip("libvirt")

from kvmnet.engine.resources import canonical  # noqa: E402
from kvmnet.sdk.provider import Change, ProviderError  # noqa: E402

MARK = "kvmnet:5d1f7a52-36b0-4a0e-9a3a-0a7e2e3b9c11:network.lab"


@pytest.fixture
def prov():
    from kvmnet.providers.libvirt import LibvirtProvider
    p = LibvirtProvider({"uri": "test:///default"})
    yield p
    p.close()


def run(p, action, before, after, rtype="network"):
    (r,) = list(p.apply([Change(action, rtype, "network.lab", before, after, mark=MARK)]))
    return r.attrs


def lab(**kw):
    return dict(dict(name="lab", mode="nat", autostart=True,
                     ip=[dict(address="10.20.0.1", prefix=24,
                              dhcp_range=[dict(start="10.20.0.100", end="10.20.0.200")],
                              dhcp_host=[dict(mac="52:54:00:aa:00:01", ip="10.20.0.10", name="web")])]), **kw)


def test_create_read_update_delete(prov):
    a = run(prov, "create", None, lab())
    assert a["active"] and a["uuid"] and canonical("network", a) == a
    live = prov.read("network", ["lab"])["lab"]
    assert live.attrs == a and str(live.mark) == MARK
    want = lab(autostart=False)
    want["ip"][0]["dhcp_host"].append(dict(mac="52:54:00:aa:00:02", ip="10.20.0.12", name=None))
    b = run(prov, "update", a, want)
    assert b["uuid"] == a["uuid"] and b["autostart"] is False and len(b["ip"][0]["dhcp"]["host"]) == 2
    with pytest.raises(ProviderError, match="forward cannot change in place"):
        run(prov, "update", b, lab(mode="route"))
    assert prov.replace_paths("network", b, canonical("network", lab(mode="route"))) == ["forward"]
    run(prov, "delete", b, None)
    assert "lab" not in prov.read("network", [])


def test_default_test_domain_is_a_consumer_of_default(prov):
    cons = prov.consumers("network", {"name": "default"})
    assert [(c.kind, c.name, c.detail, c.via[0]) for c in cons] == [("domain", "test", "running", "nic_attachment")]
    nics = prov.read("nic_attachment", [])
    assert cons[0].via[1] in nics
    assert prov.check("nic_attachment", "nic_attachment.x", {"domain": "nope", "network": "default"}) == [
        ("domain", 'domain "nope" does not exist')]


def test_snapshot(prov):
    snap = prov.snapshot("network", ["default", "missing"])
    assert list(snap) == ["default"] and "<name>default</name>" in snap["default"]["live"]
