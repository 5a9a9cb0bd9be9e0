"""What a provider tells the engine about the resource types it serves.

A :class:`ResourceType` is everything the engine needs to plan an instance of a
type without knowing the type: its JSON Schema, its defaults, its canonical form,
which attributes are computed or force a replacement, how its live identity (the
import ID) is formed and parsed, its validation rules, and its *claims* — what an
instance takes that no other instance in the same scope may take too (an interface
name, a subnet, a host port) — and *lookups* of what other instances offer (a
forward's address must lie in the subnet its network offers). The engine checks
claims and lookups across every type generically, so each cross-instance rule is
declared by the type it concerns.

A :class:`Plugin` is what a ``kvmnet.providers`` entry point names: a light object
listing the types a provider serves and where its (heavy) provider class lives, so
``kvmnet validate`` needs neither libvirt nor netlink.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import AbstractSet, Any, Callable, Hashable, Iterable, Iterator, Mapping, overload

from .rules import Finding, Subject

Rule = Callable[[Subject], Iterator[Finding]]


@dataclass(slots=True)
class Claim:
    """Something an instance takes exclusively within its scope.

    ``kind`` names the namespace ("interface name", "host port/tcp"). With
    ``span`` None the claim is of ``key`` exactly: a later instance claiming the
    same key is reported. With ``span`` (first, last), claims of one kind clash
    when their spans overlap and their ``key`` values are equal or either is None
    (a forward on any input interface clashes with one on a given interface).
    ``conflict(claim, earlier_claim, earlier_address)`` is the message reported on
    the later instance at ``path`` (a plain function: claims are many, a closure
    per claim would cost); ``note`` is free for it to read.
    ``order`` sorts span claims before the sweep (default: the span).
    """

    kind: str
    key: Hashable
    path: str
    conflict: Callable[[Claim, Claim, str], str]
    span: tuple[int, int] | None = None
    note: str = ""
    order: tuple = ()


@dataclass(slots=True)
class Offer:
    """A fact an instance makes available to others' lookups (first one wins)."""

    kind: str
    key: Hashable
    value: Any


@dataclass(slots=True)
class Lookup:
    """A check of an instance against what another offers under ``kind``/``key``:
    ``check(value, offering_address)`` returns the message of a problem or None.
    Nothing is reported when no instance offers the key."""

    kind: str
    key: Hashable
    path: str
    check: Callable[[Any, str], str | None]


def _name(attrs: dict) -> str | None:
    return attrs.get("name")


@dataclass(frozen=True)
class ResourceType:
    """One resource type, as the provider that owns it defines it.

    Attribute conventions (the contract between the engine and providers): a
    nested block arrives from config as a list of dicts; an optional attribute
    left out is ``None`` and means "whatever it is live"; desired and live
    attributes both pass through :meth:`canon`, so the diff compares like with like.
    """

    name: str
    default_provider: str
    schema_file: tuple[str, str]          # (package, file name) of the JSON Schema
    replace_on: frozenset[str] = frozenset()   # top-level paths forcing replace; "*" = any
    computed: frozenset[str] = frozenset()     # attributes only the provider sets
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # the ``name`` of an instance that sets none, from its label and attributes
    default_name: Callable[[str, dict], Any] | None = None
    canonical: Callable[[dict], dict] | None = None
    identity: Callable[[dict], str | None] = _name
    # the import ID's parts as attributes; raises ValueError(reason) when malformed
    parse_id: Callable[[str], dict] | None = None
    computed_if_omitted: frozenset[str] = frozenset()   # unknown at plan time when omitted
    consumable: bool = False      # others may use it: ask consumers before delete (SPEC §5)
    exclusive: bool = True        # an existing live object of the same identity conflicts
    config_only: frozenset[str] = frozenset()   # kept in config and state, never live
    rules: tuple[Rule, ...] = ()               # one instance's semantic rules
    claims: Callable[[Subject], Iterable[Claim]] | None = None
    offers: Callable[[Subject], Iterable[Offer]] | None = None
    lookups: Callable[[Subject], Iterable[Lookup]] | None = None
    doctor_layer: str | None = None     # the doctor layer its checks belong to
    # on replace, what the config leaves out (an attribute, or a key of a configured
    # block) is kept as found on the live object instead of dropped, and the plan
    # lists it; ``kept_on_replace`` names computed attributes carried over likewise
    # (e.g. a network's verbatim ``kept`` XML)
    keep_unconfigured: bool = False
    kept_on_replace: frozenset[str] = frozenset()
    # a state row written by an older release → today's attribute shape; the
    # engine applies it to every row it reads (None: rows need no upgrade)
    upgrade: Callable[[dict], dict] | None = None
    # an instance's value as references see it (``TYPE.NAME.ATTR``), given the names
    # its config sets as plain attributes (``bridge = "virbr1"``, not ``bridge {}``):
    # lets a shorthand read back as the value written (None: the value itself)
    reference_view: Callable[[AbstractSet[str], dict], dict] | None = None
    # filled by the engine's registry: the installed providers serving the type
    providers: tuple[str, ...] = ()

    @cached_property
    def _schema_text(self) -> str:
        from importlib.resources import files   # (only when a schema is needed)
        package, name = self.schema_file
        return files(package).joinpath(name).read_text(encoding="utf-8")

    def schema(self) -> dict:
        """The type's JSON Schema (Draft 2020-12), a fresh dict callers may change."""
        return json.loads(self._schema_text)

    @overload
    def canon(self, attrs: dict) -> dict: ...
    @overload
    def canon(self, attrs: None) -> None: ...
    def canon(self, attrs: dict | None) -> dict | None:
        """The canonical form of attributes (a copy), for desired and live alike."""
        if attrs is None:
            return None
        return self.canonical(dict(attrs)) if self.canonical else dict(attrs)

    def upgraded(self, attrs: dict) -> dict:
        """A state row's attributes in today's shape (``attrs`` itself when no upgrade is declared)."""
        return self.upgrade(dict(attrs)) if self.upgrade is not None and attrs else attrs

    def view(self, written: AbstractSet[str], value: Any) -> Any:
        """An instance's value (its attributes, or UNKNOWN) as references see it;
        ``written``: the names its config sets as plain attributes."""
        if self.reference_view is None or not isinstance(value, dict):
            return value
        return self.reference_view(written, value)

    def with_defaults(self, label: str, attrs: dict) -> dict:
        """Config attributes plus the type's defaults and default name."""
        out = dict(attrs)
        for k, v in self.defaults.items():
            if out.get(k) is None:
                out[k] = list(v) if isinstance(v, list) else v
        if self.default_name is not None and out.get("name") is None:
            name = self.default_name(label, out)
            if name is not None:
                out["name"] = name
        return out

    def id_of(self, attrs: dict) -> str | None:
        """The live ID of an instance (the string ``kvmnet import`` takes)."""
        try:
            return self.identity(attrs)
        except (KeyError, TypeError):
            return None


@dataclass(frozen=True)
class DataType:
    """A data source a provider serves: ``data "NAME" "LABEL" { arguments }`` reads
    one live object through :meth:`Provider.read_data` at plan time, so the
    configuration can refer to what it did not make (``data.network.default.bridge``).

    ``arguments``: name -> description; ``required``: the names that must be set;
    ``attributes``: name -> description of what the read returns (for the docs).
    """

    name: str
    description: str
    arguments: Mapping[str, str]
    required: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)


def label_name(label: str, attrs: dict) -> str:
    """``default_name`` for types whose name defaults to the block label."""
    return label


@dataclass(frozen=True)
class Plugin:
    """What a ``kvmnet.providers`` entry point names: a provider's types and
    where its class is, imported only when the provider is used.

    ``layers`` maps each doctor layer the provider reports on to its rank bottom
    up (the checklist is ordered by rank across providers); ``failure_layer`` is
    where "provider answers" goes when it cannot be asked (default: the layer of
    its first type); ``host_netns`` ranks a host-level provider whose ``netns``
    says where this host's kernel objects live (None: not host-level);
    ``diagnose_alone``: doctor asks it even when it manages nothing (its provider
    block alone is worth checking, e.g. that a daemon answers).
    """

    name: str
    provider: str                     # "module:Class"
    types: tuple[ResourceType, ...]
    layers: Mapping[str, int] = field(default_factory=dict)
    failure_layer: str | None = None
    host_netns: int | None = None
    diagnose_alone: bool = False
    data_types: tuple[DataType, ...] = ()

    def load(self) -> type:
        module, _, attr = self.provider.partition(":")
        return getattr(importlib.import_module(module), attr)
