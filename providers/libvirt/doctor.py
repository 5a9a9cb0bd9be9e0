"""``kvmnet doctor`` for libvirt: the daemon answers; each managed network is active,
its bridge up and addressed, dnsmasq running when it serves DHCP; ``ip_forward`` is
on where NAT or routed networks exist; each hot-plugged NIC is in its domain.

libvirt does not say in which network namespace its bridges and dnsmasq live: they
are looked for in ``host_netns`` (the namespace the host-level providers are given;
the host's own when none is). With a remote URI (``qemu+ssh://kvm02/system``) the
host-side checks are left out: this machine's kernel is not that host's.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from kvmnet.sdk.doctor import Check, failed, in_netns, passed
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.libvirt import networks, nics
from kvmnet.providers.libvirt.lv import libvirt
from kvmnet.providers.libvirt.network_canon import bridge_name, dhcp_entries, first_ipv4, forward_mode
from kvmnet.providers.links import admin_up, read_table
from kvmnet.providers.netns import netns_path

DNSMASQ_CONF_DIR = "/var/lib/libvirt/dnsmasq"
FORWARDING_MODES = ("nat", "route")


def is_remote(uri: str) -> bool:
    return bool(urlsplit(uri).hostname)


# -- dnsmasq: a process in the right namespace whose conf file is the network's ----------

def serves_network(argv: list[str], network: str) -> bool:
    """Whether a command line is libvirt's dnsmasq for ``network``
    (``dnsmasq --conf-file=/var/lib/libvirt/dnsmasq/NETWORK.conf ...``)."""
    if not argv or os.path.basename(argv[0]) != "dnsmasq":
        return False
    return any(a == f"--conf-file={DNSMASQ_CONF_DIR}/{network}.conf" for a in argv[1:])


def _ns_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def processes_in(netns: str | None) -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process whose network namespace is ``netns`` (the
    host's: this process's own, when None), from /proc."""
    target = _ns_identity(netns_path(netns) if netns else "/proc/self/ns/net")
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        if _ns_identity(f"/proc/{entry}/ns/net") != target:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        argv = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if argv:
            out.append((int(entry), argv))
    return out


# -- the checks ---------------------------------------------------------------------

def _connection_errors() -> tuple:
    try:
        return (ProviderError, libvirt().libvirtError)
    except ProviderError:       # libvirt-python missing: only ProviderErrors can come
        return (ProviderError,)


def reachable(provider) -> Check:
    what = "libvirt reachable"
    try:
        version = provider.conn.getLibVersion()
    except _connection_errors() as e:   # ProviderError on connect; libvirtError on a dead connection
        detail = str(e) if isinstance(e, ProviderError) else f"{provider.uri}: {e}"
        return failed(what, "libvirt", None, detail,
                      f"is libvirtd running? try: virsh -c '{provider.uri}' version")
    major, minor, micro = version // 1000000, version // 1000 % 1000, version % 1000
    return passed(what, "libvirt", None, f"{provider.uri}, libvirt {major}.{minor}.{micro}")


def network_checks(uri: str, m, view, table, procs, netns: str | None,
                   host_side: bool) -> list[Check]:
    name = m.attrs.get("name") or m.id
    virsh = f"virsh -c '{uri}'"
    if view is None:
        return [failed(f"network {name} active", "network", m.address,
                       f"network {name} does not exist", "kvmnet apply creates it again")]
    if m.attrs.get("active") is False:
        if view.active:
            return [failed(f"network {name} stopped", "network", m.address,
                           f"network {name} runs but has active = false", "kvmnet apply stops it")]
        return [passed(f"network {name} stopped", "network", m.address, "active = false")]
    if not view.active:
        return [failed(f"network {name} active", "network", m.address, f"network {name} is inactive",
                       f"kvmnet apply starts it (or {virsh} net-start {name})")]
    out = [passed(f"network {name} active", "network", m.address)]
    if not host_side:
        return out
    attrs, _ = view.attrs()
    bridge = bridge_name(attrs)
    first = first_ipv4(attrs)
    ip = first[1] if first else {}
    if isinstance(bridge, str):
        what = f"bridge {bridge} up and addressed"
        link = table.links.get(bridge)
        want = f"{ip['address']}/{ip['prefix']}" if ip.get("address") else None
        if link is None:
            out.append(failed(what, "network", m.address,
                              f"bridge {bridge} does not exist{_where(netns)}",
                              f"{virsh} net-destroy {name} && {virsh} net-start {name}"))
        elif not admin_up(link):
            out.append(failed(what, "network", m.address, f"bridge {bridge} is down",
                              in_netns(netns, f"ip link set {bridge} up")))
        elif want and want not in link.addresses:
            out.append(failed(what, "network", m.address, f"bridge {bridge} lacks {want}",
                              f"{virsh} net-destroy {name} && {virsh} net-start {name}"))
        else:
            out.append(passed(what, "network", m.address, want or "up"))
    if dhcp_entries(ip, "range") or dhcp_entries(ip, "host"):
        what = f"dnsmasq running for {name}"
        pids = [pid for pid, argv in procs if serves_network(argv, name)]
        if pids:
            out.append(passed(what, "dhcp", m.address, f"pid {', '.join(map(str, pids))}"))
        else:
            out.append(failed(what, "dhcp", m.address,
                              f"no dnsmasq with {DNSMASQ_CONF_DIR}/{name}.conf{_where(netns)}",
                              f"restart the network: {virsh} net-destroy {name} && {virsh} net-start {name}"))
    return out


def ip_forward_check(value: str | None, problem: str | None, nets: list[str],
                     netns: str | None) -> Check:
    what = "net.ipv4.ip_forward = 1"
    needed = f"needed by {', '.join(nets)}"
    if value == "1":
        return passed(what, "ip_forward", None, f"{needed}{_where(netns)}")
    found = problem or f"it is {value}{_where(netns)}"
    return failed(what, "ip_forward", None, f"{found}; {needed}",
                  f"{in_netns(netns, 'sysctl -w net.ipv4.ip_forward=1')}, and keep it with a "
                  "sysctl_profile")


def nic_checks(records, domains) -> list[Check]:
    out = []
    for m in records:
        domain, mac = m.attrs.get("domain"), str(m.attrs.get("mac") or "").lower()
        what = f"NIC {mac} in domain {domain}"
        d = domains.get(domain)
        if d is None:
            out.append(failed(what, "nic", m.address, f"domain {domain} does not exist",
                              "kvmnet does not manage domains: define it again, then kvmnet apply"))
            continue
        gaps = []
        if m.attrs.get("live", True) and d.active and mac not in d.live_ifaces:
            gaps.append(f"not in the {d.detail} domain")
        if m.attrs.get("persistent", True) and d.persistent and mac not in d.saved_ifaces:
            gaps.append("not in the saved definition")
        if gaps:
            out.append(failed(what, "nic", m.address, "; ".join(gaps), "kvmnet apply attaches it again"))
        else:
            out.append(passed(what, "nic", m.address, d.detail))
    return out


def _where(netns: str | None) -> str:
    return f" in network namespace {netns}" if netns else ""


def diagnose(provider, managed: dict, host_netns: str | None) -> list[Check]:
    from kvmnet.providers.sysctl.procsys import read as read_sysctl
    nets, nic_records = managed.get("network", []), managed.get("nic_attachment", [])
    first = reachable(provider)
    if not first.ok:
        return [first]
    out = [first]
    host_side = not is_remote(provider.uri)
    if nets:
        views = networks.read_all(provider.conn)
        table = read_table(host_netns) if host_side else None
        procs = processes_in(host_netns) if host_side else []
        for m in nets:
            out += network_checks(provider.uri, m, views.get(m.attrs.get("name") or m.id),
                                  table, procs, host_netns, host_side)
        forwarding = [m.address for m in nets if forward_mode(m.attrs) in FORWARDING_MODES]
        if forwarding and host_side:
            values, problems = read_sysctl(host_netns, ["net.ipv4.ip_forward"])
            out.append(ip_forward_check(values.get("net.ipv4.ip_forward"),
                                        problems.get("net.ipv4.ip_forward"), forwarding, host_netns))
    if nic_records:
        out += nic_checks(nic_records, nics.read_all(provider.conn))
    return out

