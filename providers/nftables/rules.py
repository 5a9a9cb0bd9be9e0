"""kvmnet's port forwards in nftables JSON: rendering and parsing back (pure).

Layout (``docs/port-forwards.md``); IPv6 forwards get the same in ``table ip6
kvmnet`` (``ip6 saddr``/``ip6 daddr``, loopback ``::1``) and their shared rule in
``table ip6 filter`` (libvirt's ip6tables rules), so IPv4 stays as it always was::

    table ip kvmnet                     # kvmnet's own; rewritten whole on every apply
      chain prerouting  nat hook prerouting priority dstnat
          fib daddr type local jump port_forwards                   # from outside
      chain output      nat hook output priority -100
          ip daddr != 127.0.0.0/8 fib daddr type local jump port_forwards   # from the host
      chain port_forwards    (one rule per forward)
          [iifname IF] [ip saddr SRC] tcp dport 8080 dnat to G:80 comment MARK
      chain forward     filter hook forward priority filter - 10
          ct status dnat jump forward_accepts
      chain forward_accepts  (one rule per forward)
          [iifname IF] [ip saddr SRC] ip daddr G tcp dport 80 meta mark set meta mark | MARK_BIT comment MARK
    table ip filter / chain FORWARD     # libvirt's (through iptables-nft)
      first: meta mark & MARK_BIT == MARK_BIT accept comment "kvmnet:forward-accept"

One ``port_forwards`` rule serves both hooks: in the output hook a packet has no input
interface, so a forward limited to ``in_interface`` never matches there, exactly as
its model says (no output rule). The one rule in libvirt's chain uses only
expressions iptables-nft reads back (``-m mark --mark 0x400000/0x400000 -m
comment``): a native ``ct status`` there makes iptables call the whole table
"incompatible", and libvirt, which drives iptables, could no longer manage it.
"""
from __future__ import annotations

from typing import Iterable

from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.forwarding import (
    FAMILIES, LOOPBACK, SHARED_RULE_COMMENT, AcceptRule, DnatRule, Forward, is_kvmnet_rule,
    parse_source, shared_rule_first,
)

# nftables family (and payload protocol) of each address family
NFT_FAMILY = {4: "ip", 6: "ip6"}
FAMILY_OF = {v: k for k, v in NFT_FAMILY.items()}
HOST_BITS = {4: 32, 6: 128}
TABLE = "kvmnet"
# libvirt 9.0 drives iptables; with iptables-nft its chains live here
FOREIGN_TABLE = "filter"
FOREIGN_CHAIN = "FORWARD"
MARK_BIT = 0x00400000
BASE_CHAINS = {
    "prerouting": {"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"},
    "output": {"type": "nat", "hook": "output", "prio": -100, "policy": "accept"},
    "forward": {"type": "filter", "hook": "forward", "prio": -10, "policy": "accept"},
}
# regular chains holding one rule per forward (names that are no nft keywords, so
# ``nft list chain ip kvmnet port_forwards`` works at a shell)
DNAT_CHAIN, ACCEPT_CHAIN = "port_forwards", "forward_accepts"
RULE_CHAINS = (DNAT_CHAIN, ACCEPT_CHAIN)


# -- rendering ----------------------------------------------------------------
def _match(left, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, field: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field}}


def _ports(lo: int, hi: int):
    return lo if lo == hi else {"range": [lo, hi]}


def _prefix(cidr: str):
    addr, _, length = cidr.partition("/")
    return addr if length in ("32", "128") else {"prefix": {"addr": addr, "len": int(length)}}


_LOCAL = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
_CT_DNAT = _match({"ct": {"key": "status"}}, "dnat", "in")


def wiring(family: int) -> tuple[tuple[str, list], ...]:
    """The base chains' one rule each, (chain, expressions), in one address family."""
    not_loopback = _match(_payload(NFT_FAMILY[family], "daddr"), _prefix(LOOPBACK[family]), "!=")
    return (
        ("prerouting", [_LOCAL, {"jump": {"target": DNAT_CHAIN}}]),
        ("output", [not_loopback, _LOCAL, {"jump": {"target": DNAT_CHAIN}}]),
        ("forward", [_CT_DNAT, {"jump": {"target": ACCEPT_CHAIN}}]),
    )


def _limits(in_interface, source, family: int) -> list[dict]:
    expr = []
    if in_interface is not None:
        expr.append(_match({"meta": {"key": "iifname"}}, in_interface))
    if source is not None:
        expr.append(_match(_payload(NFT_FAMILY[family], "saddr"), _prefix(source)))
    return expr


def _dnat_target(f: Forward) -> dict:
    family = NFT_FAMILY[f.family]
    if f.host_lo == f.host_hi:
        return {"dnat": {"family": family, "addr": f.to_address, "port": f.to_port}}
    pairs = [[p, f.to_port + (p - f.host_lo)] for p in range(f.host_lo, f.host_hi + 1)]
    return {"dnat": {"family": family, "addr": f.to_address, "port": {"map": {
        "key": _payload(f.protocol, "dport"), "data": {"set": pairs}}}}}


def dnat_rule(f: Forward) -> dict:
    expr = _limits(f.in_interface, f.source, f.family)
    expr += [_match(_payload(f.protocol, "dport"), _ports(f.host_lo, f.host_hi)), _dnat_target(f)]
    return _rule(f.family, DNAT_CHAIN, expr, f.comment)


def accept_rule(f: Forward) -> dict:
    expr = _limits(f.in_interface, f.source, f.family)
    expr += [_match(_payload(NFT_FAMILY[f.family], "daddr"), f.to_address),
             _match(_payload(f.protocol, "dport"), _ports(f.to_port, f.to_hi)),
             {"mangle": {"key": {"meta": {"key": "mark"}},
                         "value": {"|": [{"meta": {"key": "mark"}}, MARK_BIT]}}}]
    return _rule(f.family, ACCEPT_CHAIN, expr, f.comment)


def _rule(family: int, chain: str, expr: list, comment: str, table: str = TABLE) -> dict:
    rule = {"family": NFT_FAMILY[family], "table": table, "chain": chain, "expr": expr}
    if comment:
        rule["comment"] = comment
    return rule


def shared_rule(family: int = 4) -> dict:
    """The one rule kvmnet puts first in libvirt's ``filter FORWARD`` chain of
    ``family`` (``ip filter`` from iptables, ``ip6 filter`` from ip6tables)."""
    expr = [_match({"&": [{"meta": {"key": "mark"}}, MARK_BIT]}, MARK_BIT),
            {"counter": None}, {"accept": None}]
    return _rule(family, FOREIGN_CHAIN, expr, SHARED_RULE_COMMENT, table=FOREIGN_TABLE)


def transaction(forwards: Iterable[Forward], view: "RulesetView") -> dict:
    """One nft JSON transaction that makes kvmnet's rules exactly ``forwards``,
    both address families at once.

    kvmnet's table of each family is dropped and recreated (``add`` first, so the
    ``delete`` never fails on a missing table; it is recreated only while forwards
    of that family remain); in libvirt's FORWARD chain of each family only kvmnet's
    own shared rule is deleted (by handle) and, while forwards of that family
    remain, inserted again first. A family with no forwards wanted and nothing of
    kvmnet's live is not touched at all (an IPv4-only host sees no ``ip6`` command).
    """
    forwards = list(forwards)
    cmds: list[dict] = []
    for family in FAMILIES:
        cmds += _family_commands(family, [f for f in forwards if f.family == family], view)
    return {"nftables": cmds}


def _family_commands(family: int, forwards: list[Forward], view: "RulesetView") -> list[dict]:
    nft_family = NFT_FAMILY[family]
    if not forwards and family not in view.own_tables and not view.shared_rule_handles.get(family):
        return []
    table = {"family": nft_family, "name": TABLE}
    cmds: list[dict] = [{"add": {"table": table}}, {"delete": {"table": table}}]
    if forwards:
        cmds.append({"add": {"table": table}})
        for name in RULE_CHAINS:
            cmds.append({"add": {"chain": {"family": nft_family, "table": TABLE, "name": name}}})
        for name, spec in BASE_CHAINS.items():
            cmds.append({"add": {"chain": {"family": nft_family, "table": TABLE, "name": name, **spec}}})
        for chain, expr in wiring(family):
            cmds.append({"add": {"rule": _rule(family, chain, expr, "")}})
        for f in forwards:
            cmds.append({"add": {"rule": dnat_rule(f)}})
            cmds.append({"add": {"rule": accept_rule(f)}})
    for handle in view.shared_rule_handles.get(family, []):
        cmds.append({"delete": {"rule": {"family": nft_family, "table": FOREIGN_TABLE,
                                         "chain": FOREIGN_CHAIN, "handle": handle}}})
    if forwards and family in view.foreign_chain_families:
        cmds.append({"insert": {"rule": shared_rule(family)}})
    return cmds


# -- parsing ------------------------------------------------------------------
class _Unparsed(Exception):
    pass


def _cidr(right, family: int) -> str:
    if isinstance(right, str):
        return parse_source(f"{right}/{HOST_BITS[family]}", family)
    if isinstance(right, dict) and "prefix" in right:
        return parse_source(f"{right['prefix']['addr']}/{right['prefix']['len']}", family)
    raise _Unparsed


def _port_range(right) -> tuple[int, int]:
    if isinstance(right, int):
        return right, right
    if isinstance(right, dict) and isinstance(right.get("range"), list):
        lo, hi = right["range"]
        return int(lo), int(hi)
    raise _Unparsed


# What reading a rule of an unexpected shape raises (nft's JSON as someone else wrote
# it; ProviderError: a source of the other family): such a rule is not kvmnet's.
# Anything else is a bug and is not swallowed.
SHAPE_ERRORS = (_Unparsed, AttributeError, KeyError, TypeError, ValueError, ProviderError)


def _fields(expr: list, family: int) -> dict:
    """The conditions and statements of one of kvmnet's rules, by name."""
    out: dict = {}
    addr_proto = NFT_FAMILY[family]
    for e in expr:
        if "counter" in e:
            continue
        if "match" in e:
            m = e["match"]
            left, right, op = m.get("left"), m.get("right"), m.get("op")
            if not isinstance(left, dict):
                raise _Unparsed
            if left.get("meta", {}).get("key") == "iifname" and op == "==":
                out["iif"] = right
            elif "payload" in left and left["payload"].get("protocol") == addr_proto:
                field = left["payload"].get("field")
                if field == "saddr" and op == "==":
                    out["source"] = _cidr(right, family)
                elif field == "daddr" and op == "==" and isinstance(right, str):
                    out["daddr"] = right
                elif field == "daddr" and op == "!=" and _cidr(right, family) == LOOPBACK[family]:
                    out["not_loopback"] = True
                else:
                    raise _Unparsed
            elif "payload" in left and left["payload"].get("field") == "dport" and op == "==":
                out["protocol"] = left["payload"].get("protocol")
                out["ports"] = _port_range(right)
            elif "fib" in left and right == "local" and left["fib"].get("flags") == ["daddr"]:
                out["local"] = True
            elif left.get("ct", {}).get("key") == "status" and right == "dnat":
                out["ct_dnat"] = True
            else:
                raise _Unparsed
        elif "dnat" in e:
            if e["dnat"].get("family", addr_proto) != addr_proto:
                raise _Unparsed
            out["dnat"] = e["dnat"]
        elif "jump" in e:
            out["jump"] = e["jump"].get("target")
        elif "mangle" in e:
            value = e["mangle"].get("value")
            if e["mangle"].get("key") != {"meta": {"key": "mark"}} or not (
                    isinstance(value, dict) and MARK_BIT in value.get("|", [])):
                raise _Unparsed
            out["sets_mark"] = True
        else:
            raise _Unparsed
    return out


def _dnat_to(f: dict, lo: int, hi: int, protocol: str) -> tuple[str, int]:
    d = f["dnat"]
    addr, port = d.get("addr"), d.get("port")
    if not isinstance(addr, str):
        raise _Unparsed
    if isinstance(port, int) and lo == hi:
        return addr, port
    if isinstance(port, dict) and "map" in port and lo != hi:
        if port["map"].get("key") != _payload(protocol, "dport"):
            raise _Unparsed
        mapping = {int(k): int(v) for k, v in port["map"].get("data", {}).get("set", [])}
        base = mapping.get(lo)
        if base is None or mapping != {p: base + (p - lo) for p in range(lo, hi + 1)}:
            raise _Unparsed
        return addr, base
    raise _Unparsed


def parse_rule(chain: str, rule: dict, family: int = 4) -> list[DnatRule | AcceptRule]:
    """The rule values one rule of kvmnet's table of ``family`` stands for ([] when
    kvmnet did not write it so). A ``port_forwards`` rule stands for the prerouting
    DNAT and, without an ``in_interface``, for the output DNAT too (both hooks jump
    to it)."""
    try:
        f = _fields(rule.get("expr", []), family)
        if f.get("protocol") not in ("tcp", "udp") or "ports" not in f:
            return []
        lo, hi = f["ports"]
        comment = rule.get("comment", "")
        if chain == DNAT_CHAIN:
            if set(f) - {"iif", "source", "protocol", "ports", "dnat"} or "dnat" not in f:
                return []
            addr, to_port = _dnat_to(f, lo, hi, f["protocol"])
            pre = DnatRule("prerouting", f["protocol"], lo, hi, addr, to_port, f.get("iif"),
                           f.get("source"), comment)
            if pre.family != family:
                return []
            out = pre.forward().output_rule()
            rules: list[DnatRule | AcceptRule] = [pre]
            return rules + ([out] if out else [])
        if chain == ACCEPT_CHAIN:
            if set(f) - {"iif", "source", "protocol", "ports", "daddr", "sets_mark"}:
                return []
            if not (f.get("sets_mark") and "daddr" in f):
                return []
            return [AcceptRule(f["protocol"], f["daddr"], lo, hi, f.get("iif"), f.get("source"), comment)]
    except SHAPE_ERRORS:   # a rule of a shape kvmnet does not write
        return []
    return []


def _is_wiring(chain: str, rule: dict, family: int) -> bool:
    try:
        f = _fields(rule.get("expr", []), family)
    except SHAPE_ERRORS:
        return False
    want = {"prerouting": {"local": True, "jump": DNAT_CHAIN},
            "output": {"not_loopback": True, "local": True, "jump": DNAT_CHAIN},
            "forward": {"ct_dnat": True, "jump": ACCEPT_CHAIN}}
    return want.get(chain) == f


class _FamilyView:
    """The bookkeeping of one address family while a ruleset is read."""

    def __init__(self) -> None:
        self.wired: set[str] = set()
        self.hooked: dict[str, dict] = {}
        self.order: list[tuple[bool, bool]] = []
        self.foreign_chain_exists = False

    def effective(self) -> bool:
        """kvmnet's hooks are wired, and libvirt's FORWARD (if any) starts with our rule."""
        wired = self.wired == set(BASE_CHAINS) and all(
            self.hooked.get(name) == spec for name, spec in BASE_CHAINS.items())
        return wired and (not self.foreign_chain_exists or shared_rule_first(self.order))


class RulesetView:
    """What kvmnet needs to know from one ``nft -j list ruleset``, both address
    families (tables ``ip``/``ip6`` ``kvmnet`` and ``filter``)."""

    def __init__(self, ruleset: dict):
        self.rules: list[DnatRule | AcceptRule] = []
        self.own_items: list[dict] = []                 # kvmnet's tables, for snapshots
        self.shared_rule_handles: dict[int, list[int]] = {}
        self.own_tables: set[int] = set()               # families whose kvmnet table exists
        fam = {family: _FamilyView() for family in FAMILIES}
        for item in ruleset.get("nftables", []):
            kind = next((k for k in ("table", "chain", "rule") if k in item), None)
            if kind is None:
                continue
            obj = item[kind]
            family = FAMILY_OF.get(obj.get("family"))
            if family is None:
                continue
            v = fam[family]
            table = obj.get("name") if kind == "table" else obj.get("table")
            if kind == "chain" and (table, obj.get("name")) == (FOREIGN_TABLE, FOREIGN_CHAIN) \
                    and obj.get("hook") == "forward":
                v.foreign_chain_exists = True
            if table == TABLE:
                self.own_items.append(item)
                self.own_tables.add(family)
                if kind == "chain":
                    v.hooked[obj.get("name")] = {k: obj.get(k) for k in ("type", "hook", "prio", "policy")}
                elif kind == "rule":
                    chain = obj.get("chain")
                    if chain in RULE_CHAINS:
                        self.rules.extend(parse_rule(chain, obj, family))
                    elif _is_wiring(chain, obj, family):
                        v.wired.add(chain)
            elif kind == "rule" and table == FOREIGN_TABLE and obj.get("chain") == FOREIGN_CHAIN:
                comment = obj.get("comment")
                jump = next((e["jump"].get("target") for e in obj.get("expr", []) if "jump" in e), None)
                is_shared = comment == SHARED_RULE_COMMENT
                if is_shared:
                    self.shared_rule_handles.setdefault(family, []).append(obj.get("handle"))
                    self.own_items.append(item)
                v.order.append((is_kvmnet_rule(comment, jump), is_shared))
        self.foreign_chain_families = frozenset(f for f, v in fam.items() if v.foreign_chain_exists)
        self.effective_families = frozenset(f for f, v in fam.items() if v.effective())
        self.wired = {f: v.wired == set(BASE_CHAINS) for f, v in fam.items()}
