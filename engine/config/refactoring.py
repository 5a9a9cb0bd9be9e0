"""``moved``, ``removed`` and ``import`` blocks (as Terraform/OpenTofu's): read from
the config and checked against its resources. What they do to a plan is in
engine/plan/refactor.py.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from kvmnet.engine.config.hcl import Attr, Block
from kvmnet.engine.config.model import Config, ImportDecl, MovedDecl, RemovedDecl
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.resources import TYPES

REFACTORING_BLOCKS = ("moved", "removed", "import")

_ADDRESS = re.compile(
    r'(?P<prefix>(?:module\.[A-Za-z_][\w-]*(?:\[(?:\d+|"(?:[^"\\]|\\.)*")\])?\.)*)'
    r'(?P<type>[A-Za-z_][\w-]*)\.(?P<name>[A-Za-z_][\w-]*)'
    r'(?:\[(?P<key>\d+|"(?:[^"\\]|\\.)*")\])?\Z')


@dataclass(frozen=True)
class Address:
    """A resource (``key`` None, ``whole``) or instance address, as the state writes it."""

    prefix: str
    type: str
    name: str
    key: int | str | None
    whole: bool

    @property
    def resource(self) -> str:
        return f"{self.prefix}{self.type}.{self.name}"

    def with_key(self, key) -> str:
        if key is None:
            return self.resource
        return self.resource + (f"[{key}]" if isinstance(key, int) else f"[{json.dumps(key)}]")

    def __str__(self) -> str:
        return self.resource if self.whole else self.with_key(self.key)


def parse_address(text: str) -> Address | None:
    """``network.lab``, ``network.t[0]``, ``network.v["a"]``, ``module.m.network.lab``."""
    m = _ADDRESS.match(text.strip())
    if m is None:
        return None
    key = m.group("key")
    parsed = None if key is None else (int(key) if key.isdigit() else json.loads(key))
    return Address(m.group("prefix"), m.group("type"), m.group("name"), parsed, key is None)


def _address_of(a: Attr | None, what: str, b: Block, d: Diagnostics) -> Address | None:
    if a is None:
        d.add(f'a {b.type} block needs "{what}"', file=b.file, line=b.line)
        return None
    text = a.value
    if isinstance(text, str) and text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    addr = parse_address(text) if isinstance(text, str) else None
    if addr is None or addr.type not in TYPES:
        d.add(f"{b.type}.{what}: {a.value!r} is not a resource address (TYPE.NAME or "
              "TYPE.NAME[KEY])", file=b.file, line=a.line)
        return None
    return addr


def _only(b: Block, attrs: tuple, blocks: tuple, d: Diagnostics) -> bool:
    ok = True
    for k, a in b.attrs.items():
        if k not in attrs:
            d.add(f'unknown attribute "{k}" in {b.type} block; expected {", ".join(attrs)}',
                  file=b.file, line=a.line)
            ok = False
    for sub in b.blocks:
        if sub.type not in blocks:
            d.add(f'unexpected block "{sub.type}" in {b.type} block', file=b.file, line=sub.line)
            ok = False
    return ok


def load_refactoring(cfg: Config, b: Block, d: Diagnostics) -> None:
    if b.type == "moved":
        ok = _only(b, ("from", "to"), (), d)
        src, dst = _address_of(b.attrs.get("from"), "from", b, d), _address_of(b.attrs.get("to"), "to", b, d)
        if ok and src and dst:
            cfg.moved.append(MovedDecl(str(src), str(dst), b.file, b.line))
    elif b.type == "removed":
        ok = _only(b, ("from",), ("lifecycle",), d)
        for lc in b.blocks:
            if lc.type != "lifecycle":
                continue
            for k, a in lc.attrs.items():
                if k != "destroy":
                    d.add(f'unknown attribute "{k}" in removed.lifecycle', file=b.file, line=a.line)
                    ok = False
                elif a.value is not False:
                    d.add("removed.lifecycle.destroy: kvmnet's removed block only forgets the "
                          "object (destroy = false); to destroy it, delete its resource block",
                          file=b.file, line=a.line)
                    ok = False
        src = _address_of(b.attrs.get("from"), "from", b, d)
        if ok and src:
            cfg.removed.append(RemovedDecl(str(src), b.file, b.line))
    else:
        ok = _only(b, ("to", "id"), (), d)
        dst = _address_of(b.attrs.get("to"), "to", b, d)
        if "id" not in b.attrs:
            d.add('an import block needs "id"', file=b.file, line=b.line)
            ok = False
        if ok and dst:
            cfg.imports.append(ImportDecl(str(dst), b.attrs["id"], b.file, b.line))


def check_refactoring(cfg: Config, d: Diagnostics) -> None:
    """What the blocks may name: a moved or removed ``from`` is no longer declared, a
    move keeps the resource type, an address is imported once."""
    for m in cfg.moved:
        src, dst = parse_address(m.from_addr), parse_address(m.to_addr)
        assert src is not None and dst is not None
        if src.type != dst.type:
            d.add(f"moved: {m.from_addr} and {m.to_addr} are of different types; an object "
                  "keeps its type", file=m.file, line=m.line)
        elif str(src) == str(dst):
            d.add(f"moved: from and to are the same address ({m.from_addr})", file=m.file, line=m.line)
        elif src.whole and src.resource in cfg.resources and src.resource != dst.resource:
            first = cfg.resources[src.resource]
            d.add(f"moved: {src.resource} is still declared ({first.file}:{first.line}); "
                  "a moved block's from must be gone from the configuration",
                  file=m.file, line=m.line)
    for r in cfg.removed:
        src = parse_address(r.from_addr)
        assert src is not None
        if src.resource in cfg.resources:
            first = cfg.resources[src.resource]
            d.add(f"removed: {src.resource} is still declared ({first.file}:{first.line}); "
                  "remove its resource block too", file=r.file, line=r.line)
    seen: dict[str, ImportDecl] = {}
    for i in cfg.imports:
        if i.to_addr in seen:
            d.add(f"import: {i.to_addr} is imported twice (first at "
                  f"{seen[i.to_addr].file}:{seen[i.to_addr].line})", file=i.file, line=i.line)
        seen[i.to_addr] = i
