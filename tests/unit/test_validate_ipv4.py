"""engine/validate/ipv4.py does IPv4 on plain integers for speed: it must agree with
the ``ipaddress`` module (addresses, their text, subnets, host ranges, netmasks)."""
from __future__ import annotations

import ipaddress
import random

import pytest

from kvmnet.providers import ipv4
from kvmnet.providers.formats import cidr_problem, ipv4_problem, netmask_prefix, netmask_problem
from kvmnet.providers.libvirt.network_rules import network_subnet
from kvmnet.providers.ipv4 import Subnet

VALID = [
    "0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.122.1", "1.2.3.4", "172.16.0.0",
    "100.64.0.1", "127.0.0.1", "224.0.0.1", "9.99.199.249", "250.251.252.253",
    "0.0.0.1", "1.0.0.0", "10.10.10.10", "200.1.0.255",
]
INVALID = [
    "10.300.1.0", "256.0.0.0", "1.2.3.256", "999.1.1.1", "01.2.3.4", "1.02.3.4", "1.2.3.00",
    "00.0.0.0", "010.0.0.1", " 1.2.3.4", "1.2.3.4 ", "1. 2.3.4", "1.2.3.4\n", "\t1.2.3.4",
    "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "", ".", "...", "1.2.3.4/24",
    "a.b.c.d", "1.2.3.x", "-1.2.3.4", "+1.2.3.4", "1.2.3.-4", "0x1.2.3.4", "1e1.2.3.4",
    "١.٢.٣.٤", "1.2.3.４", "1.2.3.4\x00", "1,2,3,4", "16909060", "1.2.3.4:80", "::1",
    "::ffff:1.2.3.4", "1.2.3.4.", "2556.1.1.1", "1.2.3.2555",
]


def _ipaddress_int(text):
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _random_addresses(n=2000, seed=4):
    rnd = random.Random(seed)
    edges = [0, 1, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFF, 0x1000000, 0x7FFFFFFF,
             0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x0A000001, 0xC0A87A01]
    return edges + [rnd.getrandbits(32) for _ in range(n)]


@pytest.mark.parametrize("text", VALID + INVALID)
def test_dotted_quad_agrees_with_ipaddress(text):
    expected = _ipaddress_int(text)
    assert ipv4.is_dotted_quad(text) is (expected is not None)
    assert ipv4.parse(text) == expected
    assert (ipv4_problem(text) is None) is (expected is not None)
    if expected is not None:
        assert ipv4.to_int(text) == expected


@pytest.mark.parametrize("text", VALID)
def test_the_valid_sample_is_valid(text):
    assert ipv4.parse(text) is not None


@pytest.mark.parametrize("text", INVALID)
def test_the_invalid_sample_is_invalid(text):
    assert ipv4.parse(text) is None
    assert not ipv4.is_dotted_quad(text)


@pytest.mark.parametrize("value", [None, 1, 16909060, b"1.2.3.4", ["1.2.3.4"], 1.5])
def test_parse_of_a_non_string_is_none(value):
    assert ipv4.parse(value) is None


def test_text_round_trip_on_random_addresses():
    for n in _random_addresses():
        text = ipv4.to_text(n)
        assert text == str(ipaddress.IPv4Address(n))
        assert ipv4.parse(text) == n
        assert ipv4.to_int(text) == n
        assert ipv4.is_dotted_quad(text)


@pytest.mark.parametrize("prefix", range(33))
def test_subnet_agrees_with_ipv4network(prefix):
    rnd = random.Random(prefix)
    for address in _random_addresses(200, seed=prefix):
        sub = Subnet(address, prefix)
        net = ipaddress.IPv4Network((address, prefix), strict=False)
        assert sub.network == int(net.network_address)
        assert sub.broadcast == int(net.broadcast_address)
        assert sub.prefixlen == net.prefixlen
        assert str(sub) == str(net)
        assert repr(sub) == f"Subnet({net})"
        assert sub.first_host() == int(next(iter(net.hosts())))
        probes = [sub.network, sub.broadcast, sub.network - 1, sub.broadcast + 1,
                  address, rnd.getrandbits(32)]
        for probe in probes:
            if 0 <= probe <= 0xFFFFFFFF:
                assert (probe in sub) is (ipaddress.IPv4Address(probe) in net), (str(net), probe)


def test_prefix_33_is_refused_like_ipaddress():
    with pytest.raises(ValueError):
        ipaddress.IPv4Network((0x0A000000, 33), strict=False)
    with pytest.raises(ValueError):
        Subnet(0x0A000000, 33)
    assert cidr_problem("10.0.0.0/33") is not None


CIDRS = [
    "10.0.0.0/8", "10.0.0.1/8", "192.168.122.1/24", "192.168.122.0/24", "10.1.2.3/32",
    "10.1.2.3/31", "10.1.2.2/31", "0.0.0.0/0", "1.2.3.4/0", "172.16.5.4/12", "10.0.0.0/33",
    "10.300.1.0/24", "01.2.3.4/24", "1.2.3/24", "1.2.3.4.5/24", "1.2.3.4", "1.2.3.4/",
    "1.2.3.4/-1", "1.2.3.4/ 24", "1.2.3.4/+24", "1.2.3.4/024", "1.2.3.4/٢٤", "1.2.3.4/24/8", " 1.2.3.4/24",
]


@pytest.mark.parametrize("text", CIDRS)
def test_cidr_agrees_with_ipv4network(text):
    addr, _, prefix = text.partition("/")
    try:
        loose = ipaddress.IPv4Network(text, strict=False)
        # ipaddress also takes a bare address; kvmnet wants A.B.C.D/N
        expected_ok = "/" in text
    except ValueError:
        loose, expected_ok = None, False
    assert (cidr_problem(text) is None) is expected_ok
    try:
        strict = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        strict = None
    assert (cidr_problem(text, network=True) is None) is (expected_ok and strict is not None)
    if expected_ok:
        sub = Subnet(ipv4.to_int(addr), int(prefix))
        assert str(sub) == str(loose)
        if strict is None:
            assert str(loose) in cidr_problem(text, network=True)   # "the network is ..."


NETMASKS = [f"{ipaddress.IPv4Network(f'0.0.0.0/{p}').netmask}" for p in range(33)] + [
    "255.0.255.0", "255.255.255.1", "0.0.0.255", "0.0.255.255", "0.255.255.255", "255.255.254.255", "128.0.0.1",
    "255.255.255.256", "255.255.255", "255.255.255.0.0", "255.255.255.00", "",
]


@pytest.mark.parametrize("mask", NETMASKS)
def test_netmask_agrees_with_ipaddress(mask):
    try:
        expected = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
        # ipaddress also takes host masks (0.0.0.255) and a plain prefix; kvmnet
        # wants a netmask in dotted form
        if not ipv4.is_dotted_quad(mask):
            expected = None
        elif expected not in (0, 32) and str(ipaddress.IPv4Network(f"0.0.0.0/{expected}").netmask) != mask:
            expected = None
    except ValueError:
        expected = None
    assert (netmask_problem(mask) is None) is (expected is not None)
    if expected is not None:
        assert netmask_prefix(mask) == expected


@pytest.mark.parametrize("address", ["192.168.122.1", "10.1.2.3", "172.16.254.9", "0.0.0.0"])
@pytest.mark.parametrize("prefix", [0, 1, 8, 15, 16, 23, 24, 25, 30, 31, 32])
def test_network_subnet_by_prefix_or_netmask(address, prefix):
    net = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    by_prefix = network_subnet({"ip": [{"address": address, "prefix": prefix}]})
    by_mask = network_subnet({"ip": [{"address": address, "netmask": str(net.netmask)}]})
    assert str(by_prefix) == str(by_mask) == str(net)
    assert by_prefix.first_host() == int(next(iter(net.hosts())))


@pytest.mark.parametrize("address", ["10.300.1.0", "1.2.3", "01.2.3.4", "1.2.3.4 "])
def test_network_subnet_of_a_bad_address_is_none(address):
    assert network_subnet({"ip": [{"address": address, "prefix": 24}]}) is None
