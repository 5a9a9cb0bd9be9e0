"""``kvmnet doctor``'s checks of host bridges: each managed bridge exists, is up and
holds its addresses; each of its ``interfaces`` exists, is enslaved to it and is up.

Shared by the providers whose live side is a
:class:`~kvmnet.providers.links.LinkManager` (``iproute``, and ``netplan`` with
``apply = true``). The link table comes from the same ``ip -j`` read as their
``read`` (:func:`kvmnet.providers.links.read_table`), whose records keep ``flags``
and ``operstate``; whether a link is up is told by
:func:`kvmnet.providers.links.admin_up` and :func:`~kvmnet.providers.links.carrier_problem`.
"""
from __future__ import annotations

from kvmnet.sdk.doctor import Check, failed, in_netns, passed
from kvmnet.providers.links import LinkTable, admin_up, carrier_problem, read_table


def bridge_checks(address: str, name: str, want: list[str], table: LinkTable,
                  netns: str | None) -> list[Check]:
    """The bridge itself: exists, up, and holds every address in ``want``."""
    link = table.links.get(name)
    what = f"bridge {name} up and addressed"
    if link is None:
        return [failed(what, "bridge", address, f"bridge {name} does not exist",
                       "kvmnet apply creates it again")]
    if not admin_up(link):
        return [failed(what, "bridge", address, f"bridge {name} is down",
                       in_netns(netns, f"ip link set {name} up"))]
    missing = [a for a in want if a not in link.addresses]
    if missing:
        return [failed(what, "bridge", address, f"missing address(es) {', '.join(missing)}",
                       "kvmnet apply adds them again")]
    return [passed(what, "bridge", address, ", ".join(link.addresses))]


def port_checks(address: str, bridge: str, ports: list[str], table: LinkTable,
                netns: str | None) -> list[Check]:
    """Each port: exists, enslaved to ``bridge``, up with a carrier."""
    out = []
    for port in ports:
        what = f"port {port} of {bridge} up"
        link = table.links.get(port)
        if link is None:
            out.append(failed(what, "bridge", address, f"interface {port} does not exist",
                              f"create {port} (kvmnet never creates ports), then kvmnet apply"))
        elif link.master != bridge:
            out.append(failed(what, "bridge", address,
                              f"{port} is enslaved to {link.master}" if link.master
                              else f"{port} is not enslaved to {bridge}",
                              "kvmnet apply enslaves it again"))
        elif (why := carrier_problem(link)) is not None:
            hint = (in_netns(netns, f"ip link set {port} up") if not admin_up(link)
                    else f"check the other end of {port} (cable, peer, or the VM behind it)")
            out.append(failed(what, "bridge", address, f"{port} is {why}", hint))
        else:
            out.append(passed(what, "bridge", address, link.raw.get("operstate", "")))
    return out


def link_checks(managed: dict, netns: str | None) -> list[Check]:
    """Checks of every managed bridge (one bulk read)."""
    bridges = managed.get("bridge", [])
    if not bridges:
        return []
    table = read_table(netns, rtype="bridge")
    out: list[Check] = []
    for m in bridges:
        name = m.attrs.get("name") or m.id
        checks = bridge_checks(m.address, name, list(m.attrs.get("addresses") or []), table, netns)
        out += checks
        if name in table.links:
            out += port_checks(m.address, name, list(m.attrs.get("interfaces") or []), table, netns)
    return out
