"""The ``dummy_file`` type: its schema, defaults, rules and claims."""
from __future__ import annotations

from typing import Iterator

from kvmnet.sdk import Claim, Finding, ResourceType, Subject, known, label_name, show


def check_content(s: Subject) -> Iterator[Finding]:
    """Content is one line (the first line of the file is kvmnet's mark)."""
    content = s.get("content")
    if known(content) and "\n" in content:
        yield Finding("content", f"content = {show(content)} must fit on one line")


def _taken(claim: Claim, _earlier: Claim, other: str) -> str:
    return f"file {show(claim.key)} is already written by {other}"


def claims(s: Subject) -> Iterator[Claim]:
    """Two resources never write one file."""
    name = s.get("name") if s.get("name") is not None else s.inst.name
    if known(name):
        yield Claim("dummy file", name, "name", _taken)


def canonical(a: dict) -> dict:
    if isinstance(a.get("content"), str):
        a["content"] = a["content"].strip()
    return a


DUMMY_FILE = ResourceType(
    name="dummy_file", default_provider="dummy", schema_file=("kvmnet_dummy", "dummy_file.json"),
    replace_on=frozenset({"name"}),
    defaults={"mode": "0644"},
    default_name=label_name,
    canonical=canonical,
    rules=(check_content,),
    claims=claims,
    doctor_layer="dummy",
)
