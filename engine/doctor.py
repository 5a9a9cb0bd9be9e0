"""``kvmnet doctor``: the checklist model, its order, and its two renderings (pure).

A provider answers with :class:`Check` values from what it reads live about the
objects the state says kvmnet manages (:class:`Managed`); this module only orders
them bottom up, decides the exit status and renders them for people (a ✓/✗ list
with a hint under each failure) or machines (a JSON list). It reads nothing live.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable

# The layers of a KVM host's networking, bottom up: the order of the checklist.
LAYERS = (
    "libvirt",       # the libvirt daemon answers on the provider's URI
    "network",       # each libvirt network is active, its bridge up and addressed
    "dhcp",          # dnsmasq runs for each network that serves DHCP
    "ip_forward",    # routing is on where NAT or routed networks exist
    "port_forward",  # kvmnet's forward rules are present and ahead of libvirt's
    "bridge",        # host bridges exist and are up, their ports enslaved and up
    "nic",           # hot-plugged NICs are present in their domains
)

OK_MARK, FAIL_MARK = "\u2713", "\u2717"


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    layer: str                  # one of LAYERS (an unknown layer sorts last)
    check: str                  # what was checked, e.g. "bridge virbr1 up and addressed"
    address: str | None         # the managed resource it concerns (None: the host)
    ok: bool
    detail: str = ""            # what was found (on success too, e.g. the URI)
    hint: str = ""              # what to do about a failure

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Managed:
    """One resource instance kvmnet manages, as the state records it."""

    address: str
    type: str
    id: str | None
    attrs: dict


def passed(check: str, layer: str, address: str | None = None, detail: str = "") -> Check:
    return Check(layer, check, address, True, detail)


def failed(check: str, layer: str, address: str | None, detail: str, hint: str) -> Check:
    return Check(layer, check, address, False, detail, hint)


def by_type(managed: Iterable[Managed]) -> dict[str, list[Managed]]:
    out: dict[str, list[Managed]] = {}
    for m in managed:
        out.setdefault(m.type, []).append(m)
    return out


def ordered(checks: Iterable[Check]) -> list[Check]:
    """Bottom up by layer; within a layer, in the order the providers gave them."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted(checks, key=lambda c: rank.get(c.layer, len(LAYERS)))


def all_ok(checks: Iterable[Check]) -> bool:
    return all(c.ok for c in checks)


def render_json(checks: Iterable[Check]) -> str:
    """A JSON list of ``{layer, check, address, ok, detail, hint}``."""
    return json.dumps([c.to_json() for c in ordered(checks)], indent=2)


def render_human(checks: Iterable[Check]) -> str:
    """The checklist as plain text: a heading per layer, ✓/✗ per check, and a
    ``hint:`` line under each failure; a summary line last."""
    checks = ordered(checks)
    if not checks:
        return "Nothing to check: the state records no managed resources.\n"
    lines: list[str] = []
    layer = None
    for c in checks:
        if c.layer != layer:
            layer = c.layer
            lines.append(f"{layer}")
        subject = f"{c.address}: {c.check}" if c.address else c.check
        detail = f" ({c.detail})" if c.detail and c.ok else (f": {c.detail}" if c.detail else "")
        lines.append(f"  {OK_MARK if c.ok else FAIL_MARK} {subject}{detail}")
        if not c.ok and c.hint:
            lines.append(f"      hint: {c.hint}")
    bad = sum(1 for c in checks if not c.ok)
    lines.append("")
    lines.append(f"{len(checks)} checks, {bad} failed." if bad else f"{len(checks)} checks, all passed.")
    return "\n".join(lines) + "\n"


def in_netns(netns: str | None, argv: str) -> str:
    """A command line for a hint, run inside ``netns`` when there is one."""
    return f"ip netns exec {netns} {argv}" if netns else argv


def forward_checks(records: Iterable[Managed], intact: set[str], in_order: set[str],
                   tool: str, netns: str | None) -> list[Check]:
    """One check per managed forward: ✓ when the provider's read reports it
    (``in_order``: all its rules as written and kvmnet's accept effective, i.e.
    ahead of libvirt's rules); ✗ otherwise, telling apart rules that are gone from
    rules that are there but come after libvirt's (``intact``: present whatever
    the order)."""
    out = []
    for m in records:
        what = f"forward {m.id} present and ahead of libvirt's rules"
        if m.id in in_order:
            out.append(passed(what, "port_forward", m.address))
        elif m.id in intact:
            out.append(failed(what, "port_forward", m.address,
                              "its rules are there, but rules that are not kvmnet's come before "
                              "kvmnet's accept in FORWARD (libvirt re-inserted its jumps?), "
                              "so libvirt rejects the forwarded connections",
                              f"kvmnet apply puts kvmnet's accept first again "
                              f"(see: {in_netns(netns, tool)})"))
        else:
            out.append(failed(what, "port_forward", m.address,
                              "kvmnet's rules for it are missing or were changed outside kvmnet",
                              f"kvmnet apply writes them again (see: {in_netns(netns, tool)})"))
    return out


# the layer a provider's failure to answer at all belongs to, by the types it manages
TYPE_LAYER = {"network": "network", "nic_attachment": "nic", "port_forward": "port_forward",
              "bridge": "bridge", "vlan": "bridge", "sysctl_profile": "ip_forward"}

# host-level providers whose ``netns`` says where this host's kernel objects live,
# in the order asked (libvirt's bridges and dnsmasq are looked for there)
HOST_NETNS_PROVIDERS = ("iproute", "netplan", "nftables", "iptables", "sysctl")


def host_netns(provider_configs: dict[str, dict]) -> str | None:
    """The namespace of the host's kernel objects: the first ``netns`` set on a
    host-level provider block (see HOST_NETNS_PROVIDERS), else None (the host's)."""
    for name in HOST_NETNS_PROVIDERS:
        ns = (provider_configs.get(name) or {}).get("netns")
        if isinstance(ns, str) and ns:
            return ns
    return None


def provider_failure(provider: str, types: Iterable[str], error: str) -> Check:
    """A provider that could not be asked at all (it would not start, its read failed)."""
    layers = [TYPE_LAYER[t] for t in types if t in TYPE_LAYER]
    layer = "libvirt" if provider == "libvirt" else (layers[0] if layers else provider)
    return failed(f"provider {provider} answers", layer, None, error,
                  f"check the provider \"{provider}\" block and what it points at")
