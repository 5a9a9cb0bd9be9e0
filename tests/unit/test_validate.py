"""Validation rules (SPEC §4): each rule's message, address, attribute and line."""
from __future__ import annotations

import pytest

from kvmnet.engine.model import ResourceInstance, SourcePos
from kvmnet.engine.resources import TYPES
from kvmnet.engine.validate import validate_across, validate_instance, validate_instances
from kvmnet.sdk.values import UNKNOWN

BLOCK_LINE = 10


def _lines(value, prefix: str, acc: dict, counter: list) -> None:
    """Give every attribute and nested block path its own line, in order."""
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            counter[0] += 1
            acc[path] = counter[0]
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                for i, item in enumerate(v):
                    counter[0] += 1
                    acc[f"{path}[{i}]"] = counter[0]
                    _lines(item, f"{path}[{i}]", acc, counter)


def make(rtype: str, label: str = "x", provider: str | None = None, key=None, file="main.hcl", **attrs):
    """A ResourceInstance as the evaluator would hand it over, with a line per attribute."""
    lines: dict[str, int] = {}
    _lines(attrs, "", lines, [BLOCK_LINE])
    address = f"{rtype}.{label}" if key is None else f"{rtype}.{label}[{key}]"
    return ResourceInstance(address=address, type=rtype, name=label, key=key,
                            provider=provider or TYPES[rtype].default_provider,
                            attrs=attrs, pos=SourcePos(file, BLOCK_LINE), attr_lines=lines)


def net(label="lab", **attrs):
    attrs.setdefault("mode", "nat")
    return make("network", label, **attrs)


def ip(address="10.0.0.1", prefix=24, **more):
    return [dict(address=address, prefix=prefix, **more)]


def errors(*instances):
    return validate_instances(list(instances)).errors


def one(diags, attribute, address=None):
    """The single error about ``attribute`` (of ``address``)."""
    found = [d for d in diags if d.attribute == attribute and (address is None or d.address == address)]
    assert len(found) == 1, f"expected one error on {attribute}, got: {[str(d) for d in diags]}"
    return found[0]


def assert_error(diags, inst, attribute, *words):
    d = one(diags, attribute, inst.address)
    assert d.address == inst.address
    assert d.file == inst.pos.file
    assert d.line == inst.line_of(attribute)
    for w in words:
        assert w in d.message, f"{w!r} not in {d.message!r}"
    return d


# ---------------------------------------------------------------- valid configs

def test_a_valid_configuration_has_no_errors():
    insts = [
        net("lab", bridge="virbr-lab", autostart=True, mtu=1500, domain="lab.test", nat_port_range=[1024, 65535],
            ip=ip(dhcp_range=[{"start": "10.0.0.10", "end": "10.0.0.100"}],
                  dhcp_host=[{"mac": "52:54:00:12:34:56", "ip": "10.0.0.50", "name": "web-server"}])),
        net("lan", mode="bridge", bridge="br0"),
        net("ovs", mode="bridge", bridge="ovsbr0", virtualport="openvswitch", vlan_tag=42),
        net("iso", mode="isolated", ip=[{"address": "10.9.0.1", "netmask": "255.255.255.0"}]),
        make("bridge", "br0", interfaces=["eth1", "vlan100"], stp=True, forward_delay=4, mtu=9000,
             addresses=["192.168.10.1/24"], route=[{"to": "10.20.0.0/16", "via": "192.168.10.254", "metric": 100}]),
        make("bridge", "br1", provider="netplan", dhcp4=True, nameservers=["192.168.1.1", "2001:db8::1"],
             routes=[{"to": "0.0.0.0/0", "via": "192.168.1.1"}]),
        make("vlan", "v100", id=100, link="eth0", name="vlan100", addresses=["10.100.1.1/24"], mtu=1500),
        make("vlan", "v200", id=200, link="eth0"),
        make("nic_attachment", "web", domain="web", network="lab", mac="52:54:00:aa:bb:cc", model="e1000e",
             queues=4, link_state="down", live=True, persistent=False),
        make("port_forward", "http", protocol="tcp", host_port=8080, to_address="10.0.0.50", to_port=80,
             network="lab", source="192.168.0.0/16", in_interface="eth0"),
        make("port_forward", "range", protocol="tcp", host_port="9000-9010", to_address="10.0.0.51", to_port=9000),
        make("port_forward", "udp", protocol="udp", host_port=8080, to_address="10.0.0.50", to_port=80),
        make("sysctl_profile", "fwd", settings={"net.ipv4.ip_forward": 1, "net.ipv4.tcp_rmem": "4096 87380 6291456",
                                                "net.ipv4.conf.br-lan.forwarding": "1"}, persist=False),
    ]
    assert [str(d) for d in validate_instances(insts)] == []


def test_unknown_values_are_skipped():
    insts = [
        net("lab", bridge=UNKNOWN, mtu=UNKNOWN, ip=ip(address=UNKNOWN)),
        net("b", mode=UNKNOWN, bridge="br0", vlan_tag=5, virtualport=UNKNOWN),
        make("bridge", "br0", interfaces=[UNKNOWN, "eth1"], addresses=UNKNOWN),
        make("nic_attachment", "n", domain="web", network=UNKNOWN, mac=UNKNOWN),
        make("port_forward", "p", protocol="tcp", host_port=UNKNOWN, to_address=UNKNOWN, to_port=80, network="lab"),
        make("sysctl_profile", "s", settings=UNKNOWN),
    ]
    assert [str(d) for d in validate_instances(insts)] == []


class SetValue(list):
    """What the evaluator's toset() returns: a list subclass."""


def test_sets_and_nulls_are_accepted():
    i = make("bridge", "br0", interfaces=SetValue(["eth1", "eth2"]), mtu=None, addresses=SetValue([]))
    assert [str(d) for d in validate_instances([i])] == []


def test_a_required_attribute_set_to_null_is_missing():
    i = net(mode=None)
    assert_error(errors(i), i, "mode", 'missing required attribute "mode"')


# ---------------------------------------------------------------- schema pass

def test_unknown_attribute():
    i = net(colour="blue")
    assert_error(errors(i), i, "colour", 'unknown attribute "colour"')


def test_unknown_attribute_in_a_nested_block_suggests_the_close_name():
    i = net(ip=ip(dhcp_host=[{"mac": "52:54:00:12:34:56", "ip": "10.0.0.5", "hostname": "web"}]))
    d = assert_error(errors(i), i, "ip[0].dhcp_host[0].hostname", 'unknown attribute "hostname"', "ip[0].dhcp_host[0]")
    assert 'did you mean "name"' in d.message


def test_computed_attribute_cannot_be_set():
    i = net(uuid="abc")
    assert_error(errors(i), i, "uuid", "computed")


def test_network_active_is_a_boolean_setting():
    assert errors(net(active=False)) == []
    i = net(active="stopped")
    assert_error(errors(i), i, "active", "must be true or false")


def test_wrong_type():
    i = net(mtu="big", autostart="yes")
    diags = errors(i)
    assert_error(diags, i, "mtu", "mtu must be a whole number", '"big"')
    assert_error(diags, i, "autostart", "true or false", '"yes"')


def test_wrong_type_for_a_block():
    i = net(ip={"address": "10.0.0.1", "prefix": 24})
    assert_error(errors(i), i, "ip", "ip { ... } block")


def test_missing_required():
    i = make("network", "lab", bridge="virbr1")
    assert_error(errors(i), i, "mode", 'missing required attribute "mode"', '"route", "isolated", "bridge"',
                 "forward { mode = ... } block")


def test_missing_required_in_a_nested_block():
    i = net(ip=ip(dhcp_range=[{"start": "10.0.0.10"}]))
    assert_error(errors(i), i, "ip[0].dhcp_range[0].end", 'missing required attribute "end"')


def test_bad_enum():
    i = net(mode="nated")
    assert_error(errors(i), i, "mode", '"nated"', "must be one of nat, route, open, bridge, passthrough, private, vepa, hostdev, isolated")


def test_out_of_range_mtu():
    i = net(mtu=40)
    assert_error(errors(i), i, "mtu", "mtu = 40", "68..65535")


def test_ip_may_repeat():
    i = net(ip=ip() + [{"family": "ipv6", "address": "fd00::1", "prefix": 64}])
    assert not [d for d in errors(i) if d.attribute.startswith("ip")]


def test_nat_port_range_shape():
    i = net(nat_port_range=[1024])
    assert_error(errors(i), i, "nat_port_range", "[start, end]")


def test_schema_errors_skip_the_semantic_checks_of_that_attribute():
    i = net(ip=ip(address=42))
    diags = errors(i)
    assert len([d for d in diags if d.attribute == "ip[0].address"]) == 1


def test_unknown_values_in_lists_keep_their_positions():
    i = make("bridge", "br0", interfaces=[UNKNOWN, "eth1", 5])
    assert_error(errors(i), i, "interfaces[2]", "must be a string")


# ---------------------------------------------------------------- addresses

def test_the_guides_invalid_subnet_is_rejected_as_a_cidr():
    i = make("bridge", "br300", addresses=["10.300.1.0/24"])
    assert_error(errors(i), i, "addresses[0]", '"10.300.1.0/24"', "not a valid IPv4", "300")


def test_the_guides_invalid_subnet_is_rejected_as_a_network_address():
    i = net(ip=ip("10.300.1.1"))
    assert_error(errors(i), i, "ip[0].address", '"10.300.1.1"', "not a valid IPv4 address", "300")


def test_address_with_prefix_in_the_ip_block():
    i = net(ip=[{"address": "10.0.0.1/24"}])
    diags = errors(i)
    assert_error(diags, i, "ip[0].address", "/prefix")


def test_ip_block_needs_a_prefix_or_netmask_not_both():
    a = net("a", ip=[{"address": "10.0.0.1"}])
    b = net("b", ip=[{"address": "10.1.0.1", "prefix": 24, "netmask": "255.255.255.0"}])
    diags = errors(a, b)
    assert_error(diags, a, "ip[0]", "needs prefix")
    assert_error(diags, b, "ip[0].netmask", "both prefix and netmask")


def test_bad_netmask():
    i = net(ip=[{"address": "10.0.0.1", "netmask": "255.0.255.0"}])
    assert_error(errors(i), i, "ip[0].netmask", '"255.0.255.0"', "not contiguous")


def test_gateway_must_be_a_host_address():
    i = net(ip=ip("10.0.0.0"))
    assert_error(errors(i), i, "ip[0].address", "network address of 10.0.0.0/24", "10.0.0.1")


def test_bad_prefix_in_a_cidr():
    i = make("vlan", "v", id=5, link="eth0", addresses=["10.0.0.1/33"])
    assert_error(errors(i), i, "addresses[0]", "/33", "0..32")


def test_cidr_without_prefix():
    i = make("bridge", "br0", addresses=["10.0.0.1"])
    assert_error(errors(i), i, "addresses[0]", "no /prefix")


def test_route_to_and_via():
    i = make("bridge", "br0", route=[{"to": "10.0.0.1/24", "via": "10.0.0.256"}, {"to": "default"}])
    diags = errors(i)
    assert_error(diags, i, "route[0].to", "host bits set", "10.0.0.0/24")
    assert_error(diags, i, "route[0].via", '"10.0.0.256"', "not a valid IPv4 address")
    assert_error(diags, i, "route[1].to", "0.0.0.0/0")


def test_routes_as_a_list_attribute_are_checked_too():
    i = make("bridge", "br0", routes=[{"to": "10.0.0.0/8", "via": "bad"}])
    assert_error(errors(i), i, "routes[0].via", '"bad"')


def test_route_blocks_and_routes_list_not_both():
    i = make("bridge", "br0", route=[{"to": "10.0.0.0/8"}], routes=[{"to": "10.1.0.0/16"}])
    assert_error(errors(i), i, "routes", "not both")


def test_nameservers_are_ip_addresses():
    i = make("bridge", "br0", provider="netplan", nameservers=["dns.example"])
    assert_error(errors(i), i, "nameservers[0]", '"dns.example"', "not an IP address")


# ---------------------------------------------------------------- DHCP

def test_dhcp_range_outside_subnet():
    i = net(ip=ip(dhcp_range=[{"start": "10.0.1.10", "end": "10.0.1.100"}]))
    diags = errors(i)
    assert_error(diags, i, "ip[0].dhcp_range[0].start", '"10.0.1.10"', "outside", "10.0.0.0/24")
    assert_error(diags, i, "ip[0].dhcp_range[0].end", '"10.0.1.100"', "outside", "10.0.0.0/24")


def test_dhcp_range_reversed():
    i = net(ip=ip(dhcp_range=[{"start": "10.0.0.100", "end": "10.0.0.10"}]))
    assert_error(errors(i), i, "ip[0].dhcp_range[0]", "reversed", "10.0.0.100", "10.0.0.10")


def test_dhcp_range_covering_the_gateway():
    i = net(ip=ip("10.0.0.50", dhcp_range=[{"start": "10.0.0.10", "end": "10.0.0.100"}]))
    assert_error(errors(i), i, "ip[0].dhcp_range[0]", "covers the network's own address 10.0.0.50")


def test_dhcp_range_on_the_broadcast_address():
    i = net(ip=ip(dhcp_range=[{"start": "10.0.0.200", "end": "10.0.0.255"}]))
    assert_error(errors(i), i, "ip[0].dhcp_range[0].end", "broadcast address")


def test_dhcp_ranges_overlapping():
    i = net(ip=ip(dhcp_range=[{"start": "10.0.0.10", "end": "10.0.0.100"}, {"start": "10.0.0.50", "end": "10.0.0.150"}]))
    assert_error(errors(i), i, "ip[0].dhcp_range[1]", "overlaps ip[0].dhcp_range[0]")


def test_dhcp_range_bad_address():
    i = net(ip=ip(dhcp_range=[{"start": "10.0.0", "end": "10.0.0.100"}]))
    assert_error(errors(i), i, "ip[0].dhcp_range[0].start", '"10.0.0"', "four numbers")


def test_static_host_outside_subnet_and_on_the_gateway():
    i = net(ip=ip(dhcp_host=[{"mac": "52:54:00:00:00:01", "ip": "10.0.5.5"},
                             {"mac": "52:54:00:00:00:02", "ip": "10.0.0.1"}]))
    diags = errors(i)
    assert_error(diags, i, "ip[0].dhcp_host[0].ip", '"10.0.5.5"', "outside", "10.0.0.0/24")
    assert_error(diags, i, "ip[0].dhcp_host[1].ip", '"10.0.0.1"', "network's own address")


def test_duplicate_static_ip():
    i = net(ip=ip(dhcp_host=[{"mac": "52:54:00:00:00:01", "ip": "10.0.0.5"},
                             {"mac": "52:54:00:00:00:02", "ip": "10.0.0.5"}]))
    assert_error(errors(i), i, "ip[0].dhcp_host[1].ip", '"10.0.0.5"', "already given to ip[0].dhcp_host[0]")


def test_duplicate_static_mac_ignores_case():
    i = net(ip=ip(dhcp_host=[{"mac": "52:54:00:00:00:aa", "ip": "10.0.0.5"},
                             {"mac": "52:54:00:00:00:AA", "ip": "10.0.0.6"}]))
    assert_error(errors(i), i, "ip[0].dhcp_host[1].mac", '"52:54:00:00:00:AA"', "already used by ip[0].dhcp_host[0]")


def test_static_host_needs_a_mac_or_a_name():
    i = net(ip=ip(dhcp_host=[{"ip": "10.0.0.5"}]))
    assert_error(errors(i), i, "ip[0].dhcp_host[0]", "needs a mac or a name")


# ---------------------------------------------------------------- MAC addresses

def test_malformed_mac():
    i = net(ip=ip(dhcp_host=[{"mac": "52:54:00:12:34", "ip": "10.0.0.5"}]))
    assert_error(errors(i), i, "ip[0].dhcp_host[0].mac", '"52:54:00:12:34"', "six hex pairs")


def test_multicast_mac():
    i = net(ip=ip(dhcp_host=[{"mac": "01:00:5e:00:00:01", "ip": "10.0.0.5"}]))
    assert_error(errors(i), i, "ip[0].dhcp_host[0].mac", '"01:00:5e:00:00:01"', "multicast")


def test_nic_mac_rules():
    a = make("nic_attachment", "a", domain="web", network="default", mac="33:33:00:00:00:01")
    b = make("nic_attachment", "b", domain="web", network="default", mac="52-54-00-12-34-56")
    c = make("nic_attachment", "c", domain="web", network="default", mac="00:00:00:00:00:00")
    diags = errors(a, b, c)
    assert_error(diags, a, "mac", "multicast")
    assert_error(diags, b, "mac", "six hex pairs")
    assert_error(diags, c, "mac", "all-zero")


# ---------------------------------------------------------------- network modes

def test_no_ip_block_in_bridge_mode():
    i = net(mode="bridge", bridge="br0", ip=ip())
    assert_error(errors(i), i, "ip[0]", "not allowed with mode = \"bridge\"")


def test_bridge_mode_needs_a_bridge():
    i = net(mode="bridge")
    d = assert_error(errors(i), i, "bridge", 'needs bridge =')
    assert d.line == BLOCK_LINE


def test_nat_port_range_only_with_nat():
    i = net(mode="route", nat_port_range=[1024, 2048], ip=ip())
    assert_error(errors(i), i, "nat_port_range", 'only allowed with mode = "nat"', '"route"')


def test_nat_port_range_reversed():
    i = net(nat_port_range=[3000, 2000])
    assert_error(errors(i), i, "nat_port_range", "reversed")


def test_vlan_tag_needs_openvswitch_and_explains_the_pattern():
    i = net(mode="bridge", bridge="br0", vlan_tag=100)
    assert_error(errors(i), i, "vlan_tag", 'virtualport = "openvswitch"', "vlan interface", "bridge enslaving it",
                 "bridge-mode network")


def test_virtualport_only_in_bridge_mode():
    i = net(virtualport="openvswitch", ip=ip())
    assert_error(errors(i), i, "virtualport", 'only allowed with mode = "bridge"')


def test_vlan_tag_range():
    i = net(mode="bridge", bridge="br0", virtualport="openvswitch", vlan_tag=4095)
    assert_error(errors(i), i, "vlan_tag", "1..4094")


def test_network_name_with_slash():
    i = net(name="a/b")
    assert_error(errors(i), i, "name", "'/'")


# ---------------------------------------------------------------- interface names

def test_sixteen_character_interface_name():
    i = make("bridge", "br", name="br-0123456789abc")
    assert len("br-0123456789abc") == 16
    assert_error(errors(i), i, "name", '"br-0123456789abc"', "16 characters", "at most 15")


def test_fifteen_characters_are_fine():
    assert not errors(make("bridge", "br", name="br-0123456789ab"))


def test_label_as_default_bridge_name_is_checked():
    i = make("bridge", "a_very_long_bridge_label")
    assert_error(errors(i), i, "name", "block label", "at most 15")


@pytest.mark.parametrize("bad, why", [
    ("br 0", "whitespace"), ("br:0", "':'"), ("a/b", "'/'"), (".", "reserved"), ("..", "reserved"),
    ("", "empty"), ("br%d", "template"),
])
def test_illegal_interface_names(bad, why):
    i = make("vlan", "v", id=10, link=bad, name="v10")
    assert_error(errors(i), i, "link", why)


def test_interface_names_everywhere():
    a = net("a", bridge="virbr-too-long-name", ip=ip())
    b = make("bridge", "br0", interfaces=["eth 1"])
    c = make("nic_attachment", "n", domain="web", bridge="br:0")
    d = make("port_forward", "p", protocol="tcp", host_port=80, to_address="10.0.0.5", to_port=80,
             in_interface="eth0/1")
    diags = errors(a, b, c, d)
    assert_error(diags, a, "bridge", "not a valid interface name")
    assert_error(diags, b, "interfaces[0]", "not a valid interface name")
    assert_error(diags, c, "bridge", "not a valid interface name")
    assert_error(diags, d, "in_interface", "not a valid interface name")


def test_default_vlan_name_too_long():
    i = make("vlan", "v", id=1000, link="enp0s31f6abc")
    assert_error(errors(i), i, "name", '"enp0s31f6abc.1000"', "set name explicitly")


def test_bridge_cannot_enslave_itself():
    i = make("bridge", "br0", interfaces=["br0"])
    assert_error(errors(i), i, "interfaces[0]", "itself")


# ---------------------------------------------------------------- vlan

@pytest.mark.parametrize("vid", [0, 4095])
def test_vlan_id_reserved(vid):
    i = make("vlan", "v", id=vid, link="eth0", name="v")
    assert_error(errors(i), i, "id", f"id = {vid}", "1..4094", "0 and 4095 are reserved")


def test_vlan_id_too_large():
    i = make("vlan", "v", id=5000, link="eth0", name="v")
    assert_error(errors(i), i, "id", "1..4094")


# ---------------------------------------------------------------- nic_attachment

def test_nic_needs_exactly_one_target():
    a = make("nic_attachment", "a", domain="web")
    b = make("nic_attachment", "b", domain="web", network="default", bridge="br0")
    diags = errors(a, b)
    assert_error(diags, a, "network", "exactly one of network")
    assert_error(diags, b, "bridge", "exactly one of network or bridge")


def test_nic_enums_and_queues():
    i = make("nic_attachment", "a", domain="web", network="default", model="virtio-net", link_state="off", queues=0)
    diags = errors(i)
    assert_error(diags, i, "model", "virtio, e1000, e1000e, rtl8139")
    assert_error(diags, i, "link_state", "up, down")
    assert_error(diags, i, "queues", "1..256")


def test_nic_direct_and_tuning_rules():
    direct = [dict(dev="eth1", mode="bridge")]
    ok = make("nic_attachment", "ok", domain="web", type="direct", source=direct,
              driver=[dict(name="qemu", queues=2, rx_queue_size=1024, tx_queue_size=256,
                           host=[dict(csum=False, mrg_rxbuf=False)], guest=[dict(tso4=False)])],
              trust_guest_rx_filters=True, bandwidth=[dict(outbound=[dict(average=100)])])
    ovs = make("nic_attachment", "ovs", domain="web", bridge="ovsbr0",
               virtualport=[dict(type="openvswitch")], vlan=[dict(trunk=True, tag=[dict(id=42, native_mode="untagged"), dict(id=43)])],
               port=[dict(isolated=True)], mtu=[dict(size=9000)])
    assert errors(ok, ovs) == []
    no_source = make("nic_attachment", "a", domain="web", type="direct")
    both = make("nic_attachment", "b", domain="web", type="direct", source=direct, network="default")
    stray = make("nic_attachment", "c", domain="web", network="default", source=direct)
    mismatch = make("nic_attachment", "d", domain="web", type="bridge", network="default")
    diags = errors(no_source, both, stray, mismatch)
    assert_error(diags, no_source, "type", "needs source { dev")
    assert_error(diags, both, "network", "not network")
    assert_error(diags, stray, "source", 'is for type = "direct"')
    assert_error(diags, mismatch, "type", 'does not match network = "default"')
    tuned = make("nic_attachment", "e", domain="web", network="default", model="e1000",
                 driver=[dict(host=[dict(csum=False)])])
    sizes = make("nic_attachment", "f", domain="web", network="default",
                 driver=[dict(rx_queue_size=384, tx_queue_size=512)])
    twice = make("nic_attachment", "j", domain="web", network="default", queues=2, driver=[dict(queues=4)])
    diags = errors(tuned, sizes, twice)
    assert_error(diags, twice, "queues", "give one of them")
    assert_error(diags, tuned, "driver", 'needs model = "virtio", not "e1000"')
    assert_error(diags, sizes, "driver.rx_queue_size", "not a power of two")
    assert_error(diags, sizes, "driver.tx_queue_size", "vhost-user")
    plain_vlan = make("nic_attachment", "g", domain="web", bridge="br0", vlan=[dict(tag=[dict(id=5)])])
    mv = make("nic_attachment", "h", domain="web", type="direct", source=direct,
              vlan=[dict(tag=[dict(id=5)])], port=[dict(isolated=True)], mtu=[dict(size=1400)])
    floor = make("nic_attachment", "i", domain="web", bridge="br0",
                 bandwidth=[dict(inbound=[dict(average=10, floor=5)])])
    diags = errors(plain_vlan, mv, floor)
    assert_error(diags, plain_vlan, "vlan", "openvswitch")
    assert_error(diags, mv, "vlan", "macvtap")
    assert_error(diags, mv, "port", "port { isolated }")
    assert_error(diags, mv, "mtu", "mtu { size }")
    assert_error(diags, floor, "bandwidth.inbound.floor", "libvirt network only")


def test_nic_block_schema():
    i = make("nic_attachment", "a", domain="web", type="direct", source=[dict(dev="eth1", mode="bridged")],
             driver=[dict(name="vhost-user")], vlan=[dict(tag=[dict(id=5000)])])
    diags = errors(i)
    assert "bridge, vepa, private, passthrough" in one(diags, "source[0].mode").message
    assert "vhost, qemu" in one(diags, "driver[0].name").message
    assert "0..4095" in one(diags, "vlan[0].tag[0].id").message


# ---------------------------------------------------------------- port_forward

def fwd(label, host_port, protocol="tcp", **more):
    more.setdefault("to_address", "10.0.0.5")
    more.setdefault("to_port", 80)
    return make("port_forward", label, protocol=protocol, host_port=host_port, **more)


def test_forward_protocol_and_ports():
    a = fwd("a", 80, protocol="icmp")
    b = fwd("b", "90-80")
    c = fwd("c", "80:90")
    d = fwd("d", 70000)
    e = fwd("e", "1-70000")
    f = fwd("f", 81, to_port=0)
    diags = errors(a, b, c, d, e, f)
    assert_error(diags, a, "protocol", "tcp, udp")
    assert_error(diags, b, "host_port", '"90-80"', "reversed")
    assert_error(diags, c, "host_port", '"80:90"', '"N-M"')
    assert_error(diags, d, "host_port", "70000", "1..65535")
    assert_error(diags, e, "host_port", "70000", "1..65535")
    assert_error(diags, f, "to_port", "1..65535")


def test_forward_addresses():
    a = fwd("a", 80, to_address="10.0.0.300")
    b = fwd("b", 81, source="192.168.1.5/24")
    c = fwd("c", 82, source="nowhere")
    diags = errors(a, b, c)
    assert_error(diags, a, "to_address", '"10.0.0.300"', "not a valid IPv4 address")
    assert_error(diags, b, "source", "192.168.1.0/24")
    assert_error(diags, c, "source", '"nowhere"', "CIDR")


def test_forward_to_address_must_be_in_the_named_network():
    n = net("lab", name="my-nat", ip=ip())
    p = fwd("p", 80, to_address="10.0.1.5", network="my-nat")
    q = fwd("q", 81, to_address="10.0.0.5", network="my-nat")
    r = fwd("r", 82, to_address="172.16.0.5", network="elsewhere")  # not in config: skipped
    diags = errors(n, p, q, r)
    assert_error(diags, p, "to_address", '"10.0.1.5"', "10.0.0.0/24", "network.lab")
    assert [d.address for d in diags] == ["port_forward.p"]


def test_forward_network_found_by_label():
    n = net("lab", ip=ip())
    p = fwd("p", 80, to_address="10.0.1.5", network="lab")
    assert_error(errors(n, p), p, "to_address", "network.lab")


def test_duplicate_forward():
    a = fwd("a", 8080)
    b = fwd("b", 8080, to_address="10.0.0.6")
    c = fwd("c", 8080, protocol="udp")
    diags = errors(a, b, c)
    assert_error(diags, b, "host_port", "8080/tcp", "already forwarded by port_forward.a")
    assert len(diags) == 1


def test_overlapping_forward_ranges():
    a = fwd("a", "8000-8010")
    b = fwd("b", 8005)
    assert_error(errors(a, b), b, "host_port", "8005/tcp", "port_forward.a", "8000-8010")


def test_forwards_on_different_interfaces_do_not_clash():
    a = fwd("a", 80, in_interface="eth0")
    b = fwd("b", 80, in_interface="eth1")
    c = fwd("c", 80)  # any interface: clashes with both
    diags = errors(a, b, c)
    assert {d.address for d in diags} == {"port_forward.c"}
    assert len(diags) == 2


# ---------------------------------------------------------------- sysctl

def test_sysctl_keys_are_dotted_names():
    i = make("sysctl_profile", "s", settings={"/proc/sys/net/ipv4/ip_forward": 1, "net/ipv4/ip_forward": 1,
                                              "net..ipv4": 1, "net.ipv4.ip*": 1, "kernel": 1})
    diags = errors(i)
    assert_error(diags, i, 'settings["/proc/sys/net/ipv4/ip_forward"]', "path", "net.ipv4.ip_forward")
    assert_error(diags, i, 'settings["net/ipv4/ip_forward"]', "'/'")
    assert_error(diags, i, 'settings["net..ipv4"]', "empty part")
    assert_error(diags, i, 'settings["net.ipv4.ip*"]', "'ip*'")
    assert_error(diags, i, "settings.kernel", "at least two")


def test_sysctl_values():
    i = make("sysctl_profile", "s", settings={"net.ipv4.ip_forward": True, "net.core.somaxconn": "1\n2"})
    diags = errors(i)
    assert_error(diags, i, 'settings["net.ipv4.ip_forward"]', "a number or a string")
    assert_error(diags, i, 'settings["net.core.somaxconn"]', "one line")


def test_sysctl_settings_required():
    i = make("sysctl_profile", "s", persist=True)
    assert_error(errors(i), i, "settings", 'missing required attribute "settings"')


# ---------------------------------------------------------------- providers

def test_provider_must_serve_the_type():
    i = make("bridge", "br0", provider="libvirt")
    assert_error(errors(i), i, "provider", '"libvirt"', "iproute, netplan")


def test_aliased_provider_instance():
    assert not errors(make("bridge", "br0", provider="netplan.kvm02", dhcp4=True))


def test_dhcp4_and_nameservers_need_netplan():
    i = make("vlan", "v", id=5, link="eth0", dhcp4=True, nameservers=["1.1.1.1"])
    diags = errors(i)
    assert_error(diags, i, "dhcp4", 'provider = "netplan"', "DHCP client")
    assert_error(diags, i, "nameservers", 'provider = "netplan"')


# ---------------------------------------------------------------- cross-instance

def test_two_objects_with_the_same_interface_name():
    a = net("a", bridge="virbr5", ip=ip())
    b = make("bridge", "virbr5")
    c = make("vlan", "v", id=5, link="eth0", name="virbr5")
    diags = errors(a, b, c)
    assert_error(diags, b, "name", '"virbr5"', "already used by network.a")
    assert_error(diags, c, "name", '"virbr5"', "already used by network.a")


def test_default_vlan_names_clash():
    a = make("vlan", "a", id=5, link="eth0")
    b = make("vlan", "b", id=5, link="eth0")
    assert_error(errors(a, b), b, "name", '"eth0.5"', "vlan.a")


def test_bridge_mode_network_refers_to_a_bridge_and_does_not_clash():
    b = make("bridge", "br0", interfaces=["eth1"])
    n = net("lan", mode="bridge", bridge="br0")
    assert not errors(b, n)


def test_a_port_on_two_bridges():
    a = make("bridge", "br0", interfaces=["eth1"])
    b = make("bridge", "br1", interfaces=["eth2", "eth1"])
    assert_error(errors(a, b), b, "interfaces[1]", '"eth1"', "already a port of bridge.br0")


def test_overlapping_subnets():
    a = net("a", ip=ip("10.0.0.1", 16))
    b = net("b", ip=ip("10.1.0.1", 24))
    c = net("c", ip=ip("10.0.5.1", 24))
    diags = errors(a, b, c)
    assert_error(diags, c, "ip[0].address", "10.0.5.0/24 overlaps 10.0.0.0/16 of network.a")
    assert len(diags) == 1


def test_overlap_is_reported_on_the_later_network():
    a = net("a", ip=ip("10.0.5.1", 24))
    b = net("b", ip=ip("10.0.0.1", 16))
    assert_error(errors(a, b), b, "ip[0].address", "10.0.0.0/16 overlaps 10.0.5.0/24 of network.a")


def test_duplicate_network_names_with_count():
    a = make("network", "lab", key=0, mode="isolated")
    b = make("network", "lab", key=1, mode="isolated")
    d = assert_error(errors(a, b), b, "name", '"lab"', "already used by network.lab[0]", "count")
    assert d.address == "network.lab[1]"


def test_scopes_separate_namespaces():
    a = make("bridge", "br0", provider="iproute")
    b = make("bridge", "br0", provider="iproute.other")
    assert errors(a, b)
    diags = validate_instances([a, b], scopes={"iproute": "ns1", "iproute.other": "ns2"})
    assert not diags


# ---------------------------------------------------------------- whole runs

def test_every_error_is_reported_in_one_run():
    insts = [
        net("lab", mode="nated", colour="red", ip=ip("10.300.1.1")),
        make("vlan", "v", id=0, link="eth0"),
        make("bridge", "br", name="br-0123456789abc"),
        make("nic_attachment", "n", domain="web", network="default", mac="01:00:00:00:00:01"),
        fwd("a", 80), fwd("b", 80),
        make("sysctl_profile", "s", settings={"/proc/sys/x/y": 1}),
    ]
    diags = validate_instances(insts)
    got = {(d.address, d.attribute) for d in diags.errors}
    assert got == {
        ("network.lab", "mode"), ("network.lab", "colour"), ("network.lab", "ip[0].address"),
        ("vlan.v", "id"), ("bridge.br", "name"), ("nic_attachment.n", "mac"),
        ("port_forward.b", "host_port"), ("sysctl_profile.s", 'settings["/proc/sys/x/y"]'),
    }
    text = [str(d) for d in diags.errors]
    assert all(t.startswith("main.hcl:") for t in text)


def test_diagnostics_read_file_line_address_message():
    i = net(mtu=10)
    (d,) = validate_instances([i]).errors
    assert str(d) == f"main.hcl:{i.attr_lines['mtu']}: network.lab: mtu = 10 is out of range: must be 68..65535"


def test_validate_instance_alone_has_no_cross_rules():
    a = fwd("a", 80)
    assert not validate_instance(a)
    assert validate_instance(net(mode="bridge"))


def test_per_instance_then_across_equals_the_whole_run():
    insts = [net("a", mtu=10, ip=ip("10.0.0.1", 16)), net("b", ip=ip("10.0.1.1")), fwd("p", 80), fwd("q", 80)]
    whole = sorted(str(d) for d in validate_instances(insts))
    split = [str(d) for i in insts for d in validate_instance(i)] + [str(d) for d in validate_across(insts)]
    assert sorted(split) == whole
    assert len(whole) == 3


# -- the full network shape (issue 11): what libvirt 9.0 refuses, found against the daemon


def test_full_shape_network_validates():
    i = make("network", "lab", forward=[{"mode": "nat", "nat": [{"port": [{"start": 1024, "end": 2048}]}]}],
             bridge=[{"name": "virbr9", "stp": True}], mtu=[{"size": 1400}],
             ip=[{"address": "10.0.0.1", "prefix": 24, "dhcp": [{"range": [{"start": "10.0.0.10", "end": "10.0.0.20"}]}]},
                 {"family": "ipv6", "address": "fd00::1", "prefix": 64}],
             dns=[{"host": [{"ip": "10.0.0.5", "hostname": ["a", "b"]}]}])
    assert errors(i) == []


def test_device_modes_refuse_what_needs_libvirts_own_bridge():
    i = make("network", "lab", forward=[{"mode": "bridge"}], bridge=[{"name": "br0", "stp": True}],
             mtu=[{"size": 1400}], dns=[{"enable": True}])
    diags = errors(i)
    assert_error(diags, i, "mtu", 'mtu is not allowed with forward mode "bridge"')
    assert_error(diags, i, "dns", 'dns is not allowed with forward mode "bridge"')
    assert_error(diags, i, "bridge[0].stp", 'bridge stp is not allowed with forward mode "bridge"')


def test_dhcp_on_one_ipv4_address_only():
    i = net(ip=ip(dhcp_range=[{"start": "10.0.0.10", "end": "10.0.0.20"}])
            + [{"address": "10.0.1.1", "prefix": 24, "dhcp": [{"range": [{"start": "10.0.1.10", "end": "10.0.1.20"}]}]}])
    assert_error(errors(i), i, "ip[1]", "so does ip[0]")


def test_mode_and_forward_together_are_refused():
    i = net(forward=[{"mode": "route"}])
    assert_error(errors(i), i, "mode", "give one of mode or the forward block")


def test_dhcp_checks_read_the_full_shape_paths():
    i = net(ip=[{"address": "10.0.0.1", "prefix": 24,
                 "dhcp": [{"range": [{"start": "10.0.1.10", "end": "10.0.1.20"}]}]}])
    assert_error(errors(i), i, "ip[0].dhcp[0].range[0].start", "outside the network's subnet")
