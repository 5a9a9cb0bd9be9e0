"""Validation of the desired configuration (SPEC §4), before anything is touched.

Two passes over every instance, then one over all of them:

1. the schema pass (:mod:`.schema`): types, required and unknown attributes, enums
   and ranges, from the JSON Schema the type's provider ships;
2. the semantic rules of the instance's type (:mod:`.semantic`), which see the
   values that failed the schema (and those known only after apply) as UNKNOWN and
   skip them;
3. the cross-instance rules (:mod:`.cross_rules`): the claims, offers and lookups
   the types declare.

Every problem found becomes a :class:`~kvmnet.engine.diagnostics.Diagnostic` with
the file, the line of the offending attribute, the address and the attribute path;
one run reports all of them.

Public API: :func:`validate_instances` (everything), or, for a caller that checks
each instance as soon as it is expanded, :func:`validate_instance` per instance and
then :func:`validate_across` once for the cross-instance rules. A
:class:`Validation` does the same two steps but keeps what the first learned about
each instance (its schema result, subnet, gateway) for the second.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kvmnet.engine.diagnostics import Diagnostic, Diagnostics
from kvmnet.engine.model import ResourceInstance
from kvmnet.sdk.rules import Finding, Subject
from kvmnet.sdk.values import UNKNOWN

from .cross_rules import cross_findings
from .schema import check_schema
from .semantic import semantic_findings

__all__ = ["validate_instances", "validate_instance", "validate_across", "Validation"]


def validate_instances(instances: Iterable[ResourceInstance],
                       scopes: Mapping[str, object] | None = None) -> Diagnostics:
    """Every validation error of a whole configuration's instances.

    ``scopes`` optionally maps a provider instance name to the place its objects
    live (a netns name, a libvirt URI); objects in different scopes never clash in
    the cross-instance rules. By default all providers share one scope (the host).
    """
    diags = Diagnostics()
    subjects = []
    for order, inst in enumerate(instances):
        subject = _check_one(inst, order, diags)
        subjects.append(subject)
    for subject, finding in cross_findings(subjects, scopes):
        diags.items.append(_diagnostic(subject.inst, finding))
    diags.items.sort(key=lambda d: (d.file or "", d.line or 0))
    return diags


def validate_instance(inst: ResourceInstance) -> Diagnostics:
    """The errors of one instance alone (no cross-instance rules)."""
    diags = Diagnostics()
    _check_one(inst, 0, diags)
    return diags


def validate_across(instances: Iterable[ResourceInstance],
                    scopes: Mapping[str, object] | None = None) -> Diagnostics:
    """Only the cross-instance rules (values that fail an instance's own schema are
    skipped, as in :func:`validate_instances`)."""
    return _across([_subject(inst, order) for order, inst in enumerate(instances)], scopes)


class Validation:
    """:func:`validate_instance` per instance, then :func:`validate_across` once,
    with each instance checked against its schema once and its derived facts (a
    network's subnet and gateway) computed once for both steps."""

    def __init__(self) -> None:
        self._subjects: dict[int, Subject] = {}

    def instance(self, inst: ResourceInstance) -> Diagnostics:
        """The errors of one instance alone (as :func:`validate_instance`)."""
        diags = Diagnostics()
        self._subjects[id(inst)] = _check_one(inst, 0, diags)
        return diags

    def across(self, instances: Iterable[ResourceInstance],
               scopes: Mapping[str, object] | None = None) -> Diagnostics:
        """The cross-instance rules (as :func:`validate_across`)."""
        subjects = []
        for order, inst in enumerate(instances):
            subject = self._subjects.get(id(inst))
            if subject is None or subject.inst is not inst:
                subject = _subject(inst, order)
            else:
                subject.order = order
            subjects.append(subject)
        return _across(subjects, scopes)


def _subject(inst: ResourceInstance, order: int) -> Subject:
    attrs = inst.attrs or {}
    return Subject(inst, _mark_unknown(attrs, check_schema(inst.type, attrs).bad_paths), order)


def _across(subjects: list[Subject], scopes: Mapping[str, object] | None) -> Diagnostics:
    diags = Diagnostics()
    for subject, finding in cross_findings(subjects, scopes):
        diags.items.append(_diagnostic(subject.inst, finding))
    diags.items.sort(key=lambda d: (d.file or "", d.line or 0))
    return diags


def _check_one(inst: ResourceInstance, order: int, diags: Diagnostics) -> Subject:
    attrs = inst.attrs or {}
    result = check_schema(inst.type, attrs)
    for finding in result.findings:
        diags.items.append(_diagnostic(inst, finding))
    subject = Subject(inst, _mark_unknown(attrs, result.bad_paths), order)
    for finding in semantic_findings(subject):
        diags.items.append(_diagnostic(inst, finding))
    return subject


def _diagnostic(inst: ResourceInstance, finding: Finding) -> Diagnostic:
    return Diagnostic(
        finding.message,
        file=inst.pos.file if inst.pos else None,
        line=inst.line_of(finding.path),
        address=inst.address,
        attribute=finding.path or None,
    )


def _mark_unknown(attrs: dict, paths: list[tuple]) -> dict:
    """A copy of ``attrs`` with the value at each path replaced by UNKNOWN (copying
    only the containers along each path); ``attrs`` itself when there are none."""
    if not paths:
        return attrs
    root = dict(attrs)
    for path in paths:
        node: Any = root
        for key in path[:-1]:
            child = node[key]
            child = dict(child) if isinstance(child, dict) else list(child)
            node[key] = child
            node = child
        if path:
            node[path[-1]] = UNKNOWN
        else:
            return {}
    return root
