"""The semantic rules of an instance (run after the schema pass): that its
provider serves its type, then the rules its type declares."""
from __future__ import annotations

from typing import Iterator

from kvmnet.engine.resources import TYPES
from kvmnet.sdk.rules import Finding, Subject, show


def check_provider_serves_type(s: Subject) -> Iterator[Finding]:
    """The instance's provider is one that serves its type."""
    rtype = TYPES.get(s.inst.type)
    if rtype is None or not s.inst.provider:
        return
    if s.provider_type not in rtype.providers:
        yield Finding("provider", f"provider {show(s.inst.provider)} does not serve {s.inst.type} resources; "
                                  f"use one of: {', '.join(rtype.providers)}")


def semantic_findings(s: Subject) -> Iterator[Finding]:
    yield from check_provider_serves_type(s)
    rtype = TYPES.get(s.inst.type)
    for rule in rtype.rules if rtype is not None else ():
        yield from rule(s)
