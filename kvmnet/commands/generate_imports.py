"""``kvmnet plan --generate-config-out FILE``: for each ``import`` block whose ``to``
address the configuration does not declare yet, read the object by its ID and
write its ``resource`` block to FILE (a new ``.hcl`` file in the configuration
directory, as Terraform refuses to overwrite one); the plan then shows the import.
"""
from __future__ import annotations

import os
from pathlib import Path

from kvmnet.cli import Ctx, fail
from kvmnet.commands.common import backend, provider_set

HEADER = ("# Written by kvmnet plan --generate-config-out for the import blocks: review it,\n"
          "# then keep it as part of the configuration.\n\n")


def _target(ctx: Ctx, file: str) -> Path:
    p = Path(file)
    p = p if p.is_absolute() else Path(ctx.dir) / p
    if p.parent.resolve() != Path(ctx.dir).resolve() or not p.name.endswith(".hcl") \
            or p.name.endswith(".vars.hcl"):
        fail(ctx, f"--generate-config-out {file}: give a new .hcl file in the configuration "
                  f"directory {ctx.chdir}, so that the next plan reads it")
    if os.path.lexists(p):
        fail(ctx, f"--generate-config-out {file}: the file already exists; kvmnet writes only a new file")
    return p


def write_import_config(ctx: Ctx, prepared, file: str) -> int:
    """Write the blocks; the number written (0: every import address is declared)."""
    from kvmnet.engine.config.refactoring import parse, is_whole
    from kvmnet.engine.diagnostics import Diagnostics
    from kvmnet.engine.generate import GenerateError, resource_block
    from kvmnet.engine.plan.refactor import import_ids
    from kvmnet.engine.resources import TYPES, canonical
    from kvmnet.sdk.provider import ProviderError
    path = _target(ctx, file)
    diags = Diagnostics()
    ids = import_ids(prepared.config, prepared.evaluator.scope(), backend(ctx).read(), diags)
    if diags:
        fail(ctx, str(diags.errors[0]))
    wanted = {a: i for a, i in ids.items() if a not in prepared.config.resources}
    if not wanted:
        return 0
    blocks = []
    ps = provider_set(ctx, prepared)
    try:
        for address, live_id in sorted(wanted.items()):
            a = parse(address)
            assert a is not None and a.type is not None and a.name is not None
            decl = next(i for i in prepared.config.imports if i.to_addr == address)
            if not is_whole(a) or a.module:
                fail(ctx, f"{decl.file}:{decl.line}: import: cannot generate a block for {address}: "
                          "as in Terraform, --generate-config-out writes blocks only for root-module "
                          "resources without count or for_each; write this resource block yourself")
            t = TYPES[a.type]
            obj = ps.get(t.default_provider).import_object(a.type, live_id)
            if obj is None:
                fail(ctx, f"{decl.file}:{decl.line}: import: no {a.type} with ID {live_id!r} exists")
            blocks.append(resource_block(t, a.name, canonical(a.type, obj.attrs)))
    except ProviderError as e:
        fail(ctx, str(e))
    except GenerateError as e:
        fail(ctx, f"cannot write the configuration: {e}")
    finally:
        ps.close()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n".join(blocks))
    ctx.err(f"Wrote the configuration of {len(blocks)} imported resource"
            f"{'s' if len(blocks) != 1 else ''} to {path}: review it.")
    return len(blocks)
