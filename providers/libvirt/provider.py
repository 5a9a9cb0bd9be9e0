"""The libvirt provider: ``network`` and ``nic_attachment`` over libvirt-python.

The connection is opened on first use (``validate`` never imports libvirt). The
work is done by :mod:`networks`, :mod:`nics` and :mod:`consumers`; this class only
dispatches and turns the engine's calls into theirs.
"""
from __future__ import annotations

import random
import threading
import functools
import uuid
from typing import Iterable

from kvmnet.sdk.ownership import parse_mark
from kvmnet.sdk.values import contains_unknown, is_unknown
from kvmnet.sdk.provider import Consumer, LiveObject, Provider, ProviderError
from kvmnet.providers.libvirt import (checks, consumers, network_restart, networks, netxml, nics,
                                      safe_replace)
from kvmnet.providers import timeouts
from kvmnet.providers.libvirt.lv import is_dead, libvirt, open_connection
from kvmnet.providers.libvirt.network_canon import bridge_name
from kvmnet.providers.libvirt.types import NETWORK

DEFAULT_URI = "qemu:///system"


def _libvirt_errors(method):
    """A libvirtError that escaped the provider's own handling becomes one clear
    ProviderError; on a connection keepalive closed, it names the timeout."""
    @functools.wraps(method)
    def wrapper(self, *args, **kw):
        lv = libvirt()
        try:
            return method(self, *args, **kw)
        except lv.libvirtError as e:
            raise self._error(e) from e
        except ProviderError as e:
            if self._conn is not None and is_dead(self._conn):
                raise self._error(e) from e
            raise
    return wrapper
def random_mac() -> str:
    """A MAC in QEMU's locally administered 52:54:00 range, as libvirt picks them."""
    rnd = random.SystemRandom()
    return "52:54:00:" + ":".join(f"{rnd.randrange(256):02x}" for _ in range(3))


class LibvirtProvider(Provider):
    name = "libvirt"
    resource_types = ("network", "nic_attachment")
    # libvirtd applies a network's firewall rules under one daemon-wide lock: more
    # than 4 changes at once only add latency (benchmarks/README.md). A libvirt
    # connection may be shared by threads; changes to NICs of one domain take turns.
    concurrency = 4
    config_schema = {
        "type": "object",
        "properties": {"uri": {"type": "string", "minLength": 1}, "timeout": timeouts.SCHEMA},
        "additionalProperties": False,
    }

    def __init__(self, config: dict | None = None, instance: str | None = None):
        super().__init__(config, instance)
        self.uri = self.config.get("uri") or DEFAULT_URI
        self.timeout = timeouts.timeout_of(self.config)
        self._conn = None
        self._conn_lock = threading.Lock()
        self._domain_locks: dict[str, threading.Lock] = {}
        # networks being replaced, as they were, until their new definition runs
        self._replaced: dict[str, safe_replace.Saved] = {}
        # NICs being replaced, as they were, until the new one is attached
        self._nics_replaced: dict[str, nics.SavedNic] = {}

    # -- connection --------------------------------------------------------------------
    @property
    def conn(self):
        if self._conn is None:
            with self._conn_lock:      # the first changes may start together
                if self._conn is None:
                    self._conn = open_connection(self.uri, self.timeout)
        return self._conn

    def _domain(self, name: str) -> threading.Lock:
        """The lock held while one NIC of domain ``name`` changes: the NIC marks of a
        domain are one metadata element, read, changed and written back."""
        with self._conn_lock:
            return self._domain_locks.setdefault(name, threading.Lock())

    def _error(self, e: Exception) -> ProviderError:
        """``e`` (a libvirtError, or a ProviderError made of one) as the user sees it."""
        msg = e.get_error_message() if hasattr(e, "get_error_message") else str(e)
        if self._conn is not None and is_dead(self._conn):
            self._conn = None     # closed by libvirt already; a later call reconnects
            return ProviderError(f"libvirt at {self.uri}: no answer within "
                                 f"{timeouts.describe(self.timeout)} (keepalive timeout; "
                                 f"is libvirtd stuck?): {msg}")
        return ProviderError(msg if isinstance(e, ProviderError) else f"libvirt at {self.uri}: {msg}")

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except libvirt().libvirtError:
                if not is_dead(conn):     # closing a connection libvirt already dropped is fine
                    raise

    # -- read -------------------------------------------------------------------------
    @_libvirt_errors
    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        if rtype == "network":
            out = {}
            for name, v in networks.read_all(self.conn).items():
                attrs, mark = v.attrs()
                out[name] = LiveObject(name, attrs, parse_mark(mark))
            return out
        if rtype == "nic_attachment":
            out = {}
            for d in nics.read_all(self.conn).values():
                marks = d.marks()
                for mac in d.macs():
                    nic = d.nic_attrs(mac)
                    if nic is not None:
                        id = f"{d.name}/{mac}"
                        out[id] = LiveObject(id, nic, parse_mark(marks.get(mac)))
            return out
        raise ProviderError(f"the libvirt provider does not manage {rtype}")

    @_libvirt_errors
    def import_object(self, rtype: str, id: str) -> LiveObject | None:
        if rtype == "network":
            v = networks.view_of(self.conn, id)
            if v is None:
                return None
            attrs, mark = v.attrs()
            return LiveObject(id, attrs, parse_mark(mark))
        if rtype == "nic_attachment":
            domain, mac = nics.split_id(id)
            d = nics.view_of(self.conn, domain)
            nic = d.nic_attrs(mac) if d else None
            if d is None or nic is None:
                return None
            return LiveObject(f"{domain}/{mac}", nic, parse_mark(d.marks().get(mac)))
        raise ProviderError(f"the libvirt provider does not manage {rtype}")

    @_libvirt_errors
    def read_data(self, dtype: str, args: dict) -> dict:
        from kvmnet.providers.libvirt import data
        if dtype == "network":
            return data.read_network(self.conn, str(args["name"]))
        if dtype == "domain":
            return data.read_domain(self.conn, str(args["name"]))
        return super().read_data(dtype, args)

    def importable(self, rtype: str) -> list[str]:
        """Every network; every NIC of every domain that a ``nic_attachment`` can
        describe (``type='network'`` or ``'bridge'``), as ``DOMAIN/MAC``."""
        return sorted(self.read(rtype, []))

    # -- plan-time checks ----------------------------------------------------------------
    @_libvirt_errors
    def check(self, rtype: str, address: str, attrs: dict) -> list[tuple[str | None, str]]:
        if rtype == "network":
            return checks.network_problems(attrs) + checks.ip_needed(attrs, self._live_has_ip(attrs))
        if rtype == "nic_attachment":
            problems = checks.nic_problems(attrs)
            domain = attrs.get("domain")
            if isinstance(domain, str) and not is_unknown(domain):
                if nics.lookup(self.conn, domain) is None:
                    problems.append(("domain", f'domain "{domain}" does not exist'))
            return problems
        return []

    def _live_has_ip(self, attrs: dict) -> bool:
        """The network ``attrs`` names exists and has an ip block (kept when the config
        leaves ip out)."""
        name = attrs.get("name")
        v = networks.view_of(self.conn, name) if isinstance(name, str) and attrs.get("ip") is None else None
        return bool(v is not None and v.attrs()[0].get("ip"))

    def replace_paths(self, rtype: str, before: dict, after: dict) -> list[str] | None:
        if before is None or after is None:
            return None
        if rtype == "nic_attachment":
            return nics.not_in_place(before, after)
        if rtype != "network" or contains_unknown(after):
            return None
        bad = networks.not_in_place(before, after)
        if bad and network_restart.restart_paths(before, after) is not None:
            return []       # an update that restarts the network (restart_paths)
        return bad

    def restart_paths(self, rtype: str, before: dict, after: dict) -> list[str]:
        if rtype != "network" or before is None or after is None or contains_unknown(after):
            return []
        return network_restart.restart_paths(before, after) or []

    def losses(self, rtype: str, before: dict, after: dict) -> list[str]:
        """What the model can neither represent nor keep in the live network's or
        NIC's XML (an unknown attribute or element inside a modelled block: a newer
        libvirt's, or a NIC's ``<source portgroup>``)."""
        if rtype == "nic_attachment":
            domain, mac = (before or {}).get("domain"), (before or {}).get("mac")
            d = nics.view_of(self.conn, domain) if isinstance(domain, str) and isinstance(mac, str) else None
            return d.lost(mac.lower()) if d is not None and isinstance(mac, str) else []
        if rtype != "network" or not isinstance((before or {}).get("name"), str):
            return []
        v = networks.view_of(self.conn, before["name"])
        if v is None:
            return []
        lost: list[str] = []
        for xml in (v.saved_xml, v.live_xml):
            if xml:
                lost += [x for x in netxml.parse_full(xml)[2] if x not in lost]
        return lost

    # -- changes ----------------------------------------------------------------------
    def identify(self, change) -> dict:
        """A network gets its UUID from kvmnet (put into the XML at define); a NIC
        whose config leaves the MAC out gets a random 52:54:00:xx:xx:xx."""
        after = change.after
        if change.type == "network":
            after["uuid"] = str(uuid.uuid4())
            return {"attrs": {"uuid": after["uuid"], "active": after.get("active") is not False}}
        if change.type == "nic_attachment" and not after.get("mac"):
            after["mac"] = random_mac()
            return {"attrs": {"mac": after["mac"]}}
        return {}

    @_libvirt_errors
    def discard(self, rtype: str, identity: dict) -> None:
        id, chosen = identity.get("id"), identity.get("attrs") or {}
        if not isinstance(id, str):
            return
        if rtype == "network" and isinstance(chosen.get("uuid"), str):
            networks.discard(self.conn, id, chosen["uuid"])
        elif rtype == "nic_attachment":
            domain, mac = nics.split_id(id)
            nics.discard(self.conn, domain, mac)

    @_libvirt_errors
    def create(self, rtype: str, address: str, after: dict, mark: str) -> tuple[dict, dict]:
        if rtype == "network":
            attrs = networks.create(self.conn, after, mark)
            self._replaced.pop(address, None)
            return attrs, {}
        if rtype == "nic_attachment":
            with self._domain(after["domain"]):
                attrs = nics.attach(self.conn, after, mark)
            self._nics_replaced.pop(address, None)
            return attrs, {}
        raise ProviderError(f"the libvirt provider does not manage {rtype}")

    @_libvirt_errors
    def update(self, rtype: str, address: str, before: dict, after: dict,
               private: dict, mark: str) -> tuple[dict, dict]:
        if rtype == "network":
            return networks.update(self.conn, after, mark), private
        if rtype == "nic_attachment":
            with self._domain(after["domain"]):
                return nics.update(self.conn, before, after, mark), private
        raise ProviderError(f"the libvirt provider does not manage {rtype}")

    @_libvirt_errors
    def delete(self, rtype: str, address: str, before: dict, private: dict) -> None:
        if rtype == "network":
            networks.delete(self.conn, before["name"])
        elif rtype == "nic_attachment":
            with self._domain(before["domain"]):
                nics.detach(self.conn, before["domain"], before["mac"].lower())
        else:
            raise ProviderError(f"the libvirt provider does not manage {rtype}")

    # -- a safe replace ---------------------------------------------------------------
    @_libvirt_errors
    def before_replace(self, rtype: str, address: str, before: dict, after: dict | None) -> None:
        """A network: libvirt checks the new definition, and the old one is remembered.
        A NIC: its live and saved elements and its mark are remembered."""
        if rtype == "nic_attachment":
            nic = nics.save(self.conn, before["domain"], str(before["mac"]).lower())
            if nic is not None:
                self._nics_replaced[address] = nic
            return
        if rtype != "network":
            return
        saved = safe_replace.save(self.conn, before["name"])
        if after is not None:
            safe_replace.validate(self.conn, after["name"], netxml.render_network(after))
        if saved is not None:
            self._replaced[address] = saved

    @_libvirt_errors
    def restore_replaced(self, rtype: str, address: str) -> tuple[dict, dict] | None:
        if rtype == "nic_attachment":
            nic = self._nics_replaced.pop(address, None)
            if nic is None:
                return None
            with self._domain(nic.domain):
                return nics.restore(self.conn, nic), {}
        saved = self._replaced.pop(address, None)
        if rtype != "network" or saved is None:
            return None
        safe_replace.restore(self.conn, saved)
        return networks.read_back(self.conn, saved.name), {}

    # -- consumers --------------------------------------------------------------------
    @_libvirt_errors
    def probes(self, managed: dict) -> list:
        """Each network kvmnet keeps active is active, its dnsmasq running
        (:mod:`kvmnet.providers.libvirt.probes`)."""
        from kvmnet.providers.libvirt.probes import network_probe
        found = [network_probe(rec, self.uri) for rec in managed.get(NETWORK.name, [])]
        return [p for p in found if p is not None]

    def consumers(self, rtype: str, attrs: dict) -> list[Consumer]:
        name = attrs.get("name")
        if not isinstance(name, str):
            return []
        if rtype == "network":
            bridge = bridge_name(NETWORK.canon(attrs))     # v1's string or the bridge block
            if not isinstance(bridge, str):
                live = networks.view_of(self.conn, name)
                bridge = bridge_name(live.attrs()[0]) if live else None
            return consumers.network_consumers(
                name, bridge if isinstance(bridge, str) else None, nics.read_all(self.conn).values())
        if rtype == "bridge":
            return consumers.bridge_consumers(
                name, nics.read_all(self.conn).values(), networks.read_all(self.conn).values())
        return []

    # -- history ------------------------------------------------------------------------
    @_libvirt_errors
    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        ids = list(ids)
        if rtype == "network":
            out = {}
            for name in ids:
                v = networks.view_of(self.conn, name)
                if v is not None:
                    out[name] = {"live": v.live_xml, "saved": v.saved_xml,
                                 "autostart": v.autostart}
            return out
        if rtype == "nic_attachment":
            out = {}
            for id in ids:
                domain, mac = nics.split_id(id)
                d = nics.view_of(self.conn, domain)
                if d is None:
                    continue
                live, saved = d.live_ifaces.get(mac), d.saved_ifaces.get(mac)
                out[id] = {"live": live.xml if live else None, "saved": saved.xml if saved else None}
            return out
        return {}
