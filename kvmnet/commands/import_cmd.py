"""``kvmnet import --generate-config FILE``: adopt live objects and write their config.

One object (``ADDRESS ID``) or every importable object of some types
(``--all-networks``, ``--all-nics``, ``--all TYPE``): each is read through its
type's default provider, its ``resource`` block is generated from the canonical
attributes (:mod:`kvmnet.engine.generate`) and appended to FILE, and it is put in
the state, so the next plan shows no change. Everything is checked before
anything is written: a bad address or ID, an address already declared in the
configuration or in FILE, a missing provider block, an object that does not exist.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kvmnet.cli import Ctx, fail
from kvmnet.commands.common import backend, locked, prepare_or_fail, provider_set

# the convenience flags and the type each stands for (``--all TYPE`` names any)
ALL_FLAGS = {"all_networks": "network", "all_nics": "nic_attachment"}
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass
class Adopted:
    address: str
    rtype: str
    label: str
    id: str
    attrs: dict          # canonical, as read
    private: dict


def target_path(ctx: Ctx, file: str) -> Path:
    """FILE, relative to the config directory (``-C``) unless absolute."""
    p = Path(file)
    return p if p.is_absolute() else Path(ctx.dir) / p


def declared_in(ctx: Ctx, path: Path) -> dict[str, int]:
    """The resource addresses FILE already declares, with their lines ({} when it
    does not exist)."""
    from kvmnet.engine.config.hcl import parse_text
    if not path.parent.is_dir():
        fail(ctx, f"cannot write {path} (directory {path.parent} does not exist)")
    if path.exists() and not path.is_file():
        fail(ctx, f"cannot write {path} (not a regular file)")
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(ctx, f"cannot read {path} ({e})")
    parsed = parse_text(text, str(path))
    if parsed.errors:
        first = parsed.errors[0]
        fail(ctx, f"{path} does not parse (line {first.line}): {first.message}; "
                  "nothing was appended to it")
    return {f"{b.labels[0]}.{b.labels[1]}": b.line for b in parsed.blocks
            if b.type == "resource" and len(b.labels) == 2}


def _split_address(ctx: Ctx, address: str, types) -> tuple[str, str]:
    if address.startswith("module."):
        fail(ctx, f"{address!r} is inside a module: --generate-config writes root-module resource "
                  "blocks; declare the resource in the module and import without --generate-config")
    rtype, dot, label = address.partition(".")
    if not dot or not _LABEL.match(label):
        fail(ctx, f"{address!r} is not a resource address: write TYPE.NAME with NAME matching "
                  "[a-zA-Z_][a-zA-Z0-9_-]* (no count or for_each index)")
    if rtype not in types:
        fail(ctx, f"unknown resource type {rtype!r} in {address!r}; known: {', '.join(sorted(types))}")
    return rtype, label


def run(ctx: Ctx, file: str, address: str | None, id_: str | None, all_types: list[str]) -> None:
    """The whole command; every check before any write."""
    from kvmnet.engine.generate import GenerateError, labels_for, resource_block
    from kvmnet.engine.resources import TYPES, canonical, identity, import_id_problem
    from kvmnet.sdk.provider import ProviderError
    from kvmnet.state import EXCLUSIVE, InstanceRecord

    path = target_path(ctx, file)
    single: tuple[str, str] | None = None
    if address is not None:
        assert id_ is not None
        single = _split_address(ctx, address, TYPES)
        problem = import_id_problem(single[0], id_)
        if problem:
            fail(ctx, f"{problem}, not {id_!r}")
    for t in all_types:
        if t not in TYPES:
            fail(ctx, f"unknown resource type {t!r} for --all; known: {', '.join(sorted(TYPES))}")
    prepared = prepare_or_fail(ctx)
    in_file = declared_in(ctx, path)
    if address is not None:
        decl = prepared.config.resources.get(address)
        if decl is not None:
            fail(ctx, f"{address} is already declared in {decl.file} at line {decl.line}; "
                      "import without --generate-config to adopt an object into it")
        if address in in_file:
            fail(ctx, f"{address} is already declared in {path} at line {in_file[address]}; "
                      "nothing was appended to it")
    types = [single[0]] if single else list(dict.fromkeys(all_types))
    providers = {t: TYPES[t].default_provider for t in types}
    for t, p in providers.items():
        if p not in prepared.config.providers:
            fail(ctx, f'no provider "{p}" block in the configuration: add one (e.g. provider "{p}" {{}}) '
                      f"so kvmnet knows where to find the {t} to import")

    be = backend(ctx)
    with locked(ctx, be, EXCLUSIVE):
        snap = be.read()
        managed = {(r.type, r.id) for r in snap.instances.values()}
        if address is not None and address in snap.instances:
            fail(ctx, f"{address} is already managed (id {snap.instances[address].id}); "
                      "use kvmnet state rm first to re-import")
        found: dict[str, dict] = {}        # type -> {id: LiveObject}
        ps = provider_set(ctx, prepared)
        try:
            for t in types:
                prov = ps.get(providers[t])
                if single is not None:
                    assert id_ is not None
                    obj = prov.import_object(t, id_)
                    if obj is None:
                        fail(ctx, f"no {t} with ID {id_!r} exists to import")
                    found[t] = {id_: obj}
                else:
                    ids = [i for i in prov.importable(t) if (t, i) not in managed]
                    live = prov.read(t, ids) if ids else {}
                    found[t] = {i: live[i] for i in ids if i in live}
        except ProviderError as e:
            fail(ctx, str(e))
        finally:
            ps.close()

        adopted: list[Adopted] = []
        for t in types:
            objs = found[t]
            if single is not None:
                labels = {next(iter(objs)): single[1]}
            else:
                taken = {r.name for a, r in prepared.config.resources.items() if r.type == t}
                taken |= {a.partition(".")[2] for a in in_file if a.startswith(t + ".")}
                taken |= {r.name for r in snap.instances.values() if r.type == t}
                labels = labels_for(objs, taken)
            for i, obj in sorted(objs.items()):
                attrs = canonical(t, obj.attrs)
                oid = identity(t, attrs) or obj.id
                if (t, oid) in managed:
                    owner = next(a for a, r in snap.instances.items() if (r.type, r.id) == (t, oid))
                    fail(ctx, f"{t} {oid!r} is already managed as {owner}")
                adopted.append(Adopted(f"{t}.{labels[i]}", t, labels[i], oid, attrs, obj.private or {}))
        if not adopted:
            ctx.out("Nothing to import: every object of "
                    f"{', '.join(types)} is already managed or none exists; {path} was not changed.")
            return
        try:
            text = "\n".join(resource_block(TYPES[a.rtype], a.label, a.attrs) for a in adopted)
        except GenerateError as e:
            fail(ctx, f"cannot write the configuration: {e}")

        before = _append(ctx, path, text)
        try:
            with be.transaction() as w:
                for a in adopted:
                    w.put(InstanceRecord(address=a.address, type=a.rtype, name=a.label, key=None,
                                         provider=providers[a.rtype], id=a.id, attrs=a.attrs,
                                         private=a.private, dependencies=[]))
        except BaseException:
            _restore(path, before)
            raise
    for a in adopted:
        ctx.out(f"[green]Import successful![/] {a.address} now manages {a.rtype} {a.id!r}.")
    ctx.out(f"Wrote the configuration of {len(adopted)} resource{'s' if len(adopted) != 1 else ''} "
            f"to {path}; run kvmnet plan to check that it shows no change.")


def _append(ctx: Ctx, path: Path, text: str) -> bytes | None:
    """Append ``text`` to FILE (atomically: a new file renamed over it); the old
    bytes (None when it did not exist) for :func:`_restore`."""
    before = path.read_bytes() if path.exists() else None
    old = (before or b"").decode("utf-8")
    if old.strip():
        old = old.rstrip("\n") + "\n\n"
    else:
        old = ""
    tmp = path.with_name(f".{path.name}.kvmnet-tmp")
    try:
        tmp.write_text(old + text, encoding="utf-8")
        if before is not None:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        fail(ctx, f"cannot write {path} ({e.strerror or e})")
    return before


def _restore(path: Path, before: bytes | None) -> None:
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)
