"""Port forwards, free of any firewall syntax: shared by the nftables and iptables providers.

A ``port_forward`` becomes a small set of rules (see ``docs/port-forwards.md``):

* a DNAT rule for packets arriving from outside (the prerouting hook);
* a DNAT rule for connections made on the host itself (the output hook), unless
  the forward is limited to an ``in_interface`` (a local connection arrives on none);
* a forward-accept rule for the DNATed connection, so that it passes libvirt's own
  rules, which reject new inbound connections to the guests of a NAT network.

Both DNAT rules only catch packets addressed to the host itself (``fib daddr type
local`` / ``-m addrtype --dst-type LOCAL``): traffic routed *through* the host to
another machine's port 8080 (a guest connecting out, say) is never hijacked, and the
output rule leaves loopback (127.0.0.0/8, ::1) alone (DNAT from loopback to a guest
cannot work).

A forward is IPv4 or IPv6 by its ``to_address`` (its *family*, 4 or 6); each
provider keeps the two families' rules apart (nftables tables ``ip kvmnet`` and
``ip6 kvmnet``; ``iptables`` and ``ip6tables``). Host ports are claimed per
protocol *and* family: ``tcp/8080`` to an IPv4 guest and ``tcp6/8080`` to an IPv6
guest are two forwards that coexist.

This module holds the forward model, the validation that runs before anything
reaches ``nft``/``iptables`` (``nft`` would try DNS on ``10.0.0.500``), the
syntax-free rule values each provider renders and parses, and the bookkeeping of an
apply: which forwards the new rule set holds after a list of changes.
"""
from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass
from typing import ClassVar, Iterable, Iterator, overload

from kvmnet.sdk.doctor import Check, Managed, failed, in_netns, passed
from kvmnet.sdk.ownership import Mark, parse_mark
from kvmnet.sdk.values import contains_unknown
from kvmnet.sdk.provider import Change, LiveObject, Provider, ProviderError, Result
from kvmnet.providers import timeouts
from kvmnet.sdk.killpoints import hit as kill_point

PROTOCOLS = ("tcp", "udp")
# Comment on the one rule kvmnet places in a chain it does not own (libvirt's
# ``filter FORWARD``). It is not a resource mark: it belongs to every forward.
SHARED_RULE_COMMENT = "kvmnet:forward-accept"
# Prefix of every chain kvmnet owns inside a table it does not own.
OWN_CHAIN_PREFIX = "KVMNET_"
LOOPBACK = {4: "127.0.0.0/8", 6: "::1/128"}
FAMILIES = (4, 6)

_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_HOST_PORT = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True)
class Forward:
    """One port forward, validated: ``host_lo..host_hi`` → ``to_address:to_port..``.

    A range maps one to one onto as many ports from ``to_port`` on
    (``8000-8010`` → ``to_port``..``to_port+10``).
    """

    protocol: str
    host_lo: int
    host_hi: int
    to_address: str
    to_port: int
    in_interface: str | None = None
    source: str | None = None     # a CIDR without host bits ("198.18.0.0/24")
    comment: str = ""             # the ownership mark text

    @property
    def host_port(self) -> str:
        return port_text(self.host_lo, self.host_hi)

    @property
    def family(self) -> int:
        """4 or 6, by ``to_address``."""
        return address_family(self.to_address)

    @property
    def id(self) -> str:
        """The import ID: ``PROTOCOL/HOST_PORT``, ``PROTOCOL6/HOST_PORT`` for IPv6."""
        return forward_id(self.protocol, self.host_port, self.to_address)

    @property
    def to_hi(self) -> int:
        return self.to_port + (self.host_hi - self.host_lo)

    @property
    def mark(self) -> Mark | None:
        return parse_mark(self.comment)

    def attrs(self) -> dict:
        """The canonical attributes the engine compares (``network`` is config-only)."""
        return {
            "protocol": self.protocol,
            "host_port": self.host_port,
            "to_address": self.to_address,
            "to_port": self.to_port,
            "in_interface": self.in_interface,
            "source": self.source,
        }

    # -- the rules this forward consists of -----------------------------------
    def prerouting_rule(self) -> "DnatRule":
        return DnatRule("prerouting", self.protocol, self.host_lo, self.host_hi,
                        self.to_address, self.to_port, self.in_interface, self.source, self.comment)

    def output_rule(self) -> "DnatRule | None":
        if self.in_interface is not None:
            return None
        return DnatRule("output", self.protocol, self.host_lo, self.host_hi,
                        self.to_address, self.to_port, None, self.source, self.comment)

    def accept_rule(self) -> "AcceptRule":
        return AcceptRule(self.protocol, self.to_address, self.to_port, self.to_hi,
                          self.in_interface, self.source, self.comment)

    def rules(self) -> list["DnatRule | AcceptRule"]:
        return [r for r in (self.prerouting_rule(), self.output_rule(), self.accept_rule()) if r]


@dataclass(frozen=True)
class DnatRule:
    """A DNAT rule, as both providers mean it whatever their syntax."""

    hook: str                     # "prerouting" | "output"
    protocol: str
    host_lo: int
    host_hi: int
    to_address: str
    to_port: int
    in_interface: str | None
    source: str | None
    comment: str

    @property
    def family(self) -> int:
        return address_family(self.to_address)

    def forward(self) -> Forward:
        return Forward(self.protocol, self.host_lo, self.host_hi, self.to_address,
                       self.to_port, self.in_interface, self.source, self.comment)


@dataclass(frozen=True)
class AcceptRule:
    """The forward-accept for DNATed packets to ``to_address:to_lo..to_hi``."""

    protocol: str
    to_address: str
    to_lo: int
    to_hi: int
    in_interface: str | None
    source: str | None
    comment: str

    @property
    def family(self) -> int:
        return address_family(self.to_address)


def address_family(address: str) -> int:
    """6 for an IPv6 address text, 4 otherwise (the texts here are validated already)."""
    return 6 if ":" in address else 4


def forward_id(protocol, host_port, to_address) -> str:
    """The live ID of a forward: ``tcp/8080``, or ``tcp6/8080`` when ``to_address``
    is IPv6 (an unknown or malformed ``to_address`` counts as IPv4, as before IPv6)."""
    six = "6" if isinstance(to_address, str) and ":" in to_address else ""
    return f"{protocol}{six}/{host_port}"


def port_text(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


# -- validation (pure) ----------------------------------------------------------
def _port(value, what: str) -> int:
    if isinstance(value, bool):
        raise ProviderError(f"{what}: {value!r} is not a port number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise ProviderError(f"{what}: {value!r} is not a port number (1..65535)")
    return value


def parse_host_port(value) -> tuple[int, int]:
    """``8080`` / ``"8080"`` / ``"8000-8010"`` → (lo, hi)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        p = _port(value, "host_port")
        return p, p
    m = _HOST_PORT.match(str(value).replace(" ", "")) if value is not None else None
    if not m:
        raise ProviderError(f"host_port: {value!r} is not a port or a range like \"8000-8010\"")
    lo = _port(int(m.group(1)), "host_port")
    hi = _port(int(m.group(2)), "host_port") if m.group(2) else lo
    if hi < lo:
        raise ProviderError(f"host_port: range {value!r} is reversed")
    return lo, hi


def parse_address(value, what: str) -> str:
    """An IPv4 or IPv6 address in its canonical text (IPv6 compressed, lower case)."""
    try:
        if isinstance(value, str) and ":" in value:
            return str(ipaddress.IPv6Address(value))
        return str(ipaddress.IPv4Address(str(value)))
    except (ipaddress.AddressValueError, ValueError):
        raise ProviderError(f"{what}: {value!r} is not an IPv4 or IPv6 address") from None


def unusable_destination(address: str) -> str | None:
    """Why a (valid) address cannot receive a forward, or None.

    Loopback and unspecified addresses are no guest; an IPv6 link-local address is
    ambiguous without its interface, which a DNAT target cannot name; multicast is
    no single destination; an IPv4-mapped IPv6 address belongs in an IPv4 forward.
    """
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_unspecified:
        return "a loopback or unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_link_local:
            return "an IPv6 link-local address (a DNAT target cannot name its interface)"
        if ip.ipv4_mapped is not None:
            return f"an IPv4-mapped address: forward to {ip.ipv4_mapped} instead"
    return None


@overload
def parse_source(value: None, family: int = 4) -> None: ...
@overload
def parse_source(value: str, family: int = 4) -> str: ...
@overload
def parse_source(value: object, family: int = 4) -> str | None: ...
def parse_source(value, family: int = 4) -> str | None:
    """A CIDR without host bits of ``family`` (the forward's), canonical text."""
    if value is None:
        return None
    kind = ipaddress.IPv6Network if family == 6 else ipaddress.IPv4Network
    try:
        net = kind(str(value), strict=True)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError) as e:
        other = 6 if family == 4 else 4
        if _parses_as(value, other):
            raise ProviderError(f"source: {value!r} is an IPv{other} network, but to_address is "
                                f"IPv{family}: a forward is of one address family") from None
        raise ProviderError(f"source: {value!r} is not an IPv{family} CIDR without host bits ({e})") from None
    return str(net)


def _parses_as(value, family: int) -> bool:
    try:
        (ipaddress.IPv6Network if family == 6 else ipaddress.IPv4Network)(str(value), strict=False)
    except ValueError:
        return False
    return True


def parse_ifname(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _IFNAME.match(value) or value in (".", ".."):
        raise ProviderError(f"in_interface: {value!r} is not an interface name "
                            "(1-15 characters: letters, digits, _ . : @ -)")
    return value


def forward_from_attrs(attrs: dict, comment: str = "") -> Forward:
    """A validated :class:`Forward` from canonical attributes; ProviderError if malformed."""
    protocol = attrs.get("protocol")
    if protocol not in PROTOCOLS:
        raise ProviderError(f"protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    lo, hi = parse_host_port(attrs.get("host_port"))
    to_address = parse_address(attrs.get("to_address"), "to_address")
    family = address_family(to_address)
    to_port = _port(attrs.get("to_port"), "to_port")
    if to_port + (hi - lo) > 65535:
        raise ProviderError(f"to_port: {to_port} plus the {hi - lo + 1} ports of host_port "
                            "goes past 65535")
    unusable = unusable_destination(to_address)
    if unusable:
        raise ProviderError(f"to_address: {to_address} cannot receive a forward: it is {unusable}")
    if comment and not comment.isprintable():
        raise ProviderError(f"ownership mark {comment!r} holds a control character")
    if comment and len(comment.encode()) > 127:
        raise ProviderError(f"ownership mark {comment!r} is longer than a rule comment allows (127)")
    return Forward(protocol, lo, hi, to_address, to_port,
                   parse_ifname(attrs.get("in_interface")), parse_source(attrs.get("source"), family),
                   comment)


def check_no_overlap(forwards: Iterable[Forward]) -> None:
    """Two forwards may not claim the same host port for the same protocol and
    address family (IPv4 and IPv6 packets to one port are told apart)."""
    by_kind: dict[tuple[str, int], list[Forward]] = {}
    for f in forwards:
        by_kind.setdefault((f.protocol, f.family), []).append(f)
    for fs in by_kind.values():
        fs.sort(key=lambda f: f.host_lo)
        for a, b in itertools.pairwise(fs):
            if b.host_lo <= a.host_hi:
                raise ProviderError(f"{b.id} overlaps {a.id}: the same host port is forwarded twice")


# -- reading back (pure) ----------------------------------------------------------
def intact_forwards(rules: Iterable[DnatRule | AcceptRule], effective: Iterable[int]) -> dict[str, Forward]:
    """The forwards whose every rule is live and effective, keyed by ID.

    ``rules`` are all the rules parsed from kvmnet's own chains. A forward is known
    by its prerouting DNAT rule; it counts as live only when its output DNAT rule
    and its forward-accept are there too, exactly as kvmnet renders them, and the
    rule that hands DNATed traffic past libvirt's rejects is effective for its
    address family (``effective``: the families, 4 and/or 6, where it is). Anything
    less is drift: the forward is reported missing, so the next plan creates it again
    and the apply rewrites kvmnet's rules whole.
    """
    families = set(effective)
    present = set(rules)
    out: dict[str, Forward] = {}
    for rule in present:
        if isinstance(rule, DnatRule) and rule.hook == "prerouting" and rule.family in families:
            f = rule.forward()
            if all(r in present for r in f.rules()):
                out[f.id] = f
    return out


def shared_rule_first(rules_in_order: list[tuple[bool, bool]]) -> bool:
    """Whether kvmnet's rule in a foreign chain comes before every foreign rule.

    ``rules_in_order`` lists the chain's rules as (is kvmnet's, is the rule we look for).
    Other kvmnet rules may precede it (both providers in one namespace); a rule
    of anyone else may not, since it may reject the packet first.
    """
    for is_kvmnet, is_target in rules_in_order:
        if is_target:
            return True
        if not is_kvmnet:
            return False
    return False


def is_kvmnet_rule(comment: str | None, jump_target: str | None) -> bool:
    return bool((comment or "").startswith("kvmnet:")
                or (jump_target or "").startswith(OWN_CHAIN_PREFIX))


# -- applying (pure) ----------------------------------------------------------------
def forwards_after(live: dict[str, Forward], changes: list[Change]) -> tuple[dict[str, Forward], list]:
    """The full set of forwards once ``changes`` are made, and the per-change outcome.

    ``live`` holds what :func:`intact_forwards` reported (every lineage's forwards,
    not only this state's: kvmnet's table is rewritten whole, and must keep them).
    Returns (forwards by ID, [(change, Forward or None)]).
    """
    result = dict(live)
    outcome: list[tuple[Change, Forward | None]] = []
    for c in changes:
        if c.type != "port_forward":
            raise ProviderError(f"{c.address}: port forwards only, not {c.type}")
        if c.action in ("delete", "update") and c.before is not None:
            try:
                lo, hi = parse_host_port(c.before.get("host_port"))
                result.pop(forward_id(c.before.get("protocol"), port_text(lo, hi),
                                      c.before.get("to_address")), None)
            except ProviderError:
                pass   # a malformed old state entry: nothing live can match it
        if c.action in ("create", "update"):
            f = forward_from_attrs(c.after or {}, c.mark)
            result[f.id] = f
            outcome.append((c, f))
        elif c.action == "delete":
            outcome.append((c, None))
        else:
            raise ProviderError(f"{c.address}: unknown action {c.action!r}")
    check_no_overlap(result.values())
    return result, outcome


def result_attrs(change: Change, forward: Forward | None) -> dict | None:
    """Attributes recorded in state after a change (config-only ``network`` kept)."""
    if forward is None:
        return None
    attrs = forward.attrs()
    attrs["network"] = (change.after or {}).get("network")
    return attrs


# -- the provider flow both firewall providers share --------------------------------
class ForwardingProvider(Provider):
    """read/apply/check of ``port_forward`` for a firewall backend.

    A subclass supplies the syntax: :meth:`_load` reads the live rules once and
    returns a view with ``.rules`` (every rule parsed from kvmnet's own chains, both
    address families) and ``.effective_families`` (the families, 4 and/or 6, whose
    rule handing DNATed traffic past libvirt's rejects is in place); :meth:`_write`
    makes kvmnet's rules exactly the given forwards, checked first, given the view
    it was computed from; :attr:`forward_chain_commands` are the commands, by
    family, that show the ``FORWARD`` chain holding kvmnet's accept (named in
    ``kvmnet doctor``'s hints).
    """

    resource_types = ("port_forward",)
    forward_chain_commands: ClassVar[dict[int, str]] = {}
    transactional = True
    config_schema = {
        "type": "object",
        "properties": {"netns": {"type": "string"}, "timeout": timeouts.SCHEMA},
        "additionalProperties": False,
    }

    @property
    def netns(self) -> str | None:
        return self.config.get("netns")

    @property
    def timeout(self) -> float:
        """Seconds each ``nft``/``iptables`` command may take (``providers/timeouts.py``)."""
        return timeouts.timeout_of(self.config)

    def _load(self):
        raise NotImplementedError

    def _write(self, forwards: list[Forward], view) -> None:
        raise NotImplementedError

    def _live(self, view) -> dict[str, Forward]:
        return intact_forwards(view.rules, view.effective_families)

    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        if rtype != "port_forward":
            raise ProviderError(f"the {self.name} provider serves port_forward, not {rtype}")
        return {fid: LiveObject(fid, f.attrs(), f.mark) for fid, f in self._live(self._load()).items()}

    def probes(self, managed: dict) -> list:
        """The gateway of this provider's namespace answers, and each TCP forward
        accepts a connection through it (:mod:`kvmnet.providers.forward_probe`)."""
        from kvmnet.providers.forward_probe import forwarding_probes
        return forwarding_probes(managed, self.netns or None)

    def diagnose(self, managed: dict, host_netns: str | None = None) -> list[Check]:
        """``kvmnet doctor``: each managed forward present and ahead of libvirt's rules,
        from the one ruleset read that :meth:`read` makes (``host_netns`` is not
        needed: the rules are looked for in this provider's own ``netns``)."""
        records = managed.get("port_forward", [])
        if not records:
            return []
        view = self._load()
        return forward_checks(records, set(intact_forwards(view.rules, FAMILIES)),
                              set(self._live(view)), self.forward_chain_commands, self.netns)

    def check(self, rtype: str, address: str, attrs: dict) -> list[tuple[str | None, str]]:
        if contains_unknown(attrs):
            return []
        try:
            forward_from_attrs(attrs)
        except ProviderError as e:
            attribute, _, message = str(e).partition(": ")
            return [(attribute if attribute in attrs else None, message if _ else str(e))]
        return []

    def apply(self, changes: list[Change]) -> Iterator[Result]:
        if not changes:
            return
        view = self._load()
        wanted, outcome = forwards_after(self._live(view), changes)
        kill_point(f"{self.name}.rules-write")
        self._write(sorted(wanted.values(), key=lambda f: (f.protocol, f.host_lo)), view)
        kill_point(f"{self.name}.rules-written")
        # read back: a change the backend accepted but that is not live is an error
        missing = sorted(set(wanted) - set(self._live(self._load())))
        if missing:
            raise ProviderError(f"{self.name}: the rules were written but these forwards are "
                                f"not live as written: {', '.join(missing)}")
        for change, forward in outcome:
            yield Result(change, result_attrs(change, forward))


def id_family(fid: str | None) -> int:
    """The address family a forward's ID names (``tcp6/8080`` → 6)."""
    return 6 if (fid or "").partition("/")[0].endswith("6") else 4


def forward_checks(records: Iterable[Managed], intact: set[str], in_order: set[str],
                   tools: dict[int, str], netns: str | None) -> list[Check]:
    """One check per managed forward: ✓ when the provider's read reports it
    (``in_order``: all its rules as written and kvmnet's accept effective, i.e.
    ahead of libvirt's rules); ✗ otherwise, telling apart rules that are gone from
    rules that are there but come after libvirt's (``intact``: present whatever
    the order). The hint names the command of the forward's address family
    (``nft list chain ip6 filter FORWARD``, ``ip6tables -S FORWARD`` for IPv6)."""
    out = []
    for m in records:
        tool = tools.get(id_family(m.id), "")
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
