"""The shape of libvirt's network XML as kvmnet models it: one table, one rule.

Read from libvirt 9.0's ``network.rng`` / ``networkcommon.rng`` and the "Network
XML format" page (libvirt-doc's formatnetwork.html). The mechanical rule (issue 11):
an element becomes a block named like it in snake_case, its XML attributes become
attributes of that block in snake_case, repeated elements repeat (a list of
blocks), and an element whose only content is text becomes an attribute of its
parent named like the element. ``yes``/``no`` and ``on``/``off`` become bools; the
spelling written back is fixed per attribute by libvirt's schema, so it lives here.

Everything the table does not name is "unknown": netxml keeps it verbatim.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property

DNSMASQ_NS = "http://libvirt.org/schemas/network/dnsmasq/1.0"

STR, INT, YESNO, ONOFF, YES = "str", "int", "yesno", "onoff", "yes"
BOOLS = {YESNO: ("yes", "no"), ONOFF: ("on", "off"), YES: ("yes", "no")}


@cache
def snake(name: str) -> str:
    """``forwardPlainNames`` → ``forward_plain_names`` (memoised: the table's names
    are few and every canonical form asks for them)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass(frozen=True)
class Attr:
    xml: str
    kind: str = STR

    @cached_property
    def key(self) -> str:
        return snake(self.xml)


@dataclass(frozen=True)
class El:
    """An element: ``many`` repeats (a list); ``text`` is text-only (an attribute
    of the parent, a list of strings when ``many``)."""

    tag: str
    attrs: tuple[Attr, ...] = ()
    children: tuple[El, ...] = ()
    many: bool = False
    text: bool = False
    key_name: str | None = None

    @cached_property
    def key(self) -> str:
        return self.key_name or snake(self.tag.rpartition("}")[2])

    @cached_property
    def by_key(self) -> dict[str, El]:
        """The children by their attribute-side key, built once per element."""
        return {c.key: c for c in self.children}

    def child(self, tag: str) -> El | None:
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def attr(self, name: str) -> Attr | None:
        for a in self.attrs:
            if a.xml == name:
                return a
        return None


def _a(*spec: str) -> tuple[Attr, ...]:
    """``"name"`` or ``"name:kind"`` → Attr."""
    out = []
    for s in spec:
        name, _, kind = s.partition(":")
        out.append(Attr(name, kind or STR))
    return tuple(out)


LEASE = El("lease", _a("expiry:int", "unit"))
BANDWIDTH = El("bandwidth", (), (
    El("inbound", _a("average:int", "peak:int", "burst:int", "floor:int")),
    El("outbound", _a("average:int", "peak:int", "burst:int", "floor:int")),
))
VLAN = El("vlan", _a("trunk:yes"), (El("tag", _a("id:int", "nativeMode"), many=True),))
VIRTUALPORT = El("virtualport", _a("type"), (
    El("parameters", _a("managerid:int", "typeid:int", "typeidversion:int", "instanceid",
                        "profileid", "interfaceid")),
))

NETWORK = El("network", _a("ipv6:yesno", "trustGuestRxFilters:yesno"), (
    El("name", text=True),
    El("uuid", text=True),
    El("forward", _a("mode", "dev", "managed:yesno"), (
        El("nat", _a("ipv6:yesno"), (El("address", _a("start", "end")), El("port", _a("start:int", "end:int")))),
        El("interface", _a("dev"), many=True),
        El("pf", _a("dev"), many=True),
        El("address", _a("type", "domain", "bus", "slot", "function", "multifunction:onoff"), many=True),
        El("driver", _a("name")),
    )),
    El("bridge", _a("name", "stp:onoff", "delay:int", "macTableManager", "zone")),
    El("mtu", _a("size:int")),
    El("mac", _a("address")),
    El("domain", _a("name", "localOnly:yesno")),
    El("dns", _a("enable:yesno", "forwardPlainNames:yesno"), (
        El("forwarder", _a("addr", "domain"), many=True),
        El("txt", _a("name", "value"), many=True),
        El("host", _a("ip"), (El("hostname", text=True, many=True),), many=True),
        El("srv", _a("service", "protocol", "domain", "target", "port:int", "priority:int", "weight:int"),
           many=True),
    )),
    VLAN,
    BANDWIDTH,
    El("port", _a("isolated:yesno")),
    VIRTUALPORT,
    El("portgroup", _a("name", "default:yesno", "trustGuestRxFilters:yesno"), (VLAN, VIRTUALPORT, BANDWIDTH),
       many=True),
    El("ip", _a("family", "address", "prefix:int", "netmask", "localPtr:yesno"), (
        El("tftp", _a("root")),
        El("dhcp", (), (
            El("range", _a("start", "end"), (LEASE,), many=True),
            El("host", _a("mac", "id", "name", "ip"), (LEASE,), many=True),
            El("bootp", _a("file", "server")),
        )),
    ), many=True),
    El("route", _a("family", "address", "prefix:int", "netmask", "gateway", "metric:int"), many=True),
    El(f"{{{DNSMASQ_NS}}}options", (), (El(f"{{{DNSMASQ_NS}}}option", _a("value"), many=True),),
       key_name="dnsmasq_options"),
))

# what libvirt itself fills in or reports only live: not configuration, never kept
LIBVIRT_FILLS = {
    "network": ("connections",),
    "interface": ("connections",),
    "address": ("connections",),
    "bandwidth": ("classID",),
}


def walk(el: El = NETWORK, path: str = ""):
    """(path, element) of every element in the table, ``ip.dhcp.range`` style."""
    for c in el.children:
        p = f"{path}.{c.key}" if path else c.key
        yield p, c
        yield from walk(c, p)
