"""``kvmnet doctor`` for host links: each managed bridge exists, is up and holds its
addresses; each of its ``interfaces`` exists, is enslaved to it and is up.

The link table comes from the same ``ip -j`` read as the provider's ``read``
(:func:`kvmnet.providers.links.read_table`), whose records keep ``flags`` and
``operstate``. The netplan provider's doctor module uses :func:`link_checks` too
(its live side is the same :class:`~kvmnet.providers.links.LinkManager`); libvirt's
uses :func:`admin_up` for the bridges libvirt creates.
"""
from __future__ import annotations

from kvmnet.engine.doctor import Check, failed, in_netns, passed
from kvmnet.providers.links import Link, LinkTable, read_table

# operstates that mean "no traffic passes" (RFC 2863 names, as ``ip`` prints them)
NO_CARRIER = ("DOWN", "LOWERLAYERDOWN", "NOTPRESENT")


def admin_up(link: Link) -> bool:
    """Set up (``ip link set X up``), whether or not it has a carrier: a bridge
    with no port up is ``UP`` with operstate ``DOWN``."""
    return "UP" in (link.raw.get("flags") or [])


def carrier_problem(link: Link) -> str | None:
    """Why traffic cannot pass a port, or None."""
    if not admin_up(link):
        return "administratively down"
    state = link.raw.get("operstate")
    if state in NO_CARRIER:
        return f"no carrier (operstate {state})"
    return None


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


def diagnose(provider, managed: dict, host_netns: str | None) -> list[Check]:
    return link_checks(managed, provider.links.netns)
