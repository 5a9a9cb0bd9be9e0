"""The libvirt provider's types, ``network`` and ``nic_attachment``: light (no
libvirt import), so the engine can validate and plan them without the daemon."""
from __future__ import annotations

from typing import Iterator

from kvmnet.providers import ipv4
from kvmnet.providers.libvirt import ipv6_rules, network_rules, nic_rules
from kvmnet.providers.libvirt.network_canon import canonical_network, upgrade_row, v1_view
from kvmnet.providers.link_rules import interface_claim
from kvmnet.sdk.rules import Subject, known, show
from kvmnet.sdk.types import Claim, Offer, ResourceType, label_name

SCHEMAS = "kvmnet.schemas"
SUBNET = "network subnet"   # what a network offers to others' lookups, by name


# the single blocks of a nic_attachment, by path (a repeated block: vlan.tag)
NIC_BLOCKS: dict[str, dict] = {"source": {}, "driver": {"host": {}, "guest": {}},
              "bandwidth": {"inbound": {}, "outbound": {}}, "port": {}, "vlan": {},
              "virtualport": {"parameters": {}}, "mtu": {}}


def _canon_block(v, subs: dict):
    """A single block as a dict without unset keys (config gives a list of one dict)."""
    if isinstance(v, list):
        v = v[0] if len(v) == 1 else (None if not v else v)
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        if k in subs:
            x = _canon_block(x, subs[k])
        elif k == "tag" and isinstance(x, list):
            x = [{tk: tv for tk, tv in t.items() if tv is not None} if isinstance(t, dict) else t
                 for t in x]
        if x is not None:
            out[k] = x
    return out


def canonical_nic(a: dict) -> dict:
    """MAC lower-cased; every block a dict without unset keys; the v1 ``queues`` as
    ``driver { queues }``; ``type`` from ``network`` / ``bridge`` when not given."""
    if isinstance(a.get("mac"), str):
        a["mac"] = a["mac"].lower()
    for k, subs in NIC_BLOCKS.items():
        if k in a:
            a[k] = _canon_block(a[k], subs)
    queues = a.pop("queues", None)
    if queues is not None:
        driver = a.get("driver")
        driver = dict(driver) if isinstance(driver, dict) else {}
        driver.setdefault("queues", queues)
        a["driver"] = driver
    if a.get("type") is None:
        a["type"] = ("network" if a.get("network") is not None
                     else "bridge" if a.get("bridge") is not None else None)
    return a


def network_name(s: Subject):
    name = s.get("name")
    return s.inst.name if name is None else name


def _name_taken(claim: Claim, _earlier: Claim, other: str) -> str:
    return f"network name {show(claim.key)}{claim.note} is already used by {other}"


def _subnet_text(claim: Claim) -> str:
    return f"{ipv4.to_text(claim.order[0])}/{claim.order[1]}"


def _overlap(claim: Claim, earlier: Claim, other: str) -> str:
    return f"subnet {_subnet_text(claim)} overlaps {_subnet_text(earlier)} of {other}"


def network_claims(s: Subject) -> Iterator[Claim]:
    """The bridge libvirt creates (not an existing device in a device mode), the
    network's libvirt name, and its subnet."""
    mode, bridge = network_rules.mode_of(s.attrs), network_rules.bridge_of(s.attrs)
    if known(mode) and mode not in network_rules.DEVICE_MODES and known(bridge):
        yield interface_claim("bridge", bridge)
    name = network_name(s)
    if known(name):
        how = "" if s.get("name") is not None else " (the block label; with count or for_each set a distinct name)"
        yield Claim("network name", name, "name", _name_taken, note=how)
    subnet = network_rules.subnet_of(s)
    if subnet is not None and mode != "bridge":   # bridge mode: the ip block is an error already
        first = network_rules.ipv4_facts(s)[0][0]
        yield Claim("subnet", None, f"ip[{first}].address", _overlap,
                    span=(subnet.network, subnet.broadcast), order=(subnet.network, subnet.prefixlen))


def network_offers(s: Subject) -> Iterator[Offer]:
    """The subnets of its IPv4 and IPv6 ``ip`` blocks under the network's name (None
    while one is unknown), for a ``port_forward``'s ``network``."""
    name = network_name(s)
    if known(name):
        yield Offer(SUBNET, name, network_rules.all_subnets(s.attrs))


def nic_id(a: dict) -> str | None:
    """``DOMAIN/MAC`` once both are known."""
    if isinstance(a.get("mac"), str) and isinstance(a.get("domain"), str):
        return f"{a['domain']}/{a['mac']}"
    return None


def parse_nic_id(text: str) -> dict:
    domain, sep, mac = text.rpartition("/")
    if not sep or not domain or not mac:
        raise ValueError("a nic_attachment ID is DOMAIN/MAC")
    return {"domain": domain, "mac": mac.lower()}


NETWORK = ResourceType(
    name="network", default_provider="libvirt", schema_file=(SCHEMAS, "network.json"),
    # what changes in place is the provider's call (replace_paths); this is the
    # fallback while values are unknown: everything but autostart and active replaces
    replace_on=frozenset({"name", "uuid", "ipv6", "trust_guest_rx_filters", "forward", "bridge", "mtu", "mac",
                          "domain", "dns", "ip", "route", "bandwidth", "port", "portgroup", "vlan",
                          "virtualport", "dnsmasq_options"}),
    computed=frozenset({"uuid", "kept"}),
    keep_unconfigured=True,         # a replace never drops what the config leaves out
    kept_on_replace=frozenset({"kept"}),
    # active: desired state (a stopped network is started by the next apply)
    defaults={"autostart": True, "active": True},
    default_name=label_name,
    canonical=canonical_network,
    upgrade=upgrade_row,            # v1 rows (mode, bridge = "virbr1", ip { dhcp_range }) → full blocks
    reference_view=v1_view,         # network.lab.bridge: the name when the config wrote bridge = "virbr1"
    computed_if_omitted=frozenset({"bridge"}),
    consumable=True,
    rules=network_rules.RULES + ipv6_rules.RULES,
    claims=network_claims,
    offers=network_offers,
    doctor_layer="network",
)

NIC_ATTACHMENT = ResourceType(
    name="nic_attachment", default_provider="libvirt", schema_file=(SCHEMAS, "nic_attachment.json"),
    # in place (updateDeviceFlags): network, bridge, type between those two, link_state,
    # bandwidth; to or from type "direct" replaces (the provider's replace_paths)
    replace_on=frozenset({"model", "mac", "queues", "live", "persistent", "domain", "source",
                          "driver", "port", "vlan", "virtualport", "trust_guest_rx_filters",
                          "mtu"}),
    # the interface's elements kvmnet does not model (<boot>, <rom>, <address>, ...),
    # verbatim: not managed, carried into the new interface by a replace
    computed=frozenset({"kept"}),
    kept_on_replace=frozenset({"kept"}),
    defaults={"model": "virtio", "live": True, "persistent": True, "link_state": "up"},
    canonical=canonical_nic,
    identity=nic_id,
    parse_id=parse_nic_id,
    computed_if_omitted=frozenset({"mac"}),
    rules=nic_rules.RULES,
    doctor_layer="nic",
)

TYPES = (NETWORK, NIC_ATTACHMENT)
# bottom up: the daemon, its networks, their dnsmasq; hot-plugged NICs come last
LAYERS = {"libvirt": 10, "network": 20, "dhcp": 30, "nic": 70}
