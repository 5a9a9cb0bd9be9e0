"""Loading ``module`` blocks and provider ``alias`` (structure only; nothing is
evaluated here: :mod:`kvmnet.engine.config.modules` expands them)."""
from __future__ import annotations

from typing import Any

from kvmnet.engine.config.declared import is_new
from kvmnet.engine.config.hcl import Block
from kvmnet.engine.config.model import Config, ModuleCallDecl
from kvmnet.engine.diagnostics import Diagnostics

META = ("source", "count", "for_each", "providers", "depends_on")


def _is_name(text: str) -> bool:
    return bool(text) and text.replace("_", "a").replace("-", "a").isalnum() and not text[0].isdigit()


def load_module_call(cfg: Config, b: Block, d: Diagnostics) -> None:
    """A ``module`` block → ``cfg.modules[NAME]`` (structure only, nothing evaluated)."""
    if len(b.labels) != 1:
        d.add('a "module" block needs 1 label(s): module "NAME"', file=b.file, line=b.line)
        return
    name = b.labels[0]
    if not is_new(cfg.modules, name, f'module "{name}" is defined twice', b, d):
        return
    src = b.attrs.get("source")
    if src is None:
        d.add(f'module "{name}" needs a "source" attribute (a local path such as "./modules/NAME")',
              file=b.file, line=b.line)
        return
    if not isinstance(src.value, str) or "${" in src.value or "%{" in src.value:
        d.add(f'module "{name}": "source" must be a literal string', file=b.file, line=src.line,
              attribute="source")
        return
    if not src.value.startswith(("./", "../")):
        d.add(f'module "{name}": source {src.value!r} is not a local path; kvmnet reads modules '
              'from local directories only ("./..." or "../...")', file=b.file, line=src.line,
              attribute="source")
        return
    call = ModuleCallDecl(name, b.file, b.line, src.value)
    for k, a in b.attrs.items():
        if k == "source":
            continue
        if k == "version":
            d.add(f'module "{name}": "version" applies to registry modules; a local module has none',
                  file=b.file, line=a.line, attribute=k)
        elif k in META:
            setattr(call, k, a)
        else:
            call.inputs[k] = a
    if call.count is not None and call.for_each is not None:
        d.add('"count" and "for_each" cannot both be set', file=b.file, line=call.for_each.line,
              address=f"module.{name}")
    for sub in b.blocks:
        d.add(f'unexpected block "{sub.type}" in module "{name}"', file=b.file, line=sub.line)
    cfg.modules[name] = call


def provider_alias(b: Block, d: Diagnostics) -> str | None:
    """The ``alias`` of a provider block (a literal name), or None; removes it from
    the block's attributes (it is not the provider's configuration)."""
    a = b.attrs.pop("alias", None)
    if a is None:
        return None
    v = a.value
    if not isinstance(v, str) or not _is_name(v):
        d.add(f'provider "{b.labels[0]}": alias must be a literal name (letters, digits, _ and -)',
              file=b.file, line=a.line, attribute="alias")
        return None
    return v


def provider_reference(raw: Any) -> str | None:
    """``libvirt.kvm02`` from ``${libvirt.kvm02}``, ``"libvirt.kvm02"`` or ``libvirt``."""
    if not isinstance(raw, str):
        return None
    v = raw.strip()
    if v.startswith("${") and v.endswith("}"):
        v = v[2:-1].strip()
    parts = v.split(".")
    if len(parts) not in (1, 2) or not all(_is_name(p) for p in parts):
        return None
    return v
