"""The semantic rules of an instance (run after the schema pass): that its
provider serves its type, then the rules its type declares."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from kvmnet.engine.registry import resource_types
from kvmnet.sdk.rules import Finding, Subject, show

if TYPE_CHECKING:
    from kvmnet.sdk.types import ResourceType


def check_provider_serves_type(s: Subject, rtype: ResourceType) -> Iterator[Finding]:
    """The instance's provider is one that serves its type."""
    if not s.inst.provider:
        return
    if s.provider_type not in rtype.providers:
        yield Finding("provider", f"provider {show(s.inst.provider)} does not serve {s.inst.type} resources; "
                                  f"use one of: {', '.join(rtype.providers)}")


def semantic_findings(s: Subject) -> Iterator[Finding]:
    rtype = resource_types().get(s.inst.type)
    if rtype is None:
        return
    yield from check_provider_serves_type(s, rtype)
    for rule in rtype.rules:
        yield from rule(s)
