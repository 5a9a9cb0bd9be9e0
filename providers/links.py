"""Host links (``bridge``, ``vlan``) in the kernel: the mechanics the ``iproute``
and ``netplan`` providers share.

Reading goes through ``ip -j`` (iproute2's JSON output) rather than pyroute2's
decoder: pyroute2 decodes netlink in pure Python (≈0.5 s for 1,000 links), while
``ip`` does it in C (≈0.02 s). A refresh is two ``ip -batch`` processes run side by
side (see :func:`read_table`):

- ``ip -j -d -batch``: ``link show type bridge|vlan|tun`` (the kernel filters by
  kind, so only these links come back with their details);
- ``ip -j -batch``: ``addr show`` (every link with its master, alias, MTU and
  addresses) and ``route show`` (the main table).

However many resources there are, that is one link dump and one address dump.
Changes go through pyroute2 (netlink, no subprocess per step).

Everything that turns ``ip`` JSON into canonical attributes, and desired/live
attributes into netlink steps, is a pure function here; the side effects are in
:func:`read_table` and :class:`Netlink`.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from kvmnet.sdk.ownership import parse_mark
from kvmnet.sdk.provider import Consumer, LiveObject, ProviderError
from kvmnet.providers.netns import call_in, command, timed_out
from kvmnet.providers.timeouts import DEFAULT, describe
from kvmnet.sdk.killpoints import hit as kill_point, register as register_kill_points

LINK_TYPES = ("bridge", "vlan")
TAP_KINDS = ("tun",)          # a VM's vnetN tap (libvirt); never a configured port
_LIVE_ATTRS = {
    "bridge": ("name", "interfaces", "stp", "forward_delay", "multicast_snooping", "mtu",
               "addresses", "routes"),
    "vlan": ("name", "id", "link", "mtu", "addresses"),
}


# --------------------------------------------------------------------------
# the live table, parsed from ``ip -j`` output (pure)
# --------------------------------------------------------------------------

@dataclass
class Link:
    """One live link, merged from the ``ip -j`` records that name it."""

    name: str
    index: int | None = None
    kind: str | None = None          # "bridge", "vlan", "tun"; None when not asked for
    master: str | None = None
    parent: str | None = None        # a vlan's (or veth's) ``link``
    mtu: int | None = None
    alias: str | None = None
    info: dict = field(default_factory=dict)       # linkinfo.info_data
    addresses: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict)        # the merged ip -j records


@dataclass
class LinkTable:
    """Every link (by name) and every non-kernel route on them, as read live."""

    links: dict[str, Link] = field(default_factory=dict)
    routes: dict[str, list[dict]] = field(default_factory=dict)  # dev -> canonical routes

    def ports(self, bridge: str) -> list[str]:
        return sorted(n for n, link in self.links.items() if link.master == bridge)

    def kind(self, name: str) -> str | None:
        link = self.links.get(name)
        return link.kind if link else None


def split_json_stream(text: str) -> list[Any]:
    """The JSON documents of ``ip -j -batch`` output, one per command, in order."""
    dec = json.JSONDecoder()
    out: list[Any] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return out
        doc, i = dec.raw_decode(text, i)
        out.append(doc)


def host_cidr(dst: str) -> str:
    """A route destination as ``A.B.C.D/N`` (``default`` → ``0.0.0.0/0``, a host → /32)."""
    if dst == "default":
        return "0.0.0.0/0"
    return str(ipaddress.ip_network(dst, strict=False))


def canonical_route(entry: dict) -> dict:
    """An ``ip -j route`` entry as a canonical ``{to, via, metric}`` (metric 0 → None)."""
    return {"to": host_cidr(entry["dst"]), "via": entry.get("gateway"),
            "metric": entry.get("metric") or None}


def _route_is_managed(entry: dict) -> bool:
    """Routes the ``routes`` attribute covers: not the kernel's connected routes."""
    return (entry.get("protocol") not in ("kernel",) and entry.get("type") in (None, "unicast")
            and "dev" in entry and "dst" in entry)


def parse_table(outputs: Iterable[str]) -> LinkTable:
    """Merge ``ip -j`` outputs (link, addr and route lists, any order) into a table.

    Records are told apart by shape, not position: a route has ``dst``; a link
    record has ``ifname`` (the address dump adds ``addr_info``, the detailed link
    dump adds ``linkinfo``). Empty records (which ``ip`` prints for links a kind
    filter skipped) are ignored.
    """
    table = LinkTable()
    for text in outputs:
        for doc in split_json_stream(text):
            for entry in doc if isinstance(doc, list) else [doc]:
                if not entry:
                    continue
                if "dst" in entry:
                    if _route_is_managed(entry):
                        table.routes.setdefault(entry["dev"], []).append(canonical_route(entry))
                elif "ifname" in entry:
                    _merge_link(table, entry)
    for dev, routes in table.routes.items():
        table.routes[dev] = sort_routes(routes)
    return table


def _merge_link(table: LinkTable, entry: dict) -> None:
    name = entry["ifname"]
    link = table.links.get(name)
    if link is None:
        link = table.links[name] = Link(name=name)
    link.raw.update(entry)
    link.index = entry.get("ifindex", link.index)
    link.mtu = entry.get("mtu", link.mtu)
    link.master = entry.get("master", link.master)
    link.parent = entry.get("link", link.parent)
    link.alias = entry.get("ifalias", link.alias)
    info = entry.get("linkinfo")
    if info:
        link.kind = info.get("info_kind", link.kind)
        link.info = info.get("info_data") or link.info
    if "addr_info" in entry:
        link.addresses = sorted(
            f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"]
            # a DHCP lease (netplan's dhcp4) is "dynamic": not part of ``addresses``
            if a.get("family") == "inet" and "local" in a and not a.get("dynamic"))


def sort_routes(routes: Iterable[dict]) -> list[dict]:
    return sorted(routes, key=lambda r: (str(r["to"]), str(r["via"]), str(r["metric"])))


def seconds(centiseconds) -> int | float:
    """The kernel's clock_t (1/100 s) as seconds, an int when whole."""
    s = round(centiseconds / 100, 2)
    return int(s) if float(s).is_integer() else s


def centiseconds(secs) -> int:
    return int(round(float(secs) * 100))


def bridge_attrs(table: LinkTable, name: str) -> dict:
    """A live bridge's canonical attributes.

    ``interfaces`` lists the enslaved ports except taps (a VM's vnetN is libvirt's,
    reported as a consumer, never as drift).
    """
    link = table.links[name]
    return {
        "name": name,
        "interfaces": [p for p in table.ports(name) if table.kind(p) not in TAP_KINDS],
        "stp": bool(link.info.get("stp_state", 0)),
        "forward_delay": seconds(link.info["forward_delay"]) if "forward_delay" in link.info else None,
        "multicast_snooping": bool(link.info["mcast_snooping"]) if "mcast_snooping" in link.info else None,
        "mtu": link.mtu,
        "addresses": list(link.addresses),
        "routes": list(table.routes.get(name, [])),
    }


def vlan_attrs(table: LinkTable, name: str) -> dict:
    link = table.links[name]
    return {"name": name, "id": link.info.get("id"), "link": link.parent,
            "mtu": link.mtu, "addresses": list(link.addresses)}


def other_attrs(table: LinkTable, name: str) -> dict:
    """What is known of a link of another kind that has the name of a resource."""
    link = table.links[name]
    return {"name": name, "mtu": link.mtu, "addresses": list(link.addresses)}


def live_attrs(rtype: str, table: LinkTable, name: str) -> dict:
    kind = table.kind(name)
    if kind == rtype == "bridge":
        return bridge_attrs(table, name)
    if kind == rtype == "vlan":
        return vlan_attrs(table, name)
    return other_attrs(table, name)


def live_objects(rtype: str, table: LinkTable, ids: Iterable[str]) -> dict[str, LiveObject]:
    """The links of ``ids`` that exist (whatever their kind, so that a create over a
    foreign link is caught), plus every link of kind ``rtype`` with a kvmnet mark."""
    wanted = {i for i in ids if i in table.links}
    wanted.update(n for n, link in table.links.items() if link.kind == rtype and parse_mark(link.alias))
    out = {}
    for name in sorted(wanted):
        link = table.links[name]
        out[name] = LiveObject(id=name, attrs=live_attrs(rtype, table, name), mark=parse_mark(link.alias))
    return out


def consumers_of(rtype: str, table: LinkTable, name: str, own_ports: Iterable[str]) -> list[Consumer]:
    """Who uses a bridge (ports other than its own ``interfaces``) or a vlan (the
    bridge that enslaves it), from the live table."""
    if name not in table.links:
        return []
    if rtype == "bridge":
        own = set(own_ports or ())
        return [Consumer(kind="port", name=p, detail="enslaved",
                         via=("vlan", p) if table.kind(p) == "vlan" else None)
                for p in table.ports(name) if p not in own]
    if rtype == "vlan":
        master = table.links[name].master
        if master:
            return [Consumer(kind="bridge", name=master, detail="enslaves it", via=("bridge", master))]
    return []


# --------------------------------------------------------------------------
# link state: up, carrier (pure; records from the address dump keep ``flags``
# and ``operstate``)
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# desired vs live → netlink steps (pure)
# --------------------------------------------------------------------------

def desired_routes(attrs: dict) -> list[dict]:
    """Canonical routes of desired attributes (``routes`` list or ``route`` blocks)."""
    routes = attrs.get("routes")
    if routes is None:
        routes = attrs.get("route") or []
    return sort_routes({"to": host_cidr(r["to"]), "via": r.get("via"), "metric": r.get("metric") or None}
                       for r in routes)


@dataclass
class LinkEdits:
    """The netlink steps that take a live link to the desired attributes."""

    alias: str | None = None                 # new ifalias (the mark)
    bridge_opts: dict = field(default_factory=dict)   # pyroute2 br_* keywords
    enslave: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)
    mtu: int | None = None
    add_addresses: list[str] = field(default_factory=list)
    del_addresses: list[str] = field(default_factory=list)
    add_routes: list[dict] = field(default_factory=list)
    del_routes: list[dict] = field(default_factory=list)

    def empty(self) -> bool:
        return not any((self.alias, self.bridge_opts, self.enslave, self.release, self.mtu,
                        self.add_addresses, self.del_addresses, self.add_routes, self.del_routes))


def bridge_options(desired: dict, live: dict | None = None) -> dict:
    """pyroute2 keywords for the bridge settings that are set and differ from live."""
    live = live or {}
    opts = {}
    if desired.get("stp") is not None and bool(desired["stp"]) != live.get("stp"):
        opts["br_stp_state"] = 1 if desired["stp"] else 0
    fd = desired.get("forward_delay")
    live_fd = live.get("forward_delay")
    if fd is not None and (live_fd is None or centiseconds(fd) != centiseconds(live_fd)):
        opts["br_forward_delay"] = centiseconds(fd)
    ms = desired.get("multicast_snooping")
    if ms is not None and bool(ms) != live.get("multicast_snooping"):
        opts["br_mcast_snooping"] = 1 if ms else 0
    return opts


def link_edits(rtype: str, live: dict, live_alias: str | None, desired: dict, mark: str) -> LinkEdits:
    """What to change on a live bridge or vlan (``live`` as :func:`live_attrs` gives it).

    Attributes left out of ``desired`` (None) are not touched; ``addresses`` and
    ``routes`` are authoritative lists; ports are enslaved and released (taps are not
    in ``live["interfaces"]``, so they are never released).
    """
    e = LinkEdits()
    if mark and live_alias != mark:
        e.alias = mark
    if rtype == "bridge":
        e.bridge_opts = bridge_options(desired, live)
        want = desired.get("interfaces")
        if want is not None:
            have = set(live.get("interfaces") or [])
            e.enslave = [p for p in sorted(set(want)) if p not in have]
            e.release = sorted(have - set(want))
        if desired.get("routes") is not None or desired.get("route") is not None:
            want_r, have_r = desired_routes(desired), live.get("routes") or []
            e.add_routes = [r for r in want_r if r not in have_r]
            e.del_routes = [r for r in have_r if r not in want_r]
    if desired.get("mtu") is not None and desired["mtu"] != live.get("mtu"):
        e.mtu = int(desired["mtu"])
    if desired.get("addresses") is not None:
        want_a, have_a = set(desired["addresses"]), set(live.get("addresses") or [])
        e.add_addresses = sorted(want_a - have_a)
        e.del_addresses = sorted(have_a - want_a)
    return e


def result_attrs(rtype: str, desired: dict) -> dict:
    """The attributes recorded after a change: the desired ones, routes canonical."""
    out = dict(desired)
    if rtype == "bridge" and (desired.get("routes") is not None or desired.get("route") is not None):
        out["routes"] = desired_routes(desired)
        out.pop("route", None)
    return out


# --------------------------------------------------------------------------
# side effects: reading through ``ip -j``
# --------------------------------------------------------------------------

def _run_parallel(netns: str | None, jobs: list[tuple[list[str], str]],
                  timeout: float = DEFAULT) -> list[str]:
    """Run ``ip`` batch jobs side by side in ``netns``; their stdout, in order. A job
    still running ``timeout`` seconds after the start is killed (all of them are)."""
    procs = []
    for argv, script in jobs:
        try:
            p = subprocess.Popen(command(netns, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        except FileNotFoundError as e:
            raise ProviderError(f"{argv[0]}: command not found (iproute2 is needed)") from e
        procs.append((p, script))
    deadline = time.monotonic() + timeout
    outs = []
    try:
        for (argv, _), (p, script) in zip(jobs, procs, strict=True):
            try:
                out, _err = p.communicate(script, timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise timed_out(argv, timeout) from None
            outs.append(out)
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


# the kinds whose details a bulk read of each type needs (taps: to tell VM ports)
_DETAIL_KINDS = {"bridge": ("bridge", "tun"), "vlan": ("vlan",), None: ("bridge", "vlan", "tun")}


def read_table(netns: str | None, name: str | None = None, rtype: str | None = None,
               timeout: float = DEFAULT) -> LinkTable:
    """The live links, addresses and routes: all of them (with details for the
    kinds ``rtype`` needs), or those of one link ``name`` (itself, its ports, its
    addresses and routes).

    ``-force`` keeps a batch going when one command fails (a link that does not
    exist); records are recognised by shape, so a missing answer shifts nothing.
    """
    _check_ifname(name)
    if name is None:
        details = "".join(f"link show type {k}\n" for k in _DETAIL_KINDS[rtype])
        rest = "addr show\n" + ("route show table main\n" if rtype != "vlan" else "")
    else:
        details = f"link show dev {name}\nlink show master {name}\n"
        # not "route show dev NAME": ip leaves "dev" out of records filtered by it
        rest = f"addr show dev {name}\nroute show table main\n"
    outs = _run_parallel(netns, [(["ip", "-j", "-d", "-force", "-batch", "-"], details),
                                 (["ip", "-j", "-force", "-batch", "-"], rest)], timeout)
    return parse_table(outs)


def _check_ifname(name: str | None) -> None:
    """An interface name is one word: nothing a batch line could be split on."""
    if name is not None and (not name or len(name) > 15 or any(c.isspace() for c in name)
                             or "/" in name or name in (".", "..")):
        raise ProviderError(f"invalid interface name {name!r}")


def snapshot_of(table: LinkTable, ids: Iterable[str]) -> dict:
    """The ``ip -j`` view of the given links (their merged records) and routes."""
    return {name: {"link": table.links[name].raw, "routes": table.routes.get(name, [])}
            for name in ids if name in table.links}


# --------------------------------------------------------------------------
# side effects: changing through pyroute2
# --------------------------------------------------------------------------

# this thread's sockets: ``ipr``, and ``ipr_echo`` whose requests carry NLM_F_ECHO
_SOCKETS: dict[str, dict] = {"ipr": {}, "ipr_echo": {"nlm_echo": True}}


def _expire(loop, expired: list[bool]) -> None:
    """A request's deadline passed: cancel what runs on its socket's loop (the sync
    call's one task), so that ``run_until_complete`` returns."""
    import asyncio     # loaded with pyroute2 already; not at start-up
    expired.append(True)
    for task in asyncio.all_tasks(loop):
        task.cancel()


def _netlink_socket_fd() -> int:
    """A new rtnetlink socket (in the calling thread's namespace); its descriptor,
    owned by the caller from now on."""
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE).detach()


def _close(sock) -> None:
    """Close an ``IPRoute``, also one whose reader failed (pyroute2 then re-raises
    that error on every later use of the socket, ``close()`` included)."""
    try:
        sock.close()
    except OSError:
        sock.asyncore._error_event.clear()
        sock.close()


class Netlink:
    """rtnetlink sockets (pyroute2 ``IPRoute``) in the namespace, opened lazily, one
    per thread (an ``IPRoute`` socket must not be shared by threads: the engine may
    run several changes at once).

    Every step names links by ``ifname`` (the kernel looks them up), so no dump is
    ever needed to find an index; only ``master``/``link`` take an index, got with
    a single ``RTM_GETLINK``.

    Every request has a deadline of ``timeout`` seconds (see :func:`_call`): a reply
    the kernel never sends, or one pyroute2 never hands to the request, fails the
    step instead of hanging the run with the state lock held.
    """

    def __init__(self, netns: str | None = None, timeout: float = DEFAULT):
        self.netns = netns
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list = []

    def load(self) -> None:
        """Import pyroute2 (≈0.13 s: asyncio, ssl, multiprocessing come with it);
        only a run that changes links pays for it."""
        from pyroute2 import IPRoute  # noqa: F401 - loading is the point

    def _open(self, **kw):
        """An ``IPRoute`` on a netlink socket made in the namespace by a thread that
        entered it, not by pyroute2's ``IPRoute(netns=...)``: that forks the process,
        and the child runs Python code of this process until it exits. pyroute2
        ends the child with SIGTERM; where SIGTERM raises (the test session's
        handler, or a program embedding kvmnet), the child unwound this process's
        stack, and its ``finally:`` blocks closed sockets' transports, which removes
        them from the epoll set the child shares with the parent: the parent's next
        request then waited forever with its answer unread in the socket."""
        from pyroute2 import IPRoute   # imported only when something changes
        if self.netns:
            fd = call_in(self.netns, _netlink_socket_fd, timeout=self.timeout,
                         what="open a netlink socket")
            sock = IPRoute(fileno=fd, **kw)
        else:
            sock = IPRoute(**kw)
        with self._lock:
            self._opened.append(sock)
        return sock

    def _socket(self, attr: str):
        sock = getattr(self._local, attr, None)
        if sock is None:
            sock = self._open(**_SOCKETS[attr])
            setattr(self._local, attr, sock)
        return sock

    def _drop(self, attr: str, sock) -> None:
        """Close this thread's socket ``attr`` after a request on it timed out: its
        reply may still come and must not be taken for the next request's; the next
        request opens a fresh socket."""
        setattr(self._local, attr, None)
        with self._lock:
            if sock in self._opened:
                self._opened.remove(sock)
        _close(sock)

    def close(self) -> None:
        """Close every thread's sockets (the threads may be gone already)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for sock in opened:
            _close(sock)
        self._local = threading.local()

    def _call(self, what: str, attr: str, method: str, *args, **kw):
        """One request on this thread's socket ``attr`` (``ipr``, or ``ipr_echo``
        whose requests carry NLM_F_ECHO: a link "add" answers with the new link).

        pyroute2 has no per-request timeout: its sync API runs the request on the
        socket's own asyncio loop (``run_until_complete``) until the answer is
        queued under the request's sequence number. A timer on that loop cancels
        the request when the deadline passes; the request unwinds through
        pyroute2's own cleanup, and the socket is dropped. The timer costs one
        heap push and one cancel per request.
        """
        import asyncio     # loaded with pyroute2 already; not at start-up
        from pyroute2.netlink.exceptions import NetlinkError
        sock = self._socket(attr)
        loop = sock.asyncore.event_loop
        expired: list[bool] = []
        timer = loop.call_later(self.timeout, _expire, loop, expired)
        try:
            return getattr(sock, method)(*args, **kw)
        except NetlinkError as e:
            raise ProviderError(f"{what}: {e.args[1] if len(e.args) > 1 else os.strerror(e.code)}") from e
        except asyncio.CancelledError:
            if not expired:
                raise
            self._drop(attr, sock)
            raise ProviderError(f"{what}: no answer from the kernel within {describe(self.timeout)} "
                                "(netlink timeout)") from None
        finally:
            timer.cancel()

    def _add(self, what: str, **kw) -> int:
        """Create a link; its index (from the echoed message, else one lookup)."""
        msgs = self._call(what, "ipr_echo", "link", "add", **kw)
        for m in msgs or ():
            if m.get("index") and m.get("ifname") == kw["ifname"]:
                return m["index"]
        return self.index(kw["ifname"])

    # -- links ----------------------------------------------------------------
    def index(self, ifname: str) -> int:
        msg = self._call(f"interface {ifname}", "ipr", "link", "get", ifname=ifname)
        return msg[0]["index"]

    def add_bridge(self, name: str, opts: dict, ifname: str | None = None) -> int:
        """A new bridge ``name``, down, created as ``ifname`` (default: ``name``;
        see :meth:`LinkManager.create`)."""
        return self._add(f"create bridge {name}", ifname=ifname or name, kind="bridge", **opts)

    def add_vlan(self, name: str, parent: str, vid: int, ifname: str | None = None) -> int:
        """A new vlan ``name``, down, created as ``ifname`` (default: ``name``)."""
        parent_index = self.index(parent)
        return self._add(f"create vlan {name}", ifname=ifname or name, kind="vlan",
                         link=parent_index, vlan_id=int(vid))

    def name_and_mark(self, index: int, what: str, **kw) -> None:
        """Rename link ``index``, set its alias (and MTU, state) in one RTM_NEWLINK:
        the link gets its name and its mark together or not at all."""
        self._call(what, "ipr", "link", "set", index=index, **kw)

    def set_link(self, name: str, **kw) -> None:
        self._call(f"set {name}", "ipr", "link", "set", ifname=name, **kw)

    def set_bridge(self, name: str, opts: dict) -> None:
        self._call(f"set bridge {name}", "ipr", "link", "set", ifname=name, kind="bridge", **opts)

    def enslave(self, port: str, master_index: int) -> None:
        self._call(f"enslave {port}", "ipr", "link", "set", ifname=port, master=master_index, state="up")

    def release(self, port: str) -> None:
        self._call(f"release {port}", "ipr", "link", "set", ifname=port, master=0)

    def delete(self, name: str) -> None:
        self._call(f"delete {name}", "ipr", "link", "del", ifname=name)

    # -- addresses and routes -----------------------------------------------
    def add_address(self, index: int, cidr: str) -> None:
        ip = ipaddress.ip_interface(cidr)
        self._call(f"add address {cidr}", "ipr", "addr", "add", index=index,
                 address=str(ip.ip), prefixlen=ip.network.prefixlen)

    def del_address(self, index: int, cidr: str) -> None:
        ip = ipaddress.ip_interface(cidr)
        self._call(f"remove address {cidr}", "ipr", "addr", "del", index=index,
                 address=str(ip.ip), prefixlen=ip.network.prefixlen)

    def _route(self, cmd: str, index: int, route: dict) -> None:
        spec: dict[str, Any] = {"dst": route["to"], "oif": index}
        if route.get("via"):
            spec["gateway"] = route["via"]
        if route.get("metric"):
            spec["priority"] = int(route["metric"])
        if cmd == "add":
            spec["proto"] = "static"
        verb = "add" if cmd == "add" else "remove"
        self._call(f"{verb} route to {route['to']}", "ipr", "route", cmd, **spec)

    def add_route(self, index: int, route: dict) -> None:
        self._route("add", index, route)

    def del_route(self, index: int, route: dict) -> None:
        self._route("del", index, route)


LINK_KILL_POINTS = ("link-create", "link-created", "link-named", "link-configured",
                    "link-update", "link-updated", "link-delete", "link-deleted")


def register_link_kill_points(owner: str) -> None:
    """The kill points of :class:`LinkManager`, under the provider that uses it."""
    register_kill_points(owner, *(f"{owner}.{p}" for p in LINK_KILL_POINTS))


def temp_name(mark: str) -> str:
    """The name a link is created under before it gets its own name and mark at
    once: fixed by the mark (one per instance), so an intent can name it."""
    return "kvt" + hashlib.sha256(mark.encode()).hexdigest()[:12]


class LinkManager:
    """Read, create, update and delete bridges and vlans in one namespace.

    This is the whole live side of the ``iproute`` provider, and the live side of the
    ``netplan`` provider when ``apply = true``; ``owner`` (that provider's name)
    prefixes the kill points.
    """

    def __init__(self, netns: str | None = None, timeout: float = DEFAULT, owner: str = "iproute"):
        self.netns = netns
        self.timeout = timeout      # for each ``ip`` read and each netlink request
        self.nl = Netlink(netns, timeout)
        self.owner = owner

    def _kill_point(self, point: str) -> None:
        kill_point(f"{self.owner}.{point}")

    def close(self) -> None:
        self.nl.close()

    def prepare(self) -> None:
        """Before the first change: load the netlink library."""
        self.nl.load()

    # -- reading ----------------------------------------------------------
    def table(self, name: str | None = None) -> LinkTable:
        return read_table(self.netns, name, timeout=self.timeout)

    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        return live_objects(rtype, read_table(self.netns, rtype=rtype, timeout=self.timeout), ids)

    def consumers(self, rtype: str, attrs: dict) -> list[Consumer]:
        name = attrs.get("name")
        if not isinstance(name, str):
            return []
        return consumers_of(rtype, self.table(name), name, attrs.get("interfaces") or [])

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        return snapshot_of(self.table(), ids)

    # -- changing -----------------------------------------------------------
    def create(self, rtype: str, attrs: dict, mark: str) -> dict:
        """Create the link down under :func:`temp_name`, then give it its name and
        its mark and bring it up in one step (the kernel ignores IFLA_IFALIAS on
        create), then configure it. Whatever a crash interrupts, a link named ``name``
        carries the mark; a link left under the temporary name is removed by
        :meth:`discard`."""
        name = attrs["name"]
        temp = temp_name(mark) if mark else name
        self._kill_point("link-create")
        if rtype == "bridge":
            index = self.nl.add_bridge(name, bridge_options(attrs), ifname=temp)
        else:
            index = self.nl.add_vlan(name, attrs["link"], attrs["id"], ifname=temp)
        self._kill_point("link-created")
        # the mtu goes with the mark (set through the bridge's own ndo it sticks: no
        # auto-adjust down to the ports' MTU); the kernel renames before it applies
        # the flags, so the link comes up in the same message
        extra: dict[str, Any] = {"mtu": int(attrs["mtu"])} if attrs.get("mtu") is not None else {}
        if mark:
            extra["ifalias"] = mark
        if temp != name:
            extra["ifname"] = name
        self.nl.name_and_mark(index, f"create {rtype} {name}", state="up", **extra)
        self._kill_point("link-named")
        live: dict[str, Any] = {"interfaces": [], "addresses": [], "routes": [], "mtu": attrs.get("mtu")}
        edits = link_edits(rtype, live, mark, attrs, mark)
        edits.bridge_opts = {}
        self._apply_edits(name, index, edits)
        self._kill_point("link-configured")
        return result_attrs(rtype, attrs)

    def discard(self, identity: dict) -> None:
        """Remove the link an interrupted create left under its temporary name."""
        temp = (identity.get("parts") or {}).get("temp")
        if isinstance(temp, str) and temp.startswith("kvt"):
            if temp in self.table(temp).links:
                self.nl.delete(temp)

    def update(self, rtype: str, before: dict, after: dict, mark: str) -> dict:
        name = after["name"]
        table = self.table(name)
        if name not in table.links:
            raise ProviderError(f"{rtype} {name} no longer exists (removed outside kvmnet); "
                                "run plan again to create it")
        link = table.links[name]
        edits = link_edits(rtype, live_attrs(rtype, table, name), link.alias, after, mark)
        if not edits.empty():
            assert link.index is not None     # `ip -j link` always reports ifindex
            self._kill_point("link-update")
            self._apply_edits(name, link.index, edits)
            self._kill_point("link-updated")
        return result_attrs(rtype, after)

    def delete(self, rtype: str, before: dict) -> None:
        name = before["name"]
        table = self.table(name)
        if name not in table.links:
            return   # already gone: the goal is reached
        self._kill_point("link-delete")
        for port in table.ports(name):
            self.nl.release(port)
        self.nl.delete(name)
        self._kill_point("link-deleted")

    def _apply_edits(self, name: str, index: int, e: LinkEdits) -> None:
        """Apply steps in an order the kernel accepts: settings, ports, MTU (after
        ports, which lower it), addresses, then routes (which need the addresses)."""
        if e.alias:
            self.nl.set_link(name, ifalias=e.alias)
        opts = dict(e.bridge_opts)
        stp = opts.pop("br_stp_state", None)
        # the kernel checks forward_delay against the STP state it has: turn STP off
        # before a delay only valid without it, and on after a delay valid with it
        if stp == 0:
            self.nl.set_bridge(name, {"br_stp_state": 0})
        if opts:
            self.nl.set_bridge(name, opts)
        if stp == 1:
            self.nl.set_bridge(name, {"br_stp_state": 1})
        for port in e.release:
            self.nl.release(port)
        for port in e.enslave:
            self.nl.enslave(port, index)
        if e.mtu is not None:
            self.nl.set_link(name, mtu=e.mtu)
        for route in e.del_routes:
            self.nl.del_route(index, route)
        for cidr in e.del_addresses:
            self.nl.del_address(index, cidr)
        for cidr in e.add_addresses:
            self.nl.add_address(index, cidr)
        for route in e.add_routes:
            self.nl.add_route(index, route)
