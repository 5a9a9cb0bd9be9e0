"""The ``networkUpdate`` steps that turn one set of DHCP ranges/hosts into another (pure).

A step is ``(command, section, entry)`` with command ``"delete" | "modify" | "add"``
and section ``"host" | "range"``; the network operations translate them into
``virNetworkUpdate`` calls. Deletions come first (so an address or MAC being moved
is free before it is re-used), then modifications, then additions.
"""
from __future__ import annotations

from typing import NamedTuple


class Step(NamedTuple):
    command: str      # delete | modify | add
    section: str      # host | range
    entry: dict


def _host_key(h: dict) -> str:
    """A host is known by its MAC (IPv4), else its DUID/IAID ``id`` (IPv6), else its name."""
    if h.get("mac"):
        return str(h["mac"]).lower()
    return f"id:{h['id']}" if h.get("id") else f"name:{h.get('name')}"


def _range_key(r: dict) -> tuple:
    return (r.get("start"), r.get("end"))


def host_steps(current: list[dict], desired: list[dict]) -> list[Step]:
    cur = {_host_key(h): h for h in current}
    want = {_host_key(h): h for h in desired}
    deletes = [Step("delete", "host", h) for k, h in cur.items() if k not in want]
    changed = [(cur[k], h) for k, h in want.items() if k in cur and cur[k] != h]
    adds = [Step("add", "host", h) for k, h in want.items() if k not in cur]
    # an IP (or name) handed from one existing host to another cannot be done with
    # MODIFY while the other still holds it: those become delete + add
    kept_ips = {h.get("ip") for k, h in cur.items() if k in want}
    modifies = []
    for old, new in changed:
        if new.get("ip") != old.get("ip") and new.get("ip") in kept_ips:
            deletes.append(Step("delete", "host", old))
            adds.append(Step("add", "host", new))
        else:
            modifies.append(Step("modify", "host", new))
    return deletes + modifies + adds


def range_steps(current: list[dict], desired: list[dict]) -> list[Step]:
    cur = {_range_key(r): r for r in current}
    want = {_range_key(r): r for r in desired}
    return ([Step("delete", "range", r) for k, r in cur.items() if k not in want]
            + [Step("add", "range", r) for k, r in want.items() if k not in cur])


def dhcp_steps(current_ip: dict | None, desired_ip: dict | None) -> list[Step]:
    """Steps from ``current_ip`` to ``desired_ip`` (canonical ``ip`` values)."""
    cur = current_ip or {}
    want = desired_ip or {}
    # ranges first when removing (a host outside every range is fine in libvirt)
    return (range_steps(cur.get("dhcp_range") or [], want.get("dhcp_range") or [])
            + host_steps(cur.get("dhcp_host") or [], want.get("dhcp_host") or []))
