"""kvmnet's port forwards in ``iptables-restore`` syntax: rendering and parsing back (pure).

Layout (``docs/port-forwards.md``)::

    *nat     KVMNET_PREROUTING  ← one jump appended to PREROUTING
             KVMNET_OUTPUT      ← one jump appended to OUTPUT
    *filter  KVMNET_FORWARD     ← one jump inserted FIRST in FORWARD (ahead of libvirt's)

Applied with ``iptables-restore --noflush``: declaring ``:KVMNET_X - [0:0]`` flushes
that chain, so each apply rewrites kvmnet's chains whole; a jump is written only when
it is missing (or, for FORWARD, no longer ahead of everyone else's rules), so a
second apply adds nothing. IPv6 forwards get the same chains and jumps through
``ip6tables-restore`` (``-d G/128``, ``! -d ::1/128``, ``--to-destination [G]:P``);
each function here works on one address family's text.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Iterable

from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.forwarding import (
    FAMILIES, LOOPBACK, AcceptRule, DnatRule, Forward, is_kvmnet_rule, parse_source,
    shared_rule_first,
)

JUMP_COMMENT = "kvmnet:jump"
# (table, built-in chain, kvmnet's chain, insert first?)
JUMPS = (
    ("nat", "PREROUTING", "KVMNET_PREROUTING", False),
    ("nat", "OUTPUT", "KVMNET_OUTPUT", False),
    ("filter", "FORWARD", "KVMNET_FORWARD", True),
)
OWN_CHAINS = {"KVMNET_PREROUTING": "prerouting", "KVMNET_OUTPUT": "output", "KVMNET_FORWARD": "forward"}
# the commands of each address family
SAVE = {4: "iptables-save", 6: "ip6tables-save"}
RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
HOST_BITS = {4: 32, 6: 128}


def _q(text: str) -> str:
    """A double-quoted argument as iptables-restore reads it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ports(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}:{hi}"


def _common(protocol: str, lo: int, hi: int, in_interface, source) -> list[str]:
    out = []
    if in_interface is not None:
        out += ["-i", in_interface]
    if source is not None:
        out += ["-s", source]
    out += ["-p", protocol, "-m", protocol, "--dport", _ports(lo, hi)]
    return out


def dnat_line(r: DnatRule) -> str:
    chain = "KVMNET_PREROUTING" if r.hook == "prerouting" else "KVMNET_OUTPUT"
    words = ["-A", chain]
    if r.hook == "output":
        words += ["!", "-d", LOOPBACK[r.family]]
    words += _common(r.protocol, r.host_lo, r.host_hi, r.in_interface, r.source)
    words += ["-m", "addrtype", "--dst-type", "LOCAL"]
    addr = f"[{r.to_address}]" if r.family == 6 else r.to_address
    if r.host_lo == r.host_hi:
        to = f"{addr}:{r.to_port}"
    else:
        to = f"{addr}:{r.to_port}-{r.to_port + r.host_hi - r.host_lo}/{r.host_lo}"
    return _join(words, r.comment, ["-j", "DNAT", "--to-destination", to])


def accept_line(r: AcceptRule) -> str:
    words = ["-A", "KVMNET_FORWARD", "-d", f"{r.to_address}/{HOST_BITS[r.family]}"]
    words += _common(r.protocol, r.to_lo, r.to_hi, r.in_interface, r.source)
    words += ["-m", "conntrack", "--ctstate", "DNAT"]
    return _join(words, r.comment, ["-j", "ACCEPT"])


def _join(words: list[str], comment: str, target: list[str]) -> str:
    if comment:
        words = words + ["-m", "comment", "--comment", _q(comment)]
    return " ".join(words + target)


def jump_line(position: str, own: str) -> str:
    """``position`` is ``-A CHAIN`` or ``-I CHAIN 1``."""
    return f"{position} -m comment --comment {_q(JUMP_COMMENT)} -j {own}"


# -- parsing ------------------------------------------------------------------
def _words_to_fields(words: list[str], family: int) -> dict | None:
    f: dict = {}
    i, negate = 0, False
    while i < len(words):
        w = words[i]
        arg = words[i + 1] if i + 1 < len(words) else None
        if w == "!":
            negate = True
            i += 1
            continue
        if arg is None:
            return None     # an option without its argument: not a rule kvmnet wrote
        if w == "-m":
            pass
        elif w == "-i" and not negate:
            f["iif"] = arg
        elif w == "-s" and not negate:
            f["source"] = parse_source(arg, family)
        elif w == "-d" and negate and arg == LOOPBACK[family]:
            f["not_loopback"] = True
        elif w == "-d" and not negate and arg.endswith(f"/{HOST_BITS[family]}"):
            f["daddr"] = arg.rpartition("/")[0]
        elif w == "-p" and not negate:
            f["protocol"] = arg
        elif w == "--dport" and not negate:
            lo, _, hi = arg.partition(":")
            f["ports"] = (int(lo), int(hi or lo))
        elif w == "--dst-type" and not negate and arg == "LOCAL":
            f["local"] = True
        elif w == "--ctstate" and not negate and arg == "DNAT":
            f["ct_dnat"] = True
        elif w == "--comment":
            f["comment"] = arg
        elif w == "-j":
            f["target"] = arg
        elif w == "--to-destination":
            f["to"] = arg
        else:
            return None
        negate = False
        i += 2
    return f


def _to_destination(text: str, lo: int, hi: int) -> tuple[str, int] | None:
    """``A:P``, ``[A6]:P``, or with a range ``A:P-Q/BASE``."""
    if text.startswith("["):
        addr, _, ports = text[1:].partition("]:")
    else:
        addr, _, ports = text.partition(":")
    if lo == hi:
        return (addr, int(ports)) if ports.isdigit() else None
    span, _, base = ports.partition("/")
    a, _, b = span.partition("-")
    if not (a.isdigit() and b.isdigit() and base.isdigit()):
        return None
    if int(base) != lo or int(b) - int(a) != hi - lo:
        return None
    return addr, int(a)


def parse_line(chain: str, rest: list[str], family: int = 4) -> DnatRule | AcceptRule | None:
    """One rule of kvmnet's own chains of ``family``, or None when kvmnet would not
    have written it so."""
    try:
        f = _words_to_fields(rest, family)
        if not f or f.get("protocol") not in ("tcp", "udp") or "ports" not in f:
            return None
        lo, hi = f["ports"]
        comment = f.get("comment", "")
        hook = OWN_CHAINS[chain]
        if hook in ("prerouting", "output"):
            allowed = {"iif", "source", "protocol", "ports", "local", "comment", "target", "to"}
            if hook == "output":
                allowed = (allowed - {"iif"}) | {"not_loopback"}
            if set(f) - allowed or f.get("target") != "DNAT" or not f.get("local") or "to" not in f:
                return None
            if hook == "output" and not f.get("not_loopback"):
                return None
            to = _to_destination(f["to"], lo, hi)
            if to is None or (":" in to[0]) != (family == 6):
                return None
            return DnatRule(hook, f["protocol"], lo, hi, to[0], to[1], f.get("iif"), f.get("source"), comment)
        allowed = {"iif", "source", "protocol", "ports", "daddr", "ct_dnat", "comment", "target"}
        if set(f) - allowed or f.get("target") != "ACCEPT" or not f.get("ct_dnat") or "daddr" not in f:
            return None
        return AcceptRule(f["protocol"], f["daddr"], lo, hi, f.get("iif"), f.get("source"), comment)
    # a rule of a shape kvmnet does not write (ProviderError: a source of the other family)
    except (ValueError, IndexError, KeyError, ProviderError):
        return None


@dataclass
class SaveView:
    """What kvmnet needs to know from one ``iptables-save``."""

    rules: list = field(default_factory=list)
    # (table, chain) → the raw ``-A`` lines of kvmnet's jumps there, and whether
    # kvmnet's jump comes where it must (first for FORWARD, anywhere otherwise)
    jump_lines: dict = field(default_factory=dict)
    jump_ok: dict = field(default_factory=dict)
    own_lines: list = field(default_factory=list)
    existing_chains: set = field(default_factory=set)

    @property
    def shared_rule_effective(self) -> bool:
        """Every jump is there, and the FORWARD one precedes everyone else's rules."""
        return all(self.jump_ok.get((t, c), False) for t, c, _, _ in JUMPS)

    @property
    def touched(self) -> bool:
        """Whether anything of kvmnet is in this family's tables (a chain or a jump)."""
        return bool(self.own_lines) or any(c in OWN_CHAINS for _t, c in self.existing_chains)


def parse_save(text: str, family: int = 4) -> SaveView:
    """The view of one ``iptables-save`` (``family`` 4) or ``ip6tables-save`` (6)."""
    view = SaveView()
    table = ""
    order: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    wanted = {(t, c): own for t, c, own, _ in JUMPS}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        if line.startswith(":"):
            view.existing_chains.add((table, line[1:].split()[0]))
            continue
        if not line.startswith("-A "):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        chain, rest = words[1], words[2:]
        if chain in OWN_CHAINS:
            view.own_lines.append(f"*{table} {line}")
            r = parse_line(chain, rest, family)
            if r is not None:
                view.rules.append(r)
            continue
        if (table, chain) in wanted:
            target = rest[rest.index("-j") + 1] if "-j" in rest else None
            comment = rest[rest.index("--comment") + 1] if "--comment" in rest else None
            is_ours = target == wanted[(table, chain)]
            if is_ours:
                view.jump_lines.setdefault((table, chain), []).append(line)
                view.own_lines.append(f"*{table} {line}")
            order.setdefault((table, chain), []).append((is_kvmnet_rule(comment, target), is_ours))
    for t, c, _own, first in JUMPS:
        present = bool(view.jump_lines.get((t, c)))
        view.jump_ok[(t, c)] = present and (shared_rule_first(order.get((t, c), [])) if first else True)
    return view


def restore_text(forwards: Iterable[Forward], view: SaveView) -> str:
    """The ``iptables-restore --noflush`` (or ``ip6tables-restore``) input that makes
    kvmnet's rules of one address family exactly ``forwards`` (all of that family)."""
    forwards = sorted(forwards, key=lambda f: (f.protocol, f.host_lo))
    out: list[str] = []
    for table in ("nat", "filter"):
        jumps = [j for j in JUMPS if j[0] == table]
        out.append(f"*{table}")
        for _, _, own, _ in jumps:
            out.append(f":{own} - [0:0]")        # declares (and flushes) kvmnet's chain
        for f in forwards:
            for r in f.rules():
                if table == "nat" and isinstance(r, DnatRule):
                    out.append(dnat_line(r))
                elif table == "filter" and isinstance(r, AcceptRule):
                    out.append(accept_line(r))
        for _, chain, own, first in jumps:
            existing = view.jump_lines.get((table, chain), [])
            keep = forwards and view.jump_ok.get((table, chain)) and len(existing) == 1
            if not keep:
                out += ["-D " + line[3:] for line in existing]
                if forwards:
                    out.append(jump_line(f"-I {chain} 1" if first else f"-A {chain}", own))
            if not forwards:
                out.append(f"-X {own}")
        out.append("COMMIT")
    return "\n".join(out) + "\n"


@dataclass
class FamilyViews:
    """The views of both address families, as the shared provider flow reads them."""

    by_family: dict[int, SaveView]

    @property
    def rules(self) -> list:
        return [r for f in FAMILIES for r in self.by_family[f].rules]

    @property
    def effective_families(self) -> frozenset[int]:
        return frozenset(f for f in FAMILIES if self.by_family[f].shared_rule_effective)

    @property
    def own_lines(self) -> list[str]:
        return [f"{SAVE[f]} {line}" for f in FAMILIES for line in self.by_family[f].own_lines]
