"""Network operations on an open libvirt connection: read all, create, update, delete.

Reading costs a few list calls plus each network's live and saved XML (no per-network
calls for the autostart and active flags: those come from filtered lists).
"""
from __future__ import annotations

from dataclasses import dataclass

from kvmnet.providers.libvirt.types import NETWORK
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.libvirt import net_update, netxml, network_restart, safe_replace
from kvmnet.providers.libvirt.lv import libvirt, libvirt_error, lookup_network, names_listed, views_of
from kvmnet.sdk.killpoints import hit as kill_point, register as register_kill_points

register_kill_points("libvirt", "libvirt.network-define", "libvirt.network-defined",
                     "libvirt.network-started", "libvirt.network-update",
                     "libvirt.network-updated", "libvirt.network-delete",
                     "libvirt.network-deleted")

# what ``update`` changes in place: autostart, active, and what virNetworkUpdate
# changes live (net_update.IN_PLACE); a restart or a replace does the rest (SPEC §3)
IN_PLACE = ("autostart", "active", *net_update.IN_PLACE)
_NOT_COMPARED = ("autostart", "active", "uuid", "kept")


@dataclass
class NetworkView:
    """One network as read: its XML and what was derived from it."""

    name: str
    live_xml: str | None        # running definition (None when inactive)
    saved_xml: str | None       # persistent definition (None when transient)
    active: bool
    autostart: bool
    persistent: bool

    @property
    def definition(self) -> str:
        return self.saved_xml or self.live_xml or ""

    def attrs(self) -> tuple[dict, str | None]:
        """Canonical attributes (saved definition, live DHCP entries merged in) and mark."""
        attrs, mark = netxml.parse_network(self.definition)
        if self.live_xml and self.saved_xml and self.live_xml != self.saved_xml:
            live, _ = netxml.parse_network(self.live_xml)
            attrs["ip"] = netxml.merge_live_dhcp(attrs["ip"], live["ip"])
        attrs["autostart"] = self.autostart
        attrs["active"] = self.active
        return NETWORK.canon(attrs), mark


def read_all(conn) -> dict[str, NetworkView]:
    """Every network on the connection, keyed by name."""
    lv = libvirt()
    nets = conn.listAllNetworks(0)
    active = names_listed(conn.listAllNetworks, lv.VIR_CONNECT_LIST_NETWORKS_ACTIVE)
    autostart = names_listed(conn.listAllNetworks, lv.VIR_CONNECT_LIST_NETWORKS_AUTOSTART)
    persistent = names_listed(conn.listAllNetworks, lv.VIR_CONNECT_LIST_NETWORKS_PERSISTENT)
    return views_of(nets, lambda net, name: view(net, name, name in active, name in autostart,
                                                 name in persistent), lv.VIR_ERR_NO_NETWORK)


def view(net, name: str, active: bool, autostart: bool, persistent: bool) -> NetworkView:
    lv = libvirt()
    xml = net.XMLDesc(0)
    live_xml = xml if active else None
    saved_xml = None
    if persistent:
        if not active:
            saved_xml = xml
        else:
            try:
                saved_xml = net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)
            except lv.libvirtError as e:       # the test driver knows no flags
                if e.get_error_code() != lv.VIR_ERR_INVALID_ARG:
                    raise
                saved_xml = xml
    return NetworkView(name, live_xml, saved_xml, active, autostart, persistent)


def view_of(conn, name: str) -> NetworkView | None:
    """The network ``name`` as it is, or None when there is none (also when it goes
    away while being read: another change of the same walk may be removing it)."""
    lv = libvirt()
    net = lookup_network(conn, name)
    if net is None:
        return None
    try:
        return view(net, name, bool(net.isActive()), bool(net.autostart()), bool(net.isPersistent()))
    except lv.libvirtError as e:
        if e.get_error_code() == lv.VIR_ERR_NO_NETWORK:
            return None
        raise


# -- changes -------------------------------------------------------------------------
def create(conn, attrs: dict, mark: str) -> dict:
    """Define (with the mark, and the UUID ``attrs["uuid"]`` when kvmnet chose one),
    set autostart, start (unless ``active = false``). A failed start undefines again."""
    lv = libvirt()
    a = NETWORK.canon(attrs)
    name = a["name"]
    if view_of(conn, name) is not None:
        raise ProviderError(f'network "{name}" already exists; use kvmnet import to adopt it')
    xml = netxml.render_network(a, mark, uuid=attrs.get("uuid"))
    kill_point("libvirt.network-define")
    with libvirt_error(f'network "{name}": define'):
        net = conn.networkDefineXML(xml)
    kill_point("libvirt.network-defined")
    try:
        with libvirt_error(f'network "{name}": start'):
            net.setAutostart(1 if a.get("autostart", True) else 0)
            if a.get("active", True):
                net.create()
        kill_point("libvirt.network-started")
    except ProviderError:
        try:
            net.undefine()
        except lv.libvirtError:
            pass
        raise
    return read_back(conn, name)


def read_back(conn, name: str) -> dict:
    v = view_of(conn, name)
    if v is None:
        raise ProviderError(f'network "{name}" is gone right after the change')
    return v.attrs()[0]


def _differs(want, have) -> bool:
    """``want`` (desired: None = not configured) differs from ``have``; dicts by set keys."""
    if want is None:
        return False
    if isinstance(want, dict) and isinstance(have, dict):
        return any(_differs(w, have.get(k)) for k, w in want.items())
    if isinstance(want, list) and isinstance(have, list):
        return len(want) != len(have) or any(_differs(w, h) for w, h in zip(want, have, strict=True))
    return bool(want != have)


def _without_dhcp_entries(ip: dict) -> dict:
    out = dict(ip)
    dhcp = {k: v for k, v in (ip.get("dhcp") or {}).items() if k not in ("range", "host")}
    out["dhcp"] = dhcp or None
    return out


def _without_updatable(a: dict) -> dict:
    """``a`` without what virNetworkUpdate changes outside the ip blocks (DNS hosts,
    SRV and TXT records, forward interfaces, portgroups); a block left empty goes."""
    out = dict(a)
    out.pop("portgroup", None)
    for block, keys in (("dns", ("host", "srv", "txt")), ("forward", ("interface",))):
        v = out.get(block)
        if isinstance(v, dict):
            rest = {k: x for k, x in v.items() if k not in keys}
            out[block] = rest or None
    return out


def not_in_place(current: dict, desired: dict) -> list[str]:
    """Attributes that differ and cannot change in place (set ones only): everything
    but autostart, active and what virNetworkUpdate changes (net_update.IN_PLACE)."""
    cur, want_all = _without_updatable(current), _without_updatable(desired)
    bad = [k for k, v in want_all.items()
           if k not in _NOT_COMPARED and k != "ip" and _differs(v, cur.get(k))]
    want, have = desired.get("ip"), current.get("ip")
    if want is not None:
        if not isinstance(have, list) or len(want) != len(have):
            bad.append("ip")
        else:
            for i, (w, h) in enumerate(zip(want, have, strict=True)):
                if _differs(_without_dhcp_entries(w), _without_dhcp_entries(h)):
                    bad.append(f"ip[{i}]")
    return bad


def update(conn, attrs: dict, mark: str) -> dict:
    """What virNetworkUpdate changes (DHCP ranges and hosts of every ip block, DNS
    hosts/SRV/TXT, forward interfaces, portgroups: the live and the saved definition
    each brought to the desired set, without a restart), autostart, mark, and running
    or not (``active``): a network to stop is stopped first, one to start is started
    last, from its updated saved definition. Anything else is a restart (same name
    and UUID) when :mod:`network_restart` allows, else refused (a replace)."""
    want = NETWORK.canon(attrs)
    name = want["name"]
    v = view_of(conn, name)
    if v is None:
        raise ProviderError(f'network "{name}" does not exist')
    current, current_mark = v.attrs()
    bad = not_in_place(current, want)
    if bad and network_restart.restart_paths(current, want) is not None:
        return _restart(conn, v, current, want, mark)
    if bad:
        raise ProviderError(f'network "{name}": {", ".join(bad)} cannot change in place (replace it)')
    net = conn.networkLookupByName(name)
    kill_point("libvirt.network-update")
    if want.get("active") is False and v.active:
        with libvirt_error(f'network "{name}": stop'):
            net.destroy()
        v = view_of(conn, name)
        if v is None:       # a transient network is gone once stopped
            raise ProviderError(f'network "{name}" is transient: stopping it removed it')
    _update_sections(net, v, want)
    if want.get("autostart") is not None and bool(want["autostart"]) != v.autostart:
        with libvirt_error(f'network "{name}": autostart'):
            net.setAutostart(1 if want["autostart"] else 0)
    if mark and current_mark != mark and v.persistent:
        _write_mark(conn, name, mark)
    if want.get("active") and not v.active:
        with libvirt_error(f'network "{name}": start'):
            conn.networkLookupByName(name).create()
    kill_point("libvirt.network-updated")
    return read_back(conn, name)


def _restart(conn, v: NetworkView, current: dict, want: dict, mark: str) -> dict:
    """Define the new definition over the old one (same name and UUID) and restart the
    network if it runs. A failed start puts the old network back as it was."""
    name = v.name
    saved = safe_replace.save(conn, name)
    xml = netxml.render_network(want, mark or None, uuid=current.get("uuid"))
    kill_point("libvirt.network-update")
    try:
        with libvirt_error(f'network "{name}": define the new definition'):
            net = conn.networkDefineXML(xml)
        with libvirt_error(f'network "{name}": restart'):
            if want.get("autostart") is not None:
                net.setAutostart(1 if want["autostart"] else 0)
            if v.active:
                net.destroy()
                net.create()
    except ProviderError as e:
        if saved is None:
            raise
        try:
            safe_replace.restore(conn, saved)
        except ProviderError as r:
            raise ProviderError(f"{e}; putting the old network back failed too: {r}") from e
        raise ProviderError(f"{e}; the old network is back as it was") from e
    kill_point("libvirt.network-updated")
    return read_back(conn, name)


def _update_sections(net, v: NetworkView, want: dict) -> None:
    """Bring the live and the saved definition each to ``want`` by virNetworkUpdate
    commands (:func:`net_update.commands`); one call for both when their commands agree."""
    lv = libvirt()
    per_def = []
    if v.active and v.live_xml:
        per_def.append((lv.VIR_NETWORK_UPDATE_AFFECT_LIVE, v.live_xml))
    if v.persistent and v.saved_xml:
        per_def.append((lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG, v.saved_xml))
    plans = [(flag, net_update.commands(NETWORK.canon(netxml.parse_network(xml)[0]), want))
             for flag, xml in per_def]
    if len(plans) == 2 and plans[0][1] == plans[1][1]:
        plans = [(plans[0][0] | plans[1][0], plans[0][1])]
    for flags, cmds in plans:
        run_commands(net, v.name, cmds, flags)


def run_commands(net, name: str, cmds: list[net_update.Command], flags: int) -> None:
    """Send the :mod:`net_update` commands to libvirt, one ``virNetworkUpdate`` each
    (``flags``: VIR_NETWORK_UPDATE_AFFECT_LIVE and/or _CONFIG)."""
    lv = libvirt()
    verbs = {"add": lv.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
             "delete": lv.VIR_NETWORK_UPDATE_COMMAND_DELETE,
             "modify": lv.VIR_NETWORK_UPDATE_COMMAND_MODIFY}
    for c in cmds:
        section = getattr(lv, f"VIR_NETWORK_SECTION_{c.section}")
        with libvirt_error(f'network "{name}": {c.command} {c.section.lower()} {c.xml}'):
            net.update(verbs[c.command], section, c.parent, c.xml, flags)


def _write_mark(conn, name: str, mark: str) -> None:
    """Rewrite the saved definition with the mark (libvirt 9.0 has no network setMetadata).

    Defining an existing network keeps its UUID; a running network keeps running
    with its old live definition until its next restart.
    """
    lv = libvirt()
    net = conn.networkLookupByName(name)
    saved = net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE) if net.isActive() else net.XMLDesc(0)
    with libvirt_error(f'network "{name}": write ownership mark'):
        conn.networkDefineXML(netxml.with_mark(saved, mark))


def delete(conn, name: str) -> None:
    """Stop (if running) and undefine (if persistent). A missing network is fine."""
    net = lookup_network(conn, name)
    if net is None:
        return
    kill_point("libvirt.network-delete")
    _remove(net, name)
    kill_point("libvirt.network-deleted")


def _remove(net, name: str) -> None:
    lv = libvirt()
    with libvirt_error(f'network "{name}": delete'):
        if net.isActive():
            net.destroy()
        try:
            persistent = net.isPersistent()
        except lv.libvirtError:     # a transient network vanishes when stopped
            persistent = False
        if persistent:
            net.undefine()


def discard(conn, name: str, uuid: str) -> None:
    """Remove network ``name`` if it is the one with ``uuid`` (an interrupted create's,
    defined but never started); any other network of that name is left alone."""
    v = view_of(conn, name)
    if v is None or netxml.parse_network(v.definition)[0].get("uuid") != uuid:
        return
    _remove(conn.networkLookupByName(name), name)
