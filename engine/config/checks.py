"""Custom conditions: ``validation`` blocks of variables, ``precondition`` and
``postcondition`` blocks of a resource's ``lifecycle`` (as Terraform's).

Reading a block gives a :class:`CheckRule`; :func:`failed` evaluates one against a
scope and says why it failed (or None: it holds, or is not known yet).
"""
from __future__ import annotations

from kvmnet.engine import expr as X
from kvmnet.engine.config.hcl import Attr, Block
from kvmnet.engine.config.model import CheckRule
from kvmnet.engine.diagnostics import Diagnostic, Diagnostics
from kvmnet.sdk.values import UNKNOWN, contains_unknown

RULE_ATTRS = ("condition", "error_message")


def read_rule(b: Block, owner: str, d: Diagnostics, address: str | None = None) -> CheckRule | None:
    """A check block → CheckRule; both attributes are required and nothing else is allowed."""
    ok = True
    for k, a in b.attrs.items():
        if k not in RULE_ATTRS:
            d.add(f'unknown attribute "{k}" in {b.type} block of {owner}; expected condition '
                  "and error_message", file=b.file, line=a.line, address=address)
            ok = False
    for sub in b.blocks:
        d.add(f'unexpected block "{sub.type}" in {b.type} block of {owner}', file=b.file,
              line=sub.line, address=address)
        ok = False
    for k in RULE_ATTRS:
        if k not in b.attrs:
            d.add(f'{b.type} block of {owner} needs "{k}"', file=b.file, line=b.line, address=address)
            ok = False
    if not ok:
        return None
    return CheckRule(b.type, b.attrs["condition"], b.attrs["error_message"], b.file, b.line)


def literal_bool(a: Attr | None, what: str, file: str, d: Diagnostics, default: bool) -> bool:
    """A meta-argument that must be the literal true or false (``sensitive``, ``nullable``)."""
    if a is None:
        return default
    if not isinstance(a.value, bool):
        d.add(f"{what} must be true or false (a literal)", file=file, line=a.line)
        return default
    return a.value


def failed(rule: CheckRule, scope: X.Scope, label: str,
           address: str | None = None, sensitive: bool = False) -> Diagnostic | None:
    """Why ``rule`` fails in ``scope`` (``label: error message``, at FILE:LINE of its
    condition), or None when it holds or is known only after apply."""
    what = f"{rule.kind} condition"
    def diag(message: str, attr: Attr) -> Diagnostic:
        return Diagnostic(message, file=rule.file, line=attr.line, address=address)

    try:
        ok = X.compile_value(rule.condition.value).evaluate(scope)
    except X.ExprError as e:
        return diag(f"invalid {what}: {e}", rule.condition)
    if ok is UNKNOWN or contains_unknown(ok):
        return None
    if ok is None:
        return diag(f"invalid {what}: the condition is null; it must be true or false",
                    rule.condition)
    try:
        ok = X.convert(ok, "bool")
    except X.ExprError:
        return diag(f"invalid {what}: the condition must be true or false, not {ok!r}",
                    rule.condition)
    if ok:
        return None
    try:
        message = X.compile_value(rule.error_message.value).evaluate(scope)
    except X.ExprError as e:
        return diag(f"invalid error_message: {e}", rule.error_message)
    if message is UNKNOWN or contains_unknown(message):
        message = "(error message known only after apply)"
    elif sensitive and _reads_variables(rule.error_message):
        message = "(the error message reads a sensitive value, so it is not shown)"
    elif not isinstance(message, str):
        return diag("error_message must be a string", rule.error_message)
    return diag(f"{label}: {message}", rule.condition)


def failed_self(rule: CheckRule, scope: X.Scope, value: dict) -> Diagnostic | None:
    """A postcondition checked with ``self`` bound to the applied object's attributes."""
    child = scope.child_loop()
    assert child.loop is not None
    child.loop["self"] = value
    return failed(rule, child, "postcondition failed")


def _reads_variables(a: Attr) -> bool:
    try:
        return any(ref.root == "var" for ref in X.compile_value(a.value).references())
    except X.ExprError:
        return True
