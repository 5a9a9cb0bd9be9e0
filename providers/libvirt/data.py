"""The libvirt provider's data sources: ``data "network"`` (a network it may not
manage, e.g. the stock ``default`` network's bridge) and ``data "domain"`` (a
guest's NICs and MACs). Types are light (no libvirt import); reads are below."""
from __future__ import annotations

from kvmnet.sdk.provider import ProviderError
from kvmnet.sdk.types import DataType

NETWORK = DataType(
    name="network",
    description="A libvirt network, by name",
    arguments={"name": "the network's name"},
    required=("name",),
    attributes={"name": "the name", "uuid": "the UUID", "bridge": "the bridge device (null if none)",
                "mode": "the forward mode (isolated: no forward)", "active": "running",
                "autostart": "started with libvirtd", "addresses": 'the IPv4/IPv6 addresses, "ADDR/PREFIX"'},
)

DOMAIN = DataType(
    name="domain",
    description="A libvirt domain (guest), by name",
    arguments={"name": "the domain's name"},
    required=("name",),
    attributes={"name": "the name", "active": "running", "macs": "the MACs of its NICs, in order",
                "interfaces": "each NIC: mac, type, network/bridge source, model"},
)

DATA_TYPES = (NETWORK, DOMAIN)


def _prefix(ip: dict) -> str | None:
    if ip.get("prefix") is not None:
        return f"{ip['address']}/{ip['prefix']}"
    if ip.get("netmask"):
        import ipaddress
        return str(ipaddress.ip_interface(f"{ip['address']}/{ip['netmask']}"))
    return ip.get("address")


def network_data(attrs: dict, active: bool, autostart: bool) -> dict:
    """The data source's attributes from a network's canonical attributes."""
    fwd = attrs.get("forward") or {}
    return {
        "name": attrs.get("name"),
        "uuid": attrs.get("uuid"),
        "bridge": (attrs.get("bridge") or {}).get("name"),
        "mode": fwd.get("mode") or "isolated",
        "active": active,
        "autostart": autostart,
        "addresses": [a for a in (_prefix(ip) for ip in attrs.get("ip") or [] if ip.get("address"))
                      if a],
    }


def read_network(conn, name: str) -> dict:
    from kvmnet.providers.libvirt import networks
    v = networks.view_of(conn, name)
    if v is None:
        raise ProviderError(f'no libvirt network named "{name}"')
    attrs, _mark = v.attrs()
    return network_data(attrs, bool(v.active), bool(v.autostart))


def read_domain(conn, name: str) -> dict:
    from kvmnet.providers.libvirt import nics
    d = nics.view_of(conn, name)
    if d is None:
        raise ProviderError(f'no libvirt domain named "{name}"')
    interfaces = []
    for mac in d.macs():
        nic = d.nic_attrs(mac) or {"mac": mac}
        interfaces.append({k: nic.get(k) for k in ("mac", "type", "network", "bridge", "model")})
    return {"name": d.name, "active": bool(d.active), "macs": list(d.macs()), "interfaces": interfaces}
