"""``moved``, ``removed`` and ``import`` blocks (as Terraform/OpenTofu's): read from
the config and checked against its resources. What they do to a plan is in
engine/plan/refactor.py.
"""
from __future__ import annotations

from kvmnet.engine.config.hcl import Attr, Block
from kvmnet.engine.config.model import (
    Config, ImportDecl, ModuleCallDecl, MovedDecl, RemovedDecl, ResourceDecl,
)
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.resources import TYPES
from kvmnet.sdk.addresses import Address, format_key, parse_address

REFACTORING_BLOCKS = ("moved", "removed", "import")


def parse(text: str) -> Address | None:
    """A resource, instance or module address (kvmnet.sdk.addresses), or None."""
    try:
        a = parse_address(text.strip())
    except ValueError:
        return None
    return a if a.type is None or a.type in TYPES else None


def render(a: Address) -> str:
    """The address as the state writes it."""
    if a.type is None:
        return a.module_path
    return a.resource + format_key(a.key)


def with_key(a: Address, key) -> str:
    """The instance ``key`` of resource ``a``."""
    return a.resource + format_key(key)


def is_whole(a: Address) -> bool:
    """A whole resource or a module call without a key (every instance moves)."""
    return a.key is None if a.type is not None else a.module[-1][1] is None


def _address_of(a: Attr | None, what: str, b: Block, d: Diagnostics, *,
                module_ok: bool = True) -> Address | None:
    if a is None:
        d.add(f'a {b.type} block needs "{what}"', file=b.file, line=b.line)
        return None
    text = a.value
    if isinstance(text, str) and text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    addr = parse(text) if isinstance(text, str) else None
    if addr is None or (addr.type is None and not module_ok):
        kinds = "TYPE.NAME, TYPE.NAME[KEY] or module.NAME" if module_ok else "TYPE.NAME or TYPE.NAME[KEY]"
        d.add(f"{b.type}.{what}: {a.value!r} is not a resource address ({kinds})",
              file=b.file, line=a.line)
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
            cfg.moved.append(MovedDecl(render(src), render(dst), b.file, b.line))
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
            cfg.removed.append(RemovedDecl(render(src), b.file, b.line))
    else:
        ok = _only(b, ("to", "id"), (), d)
        dst = _address_of(b.attrs.get("to"), "to", b, d, module_ok=False)
        if "id" not in b.attrs:
            d.add('an import block needs "id"', file=b.file, line=b.line)
            ok = False
        if ok and dst:
            cfg.imports.append(ImportDecl(render(dst), b.attrs["id"], b.file, b.line))


def check_refactoring(cfg: Config, d: Diagnostics) -> None:
    """What the blocks may name: a moved or removed ``from`` is no longer declared
    (checked for this module's own resources and calls), a move keeps the resource
    type (or moves a module to a module), an address is imported once."""
    for m in cfg.moved:
        src, dst = parse(m.from_addr), parse(m.to_addr)
        assert src is not None and dst is not None
        if (src.type is None) != (dst.type is None):
            d.add(f"moved: {m.from_addr} and {m.to_addr} are not both modules or both resources",
                  file=m.file, line=m.line)
        elif src.type != dst.type:
            d.add(f"moved: {m.from_addr} and {m.to_addr} are of different types; an object "
                  "keeps its type", file=m.file, line=m.line)
        elif m.from_addr == m.to_addr:
            d.add(f"moved: from and to are the same address ({m.from_addr})", file=m.file, line=m.line)
        else:
            _still_declared(cfg, src, dst, "moved", m, d)
    for r in cfg.removed:
        src = parse(r.from_addr)
        assert src is not None
        _still_declared(cfg, src, None, "removed", r, d)
    seen: dict[str, ImportDecl] = {}
    for i in cfg.imports:
        if i.to_addr in seen:
            d.add(f"import: {i.to_addr} is imported twice (first at "
                  f"{seen[i.to_addr].file}:{seen[i.to_addr].line})", file=i.file, line=i.line)
        seen[i.to_addr] = i


def _still_declared(cfg: Config, src: Address, dst: Address | None, what: str, blk, d: Diagnostics) -> None:
    """A whole resource or module call of this configuration named by ``from``
    while still declared here (adding or dropping ``count`` keeps the name: allowed)."""
    if not is_whole(src):
        return
    decl: ResourceDecl | ModuleCallDecl | None
    if src.type is not None and not src.module:
        if dst is not None and dst.type is not None and dst.resource == src.resource:
            return
        decl, name = cfg.resources.get(src.resource), src.resource
    elif src.type is None and len(src.module) == 1:
        if dst is not None and dst.type is None and dst.module[0][0] == src.module[0][0]:
            return
        decl, name = cfg.modules.get(src.module[0][0]), src.module_path
    else:
        return
    if decl is None:
        return
    fix = "remove its resource block too" if what == "removed" else \
        "a moved block's from must be gone from the configuration"
    d.add(f"{what}: {name} is still declared ({decl.file}:{decl.line}); {fix}",
          file=blk.file, line=blk.line)
