"""The resource types of this run, as the provider plugins define them.

The engine knows no type of its own: :data:`TYPES` maps each type name to the
:class:`kvmnet.sdk.ResourceType` a plugin registered (see :mod:`.registry`), read
on first use. Desired attributes (from config) and live attributes (from a
provider's read) both pass through :func:`canonical`, so the diff compares like
with like.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Mapping, overload

from . import registry

if TYPE_CHECKING:
    from kvmnet.sdk.types import ResourceType


class _Types(Mapping[str, "ResourceType"]):
    """A read-only view of the registry's types, discovered on first access."""

    def __getitem__(self, name: str) -> ResourceType:
        return registry.resource_types()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(registry.resource_types())

    def __len__(self) -> int:
        return len(registry.resource_types())

    def __contains__(self, name: object) -> bool:
        return name in registry.resource_types()

    def get(self, name: str, default=None):   # the hot path of validation: no try/except
        return registry.resource_types().get(name, default)


TYPES: Mapping[str, ResourceType] = _Types()


def with_defaults(rtype: str, label: str, attrs: dict) -> dict:
    """Config attributes plus the type's defaults (and its default ``name``)."""
    return TYPES[rtype].with_defaults(label, attrs)


@overload
def canonical(rtype: str, attrs: dict) -> dict: ...
@overload
def canonical(rtype: str, attrs: None) -> None: ...
@overload
def canonical(rtype: str, attrs: dict | None) -> dict | None: ...
def canonical(rtype: str, attrs: dict | None) -> dict | None:
    """The canonical form of a type's attributes, for desired and live alike."""
    return TYPES[rtype].canon(attrs)


def identity(rtype: str, attrs: dict) -> str | None:
    """The live ID of an instance (the same string ``kvmnet import`` takes)."""
    t = TYPES.get(rtype)
    return t.id_of(attrs) if t is not None else None


def import_id_problem(rtype: str, text: str) -> str | None:
    """Why ``text`` is not an import ID of ``rtype`` (None when it is one, or
    when the type accepts any ID)."""
    parse = TYPES[rtype].parse_id
    if parse is None:
        return None
    try:
        parse(text)
    except ValueError as e:
        return str(e)
    return None


def state_attrs(record) -> dict:
    """A state record's attributes, upgraded to today's shape by its type (an
    unknown type's as stored)."""
    t = TYPES.get(record.type)
    return t.upgraded(record.attrs) if t is not None else record.attrs
