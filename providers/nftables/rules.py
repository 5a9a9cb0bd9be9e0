"""kvmnet's port forwards in nftables JSON: rendering and parsing back (pure).

Layout (``docs/port-forwards.md``)::

    table ip kvmnet                       # kvmnet's own; rewritten whole on apply
      chain prerouting  nat    hook prerouting priority dstnat   # DNAT from outside
      chain output      nat    hook output     priority -100     # DNAT from the host
      chain forward     filter hook forward    priority filter-10
          # ct status dnat + guest address/port: set MARK_BIT in the packet mark
    table ip filter / chain FORWARD       # libvirt's (through iptables-nft)
      rule 1: meta mark & MARK_BIT == MARK_BIT accept comment "kvmnet:forward-accept"

The one rule in libvirt's chain uses only expressions iptables-nft can read back
(``-m mark --mark 0x400000/0x400000 -m comment``): a native ``ct status`` there
would make iptables call the whole table "incompatible", and libvirt, which drives
iptables, could no longer manage its own rules.
"""
from __future__ import annotations

from typing import Iterable

from kvmnet.providers.forwarding import (
    SHARED_RULE_COMMENT, AcceptRule, DnatRule, Forward, is_kvmnet_rule, parse_source,
    shared_rule_first,
)

FAMILY = "ip"
TABLE = "kvmnet"
# libvirt 9.0 drives iptables; with iptables-nft its chains live here
FOREIGN_TABLE = "filter"
FOREIGN_CHAIN = "FORWARD"
MARK_BIT = 0x00400000
CHAINS = {
    "prerouting": {"type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"},
    "output": {"type": "nat", "hook": "output", "prio": -100, "policy": "accept"},
    "forward": {"type": "filter", "hook": "forward", "prio": -10, "policy": "accept"},
}


# -- rendering ----------------------------------------------------------------
def _match(left, right, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, field: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field}}


def _ports(lo: int, hi: int):
    return lo if lo == hi else {"range": [lo, hi]}


def _prefix(cidr: str):
    addr, _, length = cidr.partition("/")
    return addr if length == "32" else {"prefix": {"addr": addr, "len": int(length)}}


def _common(protocol_field_ports, in_interface, source) -> list[dict]:
    expr = []
    if in_interface is not None:
        expr.append(_match({"meta": {"key": "iifname"}}, in_interface))
    if source is not None:
        expr.append(_match(_payload("ip", "saddr"), _prefix(source)))
    expr.append(protocol_field_ports)
    return expr


_LOCAL = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
_NOT_LOOPBACK = _match(_payload("ip", "daddr"), {"prefix": {"addr": "127.0.0.0", "len": 8}}, "!=")


def _dnat_target(r: DnatRule) -> dict:
    if r.host_lo == r.host_hi:
        return {"dnat": {"family": "ip", "addr": r.to_address, "port": r.to_port}}
    pairs = [[p, r.to_port + (p - r.host_lo)] for p in range(r.host_lo, r.host_hi + 1)]
    return {"dnat": {"family": "ip", "addr": r.to_address, "port": {"map": {
        "key": _payload(r.protocol, "dport"), "data": {"set": pairs}}}}}


def dnat_rule(r: DnatRule) -> dict:
    expr = []
    if r.hook == "output":
        expr.append(_NOT_LOOPBACK)
    expr += _common(_match(_payload(r.protocol, "dport"), _ports(r.host_lo, r.host_hi)),
                    r.in_interface, r.source)
    expr += [_LOCAL, _dnat_target(r)]
    return _rule(r.hook, expr, r.comment)


def accept_rule(r: AcceptRule) -> dict:
    expr = [_match({"ct": {"key": "status"}}, "dnat", "in")]
    expr += _common(_match(_payload(r.protocol, "dport"), _ports(r.to_lo, r.to_hi)),
                    r.in_interface, r.source)
    expr.insert(len(expr) - 1, _match(_payload("ip", "daddr"), r.to_address))
    expr.append({"mangle": {"key": {"meta": {"key": "mark"}},
                            "value": {"|": [{"meta": {"key": "mark"}}, MARK_BIT]}}})
    return _rule("forward", expr, r.comment)


def _rule(chain: str, expr: list, comment: str, table: str = TABLE) -> dict:
    rule = {"family": FAMILY, "table": table, "chain": chain, "expr": expr}
    if comment:
        rule["comment"] = comment
    return rule


def shared_rule() -> dict:
    """The one rule kvmnet puts first in libvirt's ``filter FORWARD`` chain."""
    expr = [_match({"&": [{"meta": {"key": "mark"}}, MARK_BIT]}, MARK_BIT),
            {"counter": None}, {"accept": None}]
    return _rule(FOREIGN_CHAIN, expr, SHARED_RULE_COMMENT, table=FOREIGN_TABLE)


def transaction(forwards: Iterable[Forward], view: "RulesetView") -> dict:
    """One nft JSON transaction that makes kvmnet's rules exactly ``forwards``.

    kvmnet's table is dropped and recreated (``add`` first, so the ``delete`` never
    fails on a missing table); in libvirt's FORWARD chain only kvmnet's own shared
    rule is deleted (by handle) and, while forwards remain, inserted again first.
    """
    forwards = sorted(forwards, key=lambda f: (f.protocol, f.host_lo))
    table = {"family": FAMILY, "name": TABLE}
    cmds: list[dict] = [{"add": {"table": table}}, {"delete": {"table": table}}]
    if forwards:
        cmds.append({"add": {"table": table}})
        for name, spec in CHAINS.items():
            cmds.append({"add": {"chain": {"family": FAMILY, "table": TABLE, "name": name, **spec}}})
        for f in forwards:
            for r in f.rules():
                cmds.append({"add": {"rule": dnat_rule(r) if isinstance(r, DnatRule) else accept_rule(r)}})
    for handle in view.shared_rule_handles:
        cmds.append({"delete": {"rule": {"family": FAMILY, "table": FOREIGN_TABLE,
                                         "chain": FOREIGN_CHAIN, "handle": handle}}})
    if forwards and view.foreign_chain_exists:
        cmds.append({"insert": {"rule": shared_rule()}})
    return {"nftables": cmds}


# -- parsing ------------------------------------------------------------------
class _Unparsed(Exception):
    pass


def _cidr(right) -> str:
    if isinstance(right, str):
        return parse_source(f"{right}/32")
    if isinstance(right, dict) and "prefix" in right:
        return parse_source(f"{right['prefix']['addr']}/{right['prefix']['len']}")
    raise _Unparsed


def _port_range(right) -> tuple[int, int]:
    if isinstance(right, int):
        return right, right
    if isinstance(right, dict) and isinstance(right.get("range"), list):
        lo, hi = right["range"]
        return int(lo), int(hi)
    raise _Unparsed


def _fields(expr: list) -> dict:
    """The conditions and statements of one of kvmnet's rules, by name."""
    out: dict = {}
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
            elif "payload" in left and left["payload"].get("protocol") == "ip":
                field = left["payload"].get("field")
                if field == "saddr" and op == "==":
                    out["source"] = _cidr(right)
                elif field == "daddr" and op == "==" and isinstance(right, str):
                    out["daddr"] = right
                elif field == "daddr" and op == "!=" and _cidr(right) == "127.0.0.0/8":
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
            out["dnat"] = e["dnat"]
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
        pairs = port["map"].get("data", {}).get("set", [])
        mapping = {int(k): int(v) for k, v in pairs}
        base = mapping.get(lo)
        if base is None or mapping != {p: base + (p - lo) for p in range(lo, hi + 1)}:
            raise _Unparsed
        if port["map"].get("key") != _payload(protocol, "dport"):
            raise _Unparsed
        return addr, base
    raise _Unparsed


def parse_rule(chain: str, rule: dict) -> DnatRule | AcceptRule | None:
    """One rule of kvmnet's table as a rule value, or None if kvmnet did not write it so."""
    try:
        f = _fields(rule.get("expr", []))
        if f.get("protocol") not in ("tcp", "udp") or "ports" not in f:
            return None
        lo, hi = f["ports"]
        comment = rule.get("comment", "")
        if chain in ("prerouting", "output"):
            want = {"iif", "source", "protocol", "ports", "local", "dnat"}
            if chain == "output":
                want = (want - {"iif"}) | {"not_loopback"}
            if not f.get("local") or "dnat" not in f or set(f) - want:
                return None
            if chain == "output" and not f.get("not_loopback"):
                return None
            addr, to_port = _dnat_to(f, lo, hi, f["protocol"])
            return DnatRule(chain, f["protocol"], lo, hi, addr, to_port, f.get("iif"),
                            f.get("source"), comment)
        if chain == "forward":
            if set(f) - {"iif", "source", "protocol", "ports", "daddr", "ct_dnat", "sets_mark"}:
                return None
            if not (f.get("ct_dnat") and f.get("sets_mark") and "daddr" in f):
                return None
            return AcceptRule(f["protocol"], f["daddr"], lo, hi, f.get("iif"), f.get("source"), comment)
    except (_Unparsed, KeyError, TypeError, ValueError, Exception):
        return None
    return None


class RulesetView:
    """What kvmnet needs to know from one ``nft -j list ruleset``."""

    def __init__(self, ruleset: dict):
        self.rules: list[DnatRule | AcceptRule] = []
        self.own_items: list[dict] = []                 # kvmnet's table, for snapshots
        self.foreign_chain_exists = False
        self.shared_rule_handles: list[int] = []
        order: list[tuple[bool, bool]] = []
        for item in ruleset.get("nftables", []):
            if "chain" in item:
                c = item["chain"]
                if (c.get("family"), c.get("table"), c.get("name")) == (FAMILY, FOREIGN_TABLE, FOREIGN_CHAIN) \
                        and c.get("hook") == "forward":
                    self.foreign_chain_exists = True
            kind = next((k for k in ("table", "chain", "rule") if k in item), None)
            if kind is None:
                continue
            obj = item[kind]
            if obj.get("family") != FAMILY:
                continue
            table = obj.get("name") if kind == "table" else obj.get("table")
            if table == TABLE:
                self.own_items.append(item)
                if kind == "rule":
                    r = parse_rule(obj.get("chain"), obj)
                    if r is not None:
                        self.rules.append(r)
            elif kind == "rule" and table == FOREIGN_TABLE and obj.get("chain") == FOREIGN_CHAIN:
                comment = obj.get("comment")
                jump = next((e["jump"].get("target") for e in obj.get("expr", []) if "jump" in e), None)
                is_shared = comment == SHARED_RULE_COMMENT
                if is_shared:
                    self.shared_rule_handles.append(obj.get("handle"))
                    self.own_items.append(item)
                order.append((is_kvmnet_rule(comment, jump), is_shared))
        self.shared_rule_first = shared_rule_first(order)

    @property
    def shared_rule_effective(self) -> bool:
        """No libvirt FORWARD chain: nothing to get past. Otherwise our rule must lead it."""
        return (not self.foreign_chain_exists) or self.shared_rule_first
