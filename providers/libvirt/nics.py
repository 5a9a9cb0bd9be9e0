"""Domains and their NICs on an open libvirt connection: read all, attach, update, detach.

The domain itself is never restarted, created or removed. A change goes to the
running domain (``VIR_DOMAIN_AFFECT_LIVE``) when it runs and the NIC is ``live``,
and to its saved definition (``VIR_DOMAIN_AFFECT_CONFIG``) when ``persistent``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from kvmnet.providers.libvirt.types import NIC_ATTACHMENT, parse_nic_id
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.libvirt import nicxml
from kvmnet.providers.libvirt.lv import libvirt, libvirt_error, names_listed, views_of
from kvmnet.sdk.killpoints import hit as kill_point, register as register_kill_points

register_kill_points("libvirt", "libvirt.nic-marked", "libvirt.nic-attached",
                     "libvirt.nic-update", "libvirt.nic-updated", "libvirt.nic-detach",
                     "libvirt.nic-detached")

DETACH_TIMEOUT = 20.0


@dataclass
class DomainView:
    name: str
    detail: str                  # running | paused | shut off | active
    active: bool
    persistent: bool
    live_xml: str | None
    saved_xml: str | None
    _live: dict | None = field(default=None, repr=False)
    _saved: dict | None = field(default=None, repr=False)

    @property
    def live_ifaces(self) -> dict[str, nicxml.Interface]:
        if self._live is None:
            self._live = nicxml.parse_interfaces(self.live_xml)
        return self._live

    @property
    def saved_ifaces(self) -> dict[str, nicxml.Interface]:
        if self._saved is None:
            self._saved = nicxml.parse_interfaces(self.saved_xml)
        return self._saved

    def macs(self) -> list[str]:
        return list(dict.fromkeys([*self.live_ifaces, *self.saved_ifaces]))

    def marks(self) -> dict[str, str]:
        return nicxml.parse_marks(self.live_xml or self.saved_xml)

    def nic_attrs(self, mac: str) -> dict | None:
        live, saved = self.live_ifaces.get(mac), self.saved_ifaces.get(mac)
        iface = live if live is not None else saved
        if iface is None or iface.type not in nicxml.NIC_TYPES:
            return None
        attrs = dict(domain=self.name, mac=mac, **nicxml.merged_fields(live, saved),
                     live=live is not None, persistent=saved is not None,
                     kept=nicxml.kept_parts((saved or live).element))   # type: ignore[union-attr]
        return NIC_ATTACHMENT.canon(attrs)

    def lost(self, mac: str) -> list[str]:
        """What a replace of the NIC ``mac`` would drop (:func:`nicxml.lost_parts`)."""
        out: list[str] = []
        for iface in (self.saved_ifaces.get(mac), self.live_ifaces.get(mac)):
            if iface is not None:
                out += [x for x in nicxml.lost_parts(iface.element) if x not in out]
        return out


def read_all(conn) -> dict[str, DomainView]:
    """Every domain, running or not, with its live and saved XML."""
    lv = libvirt()
    doms = conn.listAllDomains(0)
    active = names_listed(conn.listAllDomains, lv.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
    running = names_listed(conn.listAllDomains, lv.VIR_CONNECT_LIST_DOMAINS_RUNNING)
    paused = names_listed(conn.listAllDomains, lv.VIR_CONNECT_LIST_DOMAINS_PAUSED)
    persistent = names_listed(conn.listAllDomains, lv.VIR_CONNECT_LIST_DOMAINS_PERSISTENT)

    def detail(name: str) -> str:
        return ("running" if name in running else "paused" if name in paused
                else "active" if name in active else "shut off")

    return views_of(doms, lambda dom, name: view(dom, name, name in active, name in persistent,
                                                 detail(name)), lv.VIR_ERR_NO_DOMAIN)


def view(dom, name: str, active: bool, persistent: bool, detail: str) -> DomainView:
    lv = libvirt()
    xml = dom.XMLDesc(0)
    saved = None
    if persistent:
        saved = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE) if active else xml
    return DomainView(name, detail, active, persistent, xml if active else None, saved)


def lookup(conn, name: str):
    lv = libvirt()
    try:
        return conn.lookupByName(name)
    except lv.libvirtError as e:
        if e.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
            return None
        raise ProviderError(f'domain "{name}": {e.get_error_message()}') from e


def view_of(conn, name: str) -> DomainView | None:
    dom = lookup(conn, name)
    if dom is None:
        return None
    lv = libvirt()
    state = dom.state()[0]
    detail = {lv.VIR_DOMAIN_RUNNING: "running", lv.VIR_DOMAIN_PAUSED: "paused",
              lv.VIR_DOMAIN_SHUTOFF: "shut off"}.get(state, "active")
    return view(dom, name, bool(dom.isActive()), bool(dom.isPersistent()), detail)


def _require(conn, name: str) -> tuple[Any, DomainView]:
    dom = lookup(conn, name)
    if dom is None:
        raise ProviderError(f'domain "{name}" does not exist')
    return dom, _view(conn, name)


def _view(conn, name: str) -> DomainView:
    """The domain's view; it existing is required (it may vanish between two calls)."""
    v = view_of(conn, name)
    if v is None:
        raise ProviderError(f'domain "{name}" does not exist')
    return v


def split_id(id: str) -> tuple[str, str]:
    try:
        parts = parse_nic_id(id)
    except ValueError as e:
        raise ProviderError(f"{e}, not {id!r}") from None
    return parts["domain"], parts["mac"]


# -- changes -------------------------------------------------------------------------
def _flags(v: DomainView, live: bool, persistent: bool, what: str) -> int:
    lv = libvirt()
    flags = 0
    if live and v.active:
        flags |= lv.VIR_DOMAIN_AFFECT_LIVE
    if persistent:
        if not v.persistent:
            raise ProviderError(f'domain "{v.name}" is transient: a persistent NIC cannot be {what}')
        flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
    if not flags:
        raise ProviderError(f'domain "{v.name}" is not running and the NIC is not persistent: '
                            f"it cannot be {what}")
    return flags


def attach(conn, attrs: dict, mark: str) -> dict:
    """Attach a NIC; the MAC libvirt generates (when none is given) is read back."""
    a = NIC_ATTACHMENT.canon(attrs)
    dom, v = _require(conn, a["domain"])
    live, persistent = a.get("live", True), a.get("persistent", True)
    flags = _flags(v, live, persistent, "attached")
    before = set(v.macs())
    if a.get("mac") and a["mac"] in before:
        raise ProviderError(f'domain "{v.name}" already has a NIC with MAC {a["mac"]}; '
                            f"use kvmnet import to adopt it")
    if a.get("mac") and mark:
        # the mark first: whenever the NIC exists, its mark does (a mark without a
        # NIC, left by a crash in between, is dropped by discard)
        _set_mark(dom, v, a["mac"], mark)
        kill_point("libvirt.nic-marked")
    with libvirt_error(f'domain "{v.name}": attach NIC'):
        dom.attachDeviceFlags(nicxml.render_interface(a), flags)
    kill_point("libvirt.nic-attached")
    after = _view(conn, v.name)
    new = [m for m in after.macs() if m not in before]
    if a.get("mac"):
        mac = a["mac"]
    elif len(new) == 1:
        mac = new[0]
        if mark:
            _set_mark(dom, after, mac, mark)
    else:
        raise ProviderError(f'domain "{v.name}": cannot tell which NIC was attached ({new})')
    return read_back(conn, v.name, mac)


def discard(conn, domain: str, mac: str) -> None:
    """Drop the mark an interrupted attach left for a NIC that was never attached."""
    v = view_of(conn, domain)
    if v is not None and mac not in v.macs() and mac in v.marks():
        _drop_mark(conn, domain, mac)


def read_back(conn, domain: str, mac: str) -> dict:
    v = view_of(conn, domain)
    attrs = v.nic_attrs(mac) if v else None
    if attrs is None:
        raise ProviderError(f'domain "{domain}": NIC {mac} is not there after the change')
    return attrs


def update(conn, before: dict, attrs: dict, mark: str) -> dict:
    """Change what libvirt changes in place (network/bridge, link state, bandwidth) of
    the live and/or saved NIC (update-device); everything else is a replace."""
    a = NIC_ATTACHMENT.canon(attrs)
    domain, mac = a["domain"], str(a.get("mac") or (before or {}).get("mac"))
    dom, v = _require(conn, domain)
    live, saved = v.live_ifaces.get(mac), v.saved_ifaces.get(mac)
    if live is None and saved is None:
        raise ProviderError(f'domain "{domain}" has no NIC with MAC {mac}')
    lv = libvirt()
    # live and saved each from their own element (PCI address, target dev kept)
    for flag, iface in ((lv.VIR_DOMAIN_AFFECT_LIVE, live), (lv.VIR_DOMAIN_AFFECT_CONFIG, saved)):
        if iface is None or _same(iface, a):
            continue
        kill_point("libvirt.nic-update")
        with libvirt_error(f'domain "{domain}": update NIC {mac}'):
            dom.updateDeviceFlags(nicxml.updated_interface(iface, a), flag)
        kill_point("libvirt.nic-updated")
    if mark and v.marks().get(mac) != mark:
        _set_mark(dom, _view(conn, domain), mac, mark)
    return read_back(conn, domain, mac)


@dataclass
class SavedNic:
    """A NIC as it was before a replace detached it, to attach again if the new one fails."""

    domain: str
    mac: str
    live_xml: str | None
    saved_xml: str | None
    mark: str | None


def save(conn, domain: str, mac: str) -> SavedNic | None:
    v = view_of(conn, domain)
    live, saved = (v.live_ifaces.get(mac), v.saved_ifaces.get(mac)) if v else (None, None)
    if v is None or (live is None and saved is None):
        return None
    return SavedNic(domain, mac, nicxml.restorable(live.element) if live else None,
                    saved.xml if saved else None, v.marks().get(mac))


def restore(conn, s: SavedNic) -> dict:
    """Attach the old NIC again: its saved element to the saved definition, its live
    one to the running domain (each where it is missing), with its mark."""
    lv = libvirt()
    dom, v = _require(conn, s.domain)
    failed = []
    for xml, flag, present in ((s.saved_xml, lv.VIR_DOMAIN_AFFECT_CONFIG, s.mac in v.saved_ifaces),
                               (s.live_xml, lv.VIR_DOMAIN_AFFECT_LIVE, s.mac in v.live_ifaces or not v.active)):
        if xml is None or present:
            continue
        try:
            dom.attachDeviceFlags(xml, flag)
        except lv.libvirtError as e:
            where = "saved definition" if flag == lv.VIR_DOMAIN_AFFECT_CONFIG else "running domain"
            failed.append(f"the {where}: {e.get_error_message()}")
    if s.mark:
        _set_mark(dom, _view(conn, s.domain), s.mac, s.mark)
    if failed:
        raise ProviderError(f'domain "{s.domain}": NIC {s.mac} could not be attached again to ' + "; ".join(failed))
    return read_back(conn, s.domain, s.mac)


def _same(iface: nicxml.Interface, a: dict) -> bool:
    return nicxml.in_place_same(iface.fields(), a)


def detach(conn, domain: str, mac: str, timeout: float = DETACH_TIMEOUT) -> None:
    """Detach from the running domain and the saved definition; wait until it is gone."""
    lv = libvirt()
    dom = lookup(conn, domain)
    v = view_of(conn, domain) if dom is not None else None
    if v is None:
        return
    live, saved = v.live_ifaces.get(mac), v.saved_ifaces.get(mac)
    kill_point("libvirt.nic-detach")
    if live is not None:
        with libvirt_error(f'domain "{domain}": detach NIC {mac}'):
            dom.detachDeviceFlags(live.xml, lv.VIR_DOMAIN_AFFECT_LIVE)
    if saved is not None:
        with libvirt_error(f'domain "{domain}": remove NIC {mac} from the saved definition'):
            dom.detachDeviceFlags(saved.xml, lv.VIR_DOMAIN_AFFECT_CONFIG)
    if live is not None:
        _wait_gone(conn, domain, mac, timeout)
    kill_point("libvirt.nic-detached")
    _drop_mark(conn, domain, mac)


def _wait_gone(conn, domain: str, mac: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        v = view_of(conn, domain)
        if v is None or not v.active or mac not in v.live_ifaces:
            return
        if time.monotonic() >= deadline:
            raise ProviderError(
                f'domain "{domain}": NIC {mac} is still attached {timeout:.0f}s after the detach '
                f"request (the guest did not release it; is its OS running and does it support "
                f"PCI hot-unplug?)")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


# -- marks -------------------------------------------------------------------------------
def _metadata_flags(v: DomainView) -> int:
    lv = libvirt()
    flags = 0
    if v.active:
        flags |= lv.VIR_DOMAIN_AFFECT_LIVE
    if v.persistent:
        flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def _write_marks(dom, v: DomainView, marks: dict[str, str]) -> None:
    from kvmnet.providers.libvirt.netxml import NS
    lv = libvirt()
    body = nicxml.render_marks(marks) if marks else None
    with libvirt_error(f'domain "{v.name}": write kvmnet metadata'):
        dom.setMetadata(lv.VIR_DOMAIN_METADATA_ELEMENT, body, "kvmnet", NS, _metadata_flags(v))


def _set_mark(dom, v: DomainView, mac: str, mark: str) -> None:
    marks = {m: t for m, t in v.marks().items() if m in v.macs()}
    marks[mac] = mark
    _write_marks(dom, v, marks)


def _drop_mark(conn, domain: str, mac: str) -> None:
    v = view_of(conn, domain)
    if v is None:
        return
    marks = v.marks()
    if mac in marks:
        del marks[mac]
        _write_marks(lookup(conn, domain), v, marks)


def not_in_place(before: dict, after: dict) -> list[str] | None:
    """``["type"]`` when a NIC changes to or from ``type = "direct"`` (libvirt cannot
    turn a macvtap into a tap live); otherwise None: the type's ``replace_on`` decides."""
    old, new = before.get("type"), after.get("type")
    if isinstance(new, str) and old != new and "direct" in (old, new):
        return ["type"]
    return None
