"""issue 11's plan-time rules for IPv6 ``ip`` blocks, each shown against the real
sandboxed libvirtd: the network XML of every case is refused by libvirt 9.0 (at
define with VIR_NETWORK_DEFINE_VALIDATE, or when dnsmasq starts), and ``kvmnet
validate`` refuses the same network in HCL with ``Error:`` lines naming the file,
line and attribute. A valid dual-stack network with DHCPv6 (hosts by DUID and by
name) passes both, and so does an IPv6 block without a prefix (libvirt's 64)."""
from __future__ import annotations

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

R = "<range start='{s}' end='{e}'/>"
V6 = "<ip family='ipv6' address='fd75::1' prefix='{p}'>{inner}</ip>"


def v6(inner="", p=64):
    return V6.format(p=p, inner=inner)


def dhcp(*parts):
    return "<dhcp>" + "".join(parts) + "</dhcp>"


def r(s="fd75::10", e="fd75::20"):
    return R.format(s=s, e=e)


# label → (the ip blocks in XML, the same in HCL, libvirt's words, kvmnet's words)
CASES = {
    "no family": ("<ip address='fd75::1' prefix='64'/>",
                  'ip {\n address = "fd75::1"\n prefix = 64\n}',
                  "no family specified for non-IPv4 address", 'give family = "ipv6"'),
    "ipv6 family, IPv4 address": ("<ip family='ipv6' address='10.75.0.1' prefix='24'/>",
                                  'ip {\n family = "ipv6"\n address = "10.75.0.1"\n prefix = 24\n}',
                                  "Family 'ipv6' specified for non-IPv6 address",
                                  'ip[0] has family = "ipv6" but address = "10.75.0.1"'),
    "ipv4 family, IPv6 address": ("<ip family='ipv4' address='fd75::1' prefix='64'/>",
                                  'ip {\n family = "ipv4"\n address = "fd75::1"\n prefix = 64\n}',
                                  "ipv4 family specified for non-IPv4 address",
                                  'ip[0] has family = "ipv4" but address = "fd75::1"'),
    "netmask": ("<ip family='ipv6' address='fd75::1' netmask='ffff:ffff:ffff:ffff::'/>",
                'ip {\n family = "ipv6"\n address = "fd75::1"\n netmask = "ffff:ffff:ffff:ffff::"\n}',
                "failed to validate against schema", "give prefix (e.g. prefix = 64), not netmask"),
    "tftp": (v6("<tftp root='/srv/tftp'/>"),
             'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 64\n tftp {\n root = "/srv/tftp"\n }\n}',
             "Unsupported <tftp> element in an IPv6 element", "tftp is not allowed in an IPv6 block (ip[0])"),
    "host by mac": (v6(dhcp(r(), "<host mac='52:54:00:00:75:01' ip='fd75::30'/>")),
                    'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 64\n dhcp {\n'
                    ' range {\n start = "fd75::10"\n end = "fd75::20"\n }\n'
                    ' host {\n mac = "52:54:00:00:75:01"\n ip = "fd75::30"\n }\n }\n}',
                    "Invalid to specify MAC address", "name it by id (its DUID) or name, not mac"),
    "host by nothing": (v6(dhcp(r(), "<host ip='fd75::30'/>")),
                        'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 64\n dhcp {\n'
                        ' range {\n start = "fd75::10"\n end = "fd75::20"\n }\n'
                        ' host {\n ip = "fd75::30"\n }\n }\n}',
                        "failed to validate against schema", "needs an id (the guest's DUID) or a name"),
    "IPv4 host by id": ("<ip address='10.75.0.1' prefix='24'><dhcp><range start='10.75.0.10' end='10.75.0.20'/>"
                        "<host id='0:3:0:1:52:54:0:0:75:1' ip='10.75.0.30'/></dhcp></ip>",
                        'ip {\n address = "10.75.0.1"\n prefix = 24\n dhcp {\n'
                        ' range {\n start = "10.75.0.10"\n end = "10.75.0.20"\n }\n'
                        ' host {\n id = "0:3:0:1:52:54:0:0:75:1"\n ip = "10.75.0.30"\n }\n }\n}',
                        "must have mac or name attribute", "needs a mac or a name"),
    "two DHCPv6 blocks": (v6(dhcp(r())) + "<ip family='ipv6' address='fd76::1' prefix='64'>"
                          + dhcp(r("fd76::10", "fd76::20")) + "</ip>",
                          'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 64\n dhcp {\n'
                          ' range {\n start = "fd75::10"\n end = "fd75::20"\n }\n }\n}\n'
                          'ip {\n family = "ipv6"\n address = "fd76::1"\n prefix = 64\n dhcp {\n'
                          ' range {\n start = "fd76::10"\n end = "fd76::20"\n }\n }\n}',
                          "Multiple IPv6 dhcp sections found", "ip[1] has DHCP, but so does ip[0]"),
    "IPv4 range": (v6(dhcp(r("10.75.0.10", "10.75.0.20"))),
                   'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 64\n dhcp {\n'
                   ' range {\n start = "10.75.0.10"\n end = "10.75.0.20"\n }\n }\n}',
                   "mismatch of address family in range", 'start = "10.75.0.10" is not an IPv6 address'),
    "range outside": (v6(dhcp(r("fd77::10", "fd77::20"))),
                      'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 64\n dhcp {\n'
                      ' range {\n start = "fd77::10"\n end = "fd77::20"\n }\n }\n}',
                      "is not entirely within network", "is outside the network's subnet fd75::/64"),
    "range reversed": (v6(dhcp(r("fd75::20", "fd75::10"))),
                       'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 64\n dhcp {\n'
                       ' range {\n start = "fd75::20"\n end = "fd75::10"\n }\n }\n}',
                       "start larger than end", "is reversed: start fd75::20 is after end fd75::10"),
    "DHCPv6 on a /56": (v6(dhcp(r()), p=56),
                        'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 56\n dhcp {\n'
                        ' range {\n start = "fd75::10"\n end = "fd75::20"\n }\n }\n}',
                        "dnsmasq", "prefix = 56 is too short for DHCPv6"),
}

VALID_XML = ("<ip family='ipv6' address='fd74::1'/>"
             "<ip address='10.75.0.1' prefix='24'><dhcp><range start='10.75.0.10' end='10.75.0.20'/></dhcp></ip>"
             + v6(dhcp(r(), "<host id='0:3:0:1:52:54:0:0:75:1' ip='fd75::30'/>", "<host name='g2' ip='fd75::31'/>"),
                  p=120))
VALID_HCL = ('ip {\n family = "ipv6"\n address = "fd74::1"\n}\n'
             'ip {\n address = "10.75.0.1"\n prefix = 24\n dhcp {\n'
             ' range {\n start = "10.75.0.10"\n end = "10.75.0.20"\n }\n }\n}\n'
             'ip {\n family = "ipv6"\n address = "fd75::1"\n prefix = 120\n dhcp {\n'
             ' range {\n start = "fd75::10"\n end = "fd75::20"\n }\n'
             ' host {\n id = "0:3:0:1:52:54:0:0:75:1"\n ip = "fd75::30"\n }\n'
             ' host {\n name = "g2"\n ip = "fd75::31"\n }\n }\n}')


def libvirt_refusal(conn, ips: str) -> str | None:
    """libvirt's message refusing a nat network with ``ips`` (define or start), or None."""
    import libvirt as lv
    xml = f"<network><name>six</name><forward mode='nat'/><bridge name='kvsix1'/>{ips}</network>"
    try:
        net = conn.networkDefineXMLFlags(xml, lv.VIR_NETWORK_DEFINE_VALIDATE)
    except lv.libvirtError as e:
        return e.get_error_message()
    try:
        net.create()
        net.destroy()
        return None
    except lv.libvirtError as e:
        return e.get_error_message()
    finally:
        net.undefine()


def hcl(ips: str) -> str:
    return ('resource "network" "six" {\n forward {\n mode = "nat"\n }\n bridge {\n name = "kvsix1"\n }\n'
            + ips + "\n}\n")


@pytest.fixture(scope="module")
def conn(libvirt_sandbox):
    c = libvirt_sandbox.connect()
    yield c
    c.close()


@pytest.mark.parametrize("label", sorted(CASES))
def test_libvirt_and_kvmnet_refuse(label, conn, tmp_path):
    xml, ips, libvirt_words, kvmnet_words = CASES[label]
    refusal = libvirt_refusal(conn, xml)
    assert refusal is not None, label
    if libvirt_words:
        assert libvirt_words in refusal, refusal
    write_config(tmp_path / "cfg", hcl(ips))
    rc, out, err = run_kvmnet(tmp_path / "cfg", "--no-color", "validate", state=tmp_path / "s.db")
    assert rc == 1, out + err
    assert kvmnet_words in err and "main.hcl:" in err, err
    assert all(line.startswith("Error: ") for line in err.strip().splitlines()), err


def test_a_valid_dual_stack_network_passes_both(conn, tmp_path):
    assert libvirt_refusal(conn, VALID_XML) is None
    write_config(tmp_path / "cfg", hcl(VALID_HCL))
    rc, out, err = run_kvmnet(tmp_path / "cfg", "--no-color", "validate", state=tmp_path / "s.db")
    assert rc == 0, out + err
