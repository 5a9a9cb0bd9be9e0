"""The attributes of the ``kvmnet { ... }`` block (Terraform's ``terraform {}``):
``required_version``, the kvmnet versions this configuration needs (an agent older
than that refuses the commit). Its ``backend`` blocks are engine/backend_block.py's."""
from __future__ import annotations

from kvmnet.engine.config.hcl import Block
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.fleet.versions import BadConstraint, parse_constraint


def load_settings(cfg, b: Block, d: Diagnostics) -> None:
    """Read ``required_version`` of one ``kvmnet`` block into ``cfg`` (other
    attributes are reported by engine/backend_block.py)."""
    a = b.attrs.get("required_version")
    if a is None:
        return
    if cfg.settings_at:
        d.add(f"kvmnet.required_version is set twice (first in {cfg.settings_at})", file=b.file, line=a.line)
        return
    cfg.settings_at = f"{b.file}:{a.line}"
    if not isinstance(a.value, str) or "${" in a.value:
        d.add("kvmnet.required_version must be a literal string", file=b.file, line=a.line)
        return
    try:
        parse_constraint(a.value)
    except BadConstraint as e:
        d.add(f"kvmnet.required_version: {e}", file=b.file, line=a.line)
        return
    cfg.required_version = a.value
