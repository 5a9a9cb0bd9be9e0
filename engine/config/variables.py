"""Input variables as Terraform has them beyond default and type: ``sensitive``,
``nullable``, ``validation`` blocks, and values from ``KVMNET_VAR_name``
environment variables (Terraform's ``TF_VAR_name``).

Precedence, lowest first (as Terraform's): the default, the environment,
``kvmnet.vars.hcl``, each ``--var-file`` and ``--var``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kvmnet.engine import expr as X
from kvmnet.engine.config.checks import failed, literal_bool, read_rule
from kvmnet.engine.config.hcl import Block
from kvmnet.engine.config.model import VariableDecl
from kvmnet.engine.diagnostics import Diagnostics

ENV_PREFIX = "KVMNET_VAR_"


def read_variable_extras(v: VariableDecl, b: Block, d: Diagnostics) -> None:
    """``sensitive``, ``nullable`` and the ``validation`` blocks of a variable block."""
    owner = f'variable "{v.name}"'
    v.sensitive = literal_bool(b.attrs.get("sensitive"), f"{owner}: sensitive", b.file, d, False)
    v.nullable = literal_bool(b.attrs.get("nullable"), f"{owner}: nullable", b.file, d, True)
    if not v.nullable and v.default is not None and v.default.value is None:
        d.add(f"{owner}: the default cannot be null when nullable is false", file=b.file,
              line=v.default.line)
    for sub in b.blocks:
        if sub.type != "validation":
            continue
        rule = read_rule(sub, owner, d)
        if rule is None:
            continue
        try:
            refs = X.compile_value(rule.condition.value).references()
        except X.ExprError as e:
            d.add(f"{owner}: validation condition: {e}", file=sub.file, line=rule.condition.line)
            continue
        others = sorted({str(r) for r in refs if tuple(r.parts[:2]) != ("var", v.name)})
        mentions_self = any(tuple(r.parts[:2]) == ("var", v.name) for r in refs)
        if others or not mentions_self:
            d.add(f"the validation condition of {owner} can refer only to the variable "
                  f"itself, as var.{v.name}" + (f" (not {', '.join(others)})" if others else ""),
                  file=sub.file, line=rule.condition.line)
            continue
        v.validations.append(rule)


def env_values(declared: Mapping[str, VariableDecl],
               environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(name, raw text) for each ``KVMNET_VAR_name`` naming a declared variable; others
    are ignored, as Terraform ignores a ``TF_VAR_`` it has no variable for."""
    environ = os.environ if environ is None else environ
    out = []
    for key in sorted(environ):
        if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):] in declared:
            out.append((key[len(ENV_PREFIX):], environ[key]))
    return out


def apply_nullable(decl: VariableDecl, value: Any, default: Any, has_default: bool,
                   d: Diagnostics, where: str) -> Any:
    """A null given for a ``nullable = false`` variable takes the default; with no
    default it is an error."""
    if value is not None or decl.nullable:
        return value
    if has_default:
        return default
    d.add(f'variable "{decl.name}" may not be null (nullable = false){where}',
          file=decl.file, line=decl.line)
    return None


def check_input(decl: VariableDecl, value: Any, owner: str) -> None:
    """A module's argument: not null when ``nullable = false`` (no default to take),
    and every ``validation`` block holds; raises ExprError naming the rule."""
    if value is None and not decl.nullable:
        raise X.ExprError(f'variable "{decl.name}" of {owner} may not be null (nullable = false)')
    scope = X.Scope(variables={decl.name: value}, locals={}, resolve_resource=None, resource_types=None)
    for rule in decl.validations:
        diag = failed(rule, scope, f'invalid value for variable "{decl.name}" of {owner}',
                      sensitive=decl.sensitive)
        if diag is not None:
            raise X.ExprError(f"{diag.message} (validation at {diag.file}:{diag.line})")


def validate_values(declared: Mapping[str, VariableDecl], values: Mapping[str, Any],
                    d: Diagnostics) -> None:
    """Run every ``validation`` block against the variable's final value."""
    for name, decl in declared.items():
        if name not in values:
            continue
        scope = X.Scope(variables={name: values[name]}, locals={}, resolve_resource=None,
                        resource_types=None)
        for rule in decl.validations:
            diag = failed(rule, scope, f'invalid value for variable "{name}"', sensitive=decl.sensitive)
            if diag is not None:
                d.items.append(diag)
