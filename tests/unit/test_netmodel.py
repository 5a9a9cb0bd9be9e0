"""The full network shape: random shapes round-trip attrs → XML → attrs (hypothesis),
unknown parts are kept or named, never dropped silently (pure, fast)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvmnet.engine.resources import canonical
from kvmnet.providers.libvirt import netmodel, netxml
from kvmnet.providers.libvirt.netshape import BOOLS, INT, NETWORK, El, snake, walk

_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-:", min_size=1, max_size=12)


def _value(kind: str):
    if kind == INT:
        return st.integers(min_value=0, max_value=70000)
    if kind in BOOLS:
        return st.just(True) if BOOLS[kind] == ("yes", "no") and kind == "yes" else st.booleans()
    return _TEXT


def block(spec: El, depth: int = 0) -> st.SearchStrategy:
    """A random block of ``spec``: any subset of its attributes and children."""
    fields: dict[str, st.SearchStrategy] = {}
    for a in spec.attrs:
        fields[a.key] = _value(a.kind)
    for c in spec.children:
        if c.text:
            fields[c.key] = st.lists(_TEXT, min_size=1, max_size=3) if c.many else _TEXT
        elif c.many:
            fields[c.key] = st.lists(block(c, depth + 1), min_size=1, max_size=2)
        else:
            fields[c.key] = block(c, depth + 1)
    return st.fixed_dictionaries({}, optional=fields)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block(NETWORK))
def test_random_shapes_round_trip_through_xml(attrs):
    a = canonical("network", {**attrs, "kept": []})
    xml = netmodel.render_text(a)
    back, mark, lost = netmodel.parse(xml)
    assert lost == [] and mark is None
    assert canonical("network", back) == a


@settings(max_examples=60, deadline=None)
@given(block(NETWORK))
def test_render_parse_render_is_stable(attrs):
    one = netmodel.render_text(canonical("network", {**attrs, "kept": []}))
    two = netmodel.render_text(canonical("network", netmodel.parse(one)[0]))
    assert one == two


def test_the_table_follows_the_naming_rule():
    assert snake("forwardPlainNames") == "forward_plain_names" and snake("localPtr") == "local_ptr"
    paths = {p for p, _ in walk()}
    for p in ("forward.nat.port", "forward.interface", "forward.pf", "forward.address", "forward.driver",
              "bridge", "mtu", "mac", "domain", "dns.forwarder", "dns.host.hostname", "dns.srv", "dns.txt",
              "ip.dhcp.range.lease", "ip.dhcp.host.lease", "ip.dhcp.bootp", "ip.tftp", "route",
              "bandwidth.inbound", "bandwidth.outbound", "port", "portgroup.vlan.tag",
              "portgroup.virtualport.parameters", "portgroup.bandwidth", "vlan.tag", "virtualport.parameters",
              "dnsmasq_options.option"):
        assert p in paths, p


FOREIGN = """<network ipv6='yes'>
  <name>lab</name>
  <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>
  <metadata>
    <app1:foo xmlns:app1="http://app1.org/app1/">one</app1:foo>
    <kvmnet:owner xmlns:kvmnet="https://kvmnet.dev/xmlns/1">kvmnet:L:network.lab</kvmnet:owner>
  </metadata>
  <futureThing level='3'><sub/></futureThing>
  <forward mode='nat'/>
  <bridge name='virbr5' stp='off' delay='2'/>
  <ip address='10.5.0.1' prefix='24' futureAttr='x'>
    <dhcp><range start='10.5.0.10' end='10.5.0.20'><lease expiry='1' unit='hours'/></range><newElement/></dhcp>
  </ip>
  <ip family='ipv6' address='fd05::1' prefix='64'/>
</network>"""


def test_unknown_top_level_parts_are_kept_verbatim_and_written_back():
    attrs, mark, lost = netxml.parse_full(FOREIGN)
    assert mark == "kvmnet:L:network.lab"
    assert len(attrs["kept"]) == 2
    md, future = (ET.fromstring(k) for k in attrs["kept"])
    assert md.tag == "metadata" and [c.tag for c in md] == ["{http://app1.org/app1/}foo"]   # not kvmnet's mark
    assert future.tag == "futureThing" and future.get("level") == "3" and future.find("sub") is not None
    assert attrs["ipv6"] is True and attrs["bridge"] == {"name": "virbr5", "stp": False, "delay": 2}
    assert attrs["ip"][0]["dhcp"]["range"] == [{"start": "10.5.0.10", "end": "10.5.0.20",
                                                "lease": {"expiry": 1, "unit": "hours"}}]
    # written back on every render (create, update, replace), with the mark
    root = ET.fromstring(netxml.render_network({**attrs, "mtu": {"size": 1400}}, "kvmnet:M:network.lab"))
    assert root.find("futureThing/sub") is not None
    assert root.find("metadata/{http://app1.org/app1/}foo").text == "one"
    assert root.find("metadata/{https://kvmnet.dev/xmlns/1}owner").text == "kvmnet:M:network.lab"
    assert root.find("bridge").attrib == {"name": "virbr5", "stp": "off", "delay": "2"}
    # nested unknowns cannot be kept in place: they are named, not dropped silently
    assert lost == ["ip[0] attribute futureAttr='x'", "ip[0].dhcp: element <newElement>"]


def test_bool_spellings_follow_libvirts_schema():
    root = netmodel.render(canonical("network", {"bridge": {"name": "b", "stp": True}, "port": {"isolated": True},
                                                 "vlan": {"trunk": True, "tag": [{"id": 5}]},
                                                 "dns": {"enable": False, "forward_plain_names": True}}))
    assert root.find("bridge").get("stp") == "on" and root.find("port").get("isolated") == "yes"
    assert root.find("vlan").get("trunk") == "yes"
    assert root.find("dns").attrib == {"enable": "no", "forwardPlainNames": "yes"}


def test_a_value_libvirt_would_not_write_is_named_as_lost():
    _, _, lost = netmodel.parse("<network><name>x</name><bridge name='b' stp='maybe'/></network>")
    assert lost == ["bridge attribute stp='maybe' (not a onoff value)"]


def test_the_table_covers_every_name_of_libvirts_network_schema():
    """Every element and attribute libvirt's installed network.rng (with what it
    includes from networkcommon.rng, and the PCI address it refers to) names is in
    the table, or is what libvirt fills in, or is <metadata> (kept verbatim)."""
    import re
    from pathlib import Path

    from kvmnet.providers.libvirt.netshape import LIBVIRT_FILLS

    schemas = Path("/usr/share/libvirt/schemas")
    if not (schemas / "network.rng").exists():
        pytest.skip("libvirt's schemas are not installed (libvirt-daemon)")
    text = (schemas / "network.rng").read_text() + (schemas / "networkcommon.rng").read_text()
    basic = (schemas / "basictypes.rng").read_text()
    text += re.search(r'<define name="pciaddress">.*?</define>', basic, re.S).group(0)
    elements = set(re.findall(r'<element name="([^"]+)"', text))
    attributes = set(re.findall(r'<attribute name="([^"]+)"', text))
    tags = {"network"} | {el.tag.rpartition("}")[2] for _, el in walk()}
    names = {a.xml for a in NETWORK.attrs} | {a.xml for _, el in walk() for a in el.attrs}
    filled = {a for v in LIBVIRT_FILLS.values() for a in v}
    assert elements - tags - {"metadata"} == set()
    assert attributes - names - filled == set()
