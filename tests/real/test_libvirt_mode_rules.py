"""Which forward modes take a ``<bandwidth>`` and a portgroup's ``<vlan>``, shown
against the real sandboxed libvirtd (the corpus's formatnetwork.html example of a
private network with bandwidth in its portgroups met the first): each refused
network is refused by libvirt 9.0 (VIR_NETWORK_DEFINE_VALIDATE) and by ``kvmnet
validate`` naming the attribute, FILE:LINE; each accepted one passes both."""
from __future__ import annotations

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

BW_XML = "<bandwidth><inbound average='1000'/></bandwidth>"
BW_HCL = "bandwidth {\n inbound {\n average = 1000\n }\n}\n"
VLAN_XML = "<vlan><tag id='5'/></vlan>"
VLAN_HCL = "vlan {\n tag {\n id = 5\n }\n}\n"


def forward(mode: str) -> tuple[str, str]:
    """(XML, HCL) of a forward in ``mode`` on the sandbox's devices."""
    if mode in ("nat", "route"):
        return (f"<forward mode='{mode}'/><bridge name='kvmr1'/><ip address='10.78.0.1' prefix='24'/>",
                f'forward {{\n mode = "{mode}"\n}}\nbridge {{\n name = "kvmr1"\n}}\n'
                'ip {\n address = "10.78.0.1"\n prefix = 24\n}\n')
    if mode == "bridge":
        return ("<forward mode='bridge'/><bridge name='kvmrb'/>",
                'forward {\n mode = "bridge"\n}\nbridge {\n name = "kvmrb"\n}\n')
    if mode == "hostdev":
        return ("<forward mode='hostdev'><pf dev='kvmr0'/></forward>",
                'forward {\n mode = "hostdev"\n pf {\n dev = "kvmr0"\n }\n}\n')
    return (f"<forward mode='{mode}'><interface dev='kvmr0'/></forward>",
            f'forward {{\n mode = "{mode}"\n interface {{\n dev = "kvmr0"\n }}\n}}\n')


def network(mode: str, bandwidth: bool = False, pg_bandwidth: bool = False, pg_vlan: bool = False):
    fx, fh = forward(mode)
    xml, hcl = fx, fh
    if bandwidth:
        xml, hcl = xml + BW_XML, hcl + BW_HCL
    if pg_bandwidth or pg_vlan:
        inner_x = (BW_XML if pg_bandwidth else "") + (VLAN_XML if pg_vlan else "")
        inner_h = (BW_HCL if pg_bandwidth else "") + (VLAN_HCL if pg_vlan else "")
        xml += f"<portgroup name='pg'>{inner_x}</portgroup>"
        hcl += f'portgroup {{\n name = "pg"\n{inner_h}}}\n'
    return (f"<network><name>mr</name>{xml}</network>",
            f'resource "network" "mr" {{\n{hcl}}}\n')


# label → (network, libvirt's words, kvmnet's words); None: both accept it
CASES = {
    "private, bandwidth": (network("private", bandwidth=True), "Unsupported network-wide <bandwidth>",
                           'bandwidth is not allowed with forward mode "private"'),
    "hostdev, bandwidth": (network("hostdev", bandwidth=True), "Unsupported network-wide <bandwidth>",
                           'bandwidth is not allowed with forward mode "hostdev"'),
    "vepa, portgroup bandwidth": (network("vepa", pg_bandwidth=True), "in portgroup 'pg' with forward mode='vepa'",
                                  'portgroup[0].bandwidth is not allowed with forward mode "vepa"'),
    "passthrough, portgroup bandwidth": (network("passthrough", pg_bandwidth=True),
                                         "with forward mode='passthrough'",
                                         'portgroup[0].bandwidth is not allowed with forward mode "passthrough"'),
    "nat, portgroup vlan": (network("nat", pg_vlan=True), "doesn't support vlan configuration",
                            "portgroup[0].vlan needs virtualport"),
    "bridge, portgroup vlan": (network("bridge", pg_vlan=True), "doesn't support vlan configuration",
                               "portgroup[0].vlan needs virtualport"),
    "nat, bandwidth everywhere": (network("nat", bandwidth=True, pg_bandwidth=True), None, None),
    "bridge, portgroup bandwidth": (network("bridge", pg_bandwidth=True), None, None),
    "passthrough, portgroup vlan": (network("passthrough", pg_vlan=True), None, None),
    "hostdev, portgroup vlan": (network("hostdev", pg_vlan=True), None, None),
}


@pytest.fixture(scope="module")
def conn(libvirt_sandbox):
    c = libvirt_sandbox.connect()
    yield c
    c.close()


@pytest.mark.parametrize("label", sorted(CASES))
def test_libvirt_and_kvmnet_agree(label, conn, tmp_path):
    import libvirt as lv
    (xml, hcl), libvirt_words, kvmnet_words = CASES[label]
    try:
        conn.networkDefineXMLFlags(xml, lv.VIR_NETWORK_DEFINE_VALIDATE).undefine()
        refusal = None
    except lv.libvirtError as e:
        refusal = e.get_error_message()
    write_config(tmp_path / "cfg", hcl)
    rc, out, err = run_kvmnet(tmp_path / "cfg", "--no-color", "validate", state=tmp_path / "s.db")
    if libvirt_words is None:
        assert refusal is None, refusal
        assert rc == 0, out + err
        return
    assert refusal is not None and libvirt_words in refusal, refusal
    assert rc == 1, out + err
    assert kvmnet_words in err and "main.hcl:" in err, err
    assert all(line.startswith("Error: ") for line in err.strip().splitlines()), err
