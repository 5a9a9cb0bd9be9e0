"""The provider interface: the four questions a provider answers for the engine.

1. *What exists now?*  :meth:`Provider.read` — one bulk read of all objects of a
   type (never one call per resource), mapped back to canonical attributes.
2. *What would this change do?*  Which attributes force a replacement comes from the
   type's :class:`~kvmnet.sdk.types.ResourceType`; a provider may refine it with
   :meth:`Provider.replace_paths`.
3. *Do it.*  :meth:`Provider.apply` takes a list of :class:`Change` and yields one
   :class:`Result` per change as soon as it is done, so the engine writes the state
   after every single change. A transactional provider (nft) overrides ``apply`` to
   commit the whole list at once and yields the results after the commit.
4. *Who still uses this?*  :meth:`Provider.consumers` answers, from this provider's
   own live view, who uses an object that is about to be deleted or replaced (the
   object may belong to another provider: libvirt reports the domains on a bridge
   that the iproute provider manages).

A provider knows nothing of HCL, the state file or the plan; the engine knows
nothing of libvirt, netlink or nft. Attributes crossing this line are the canonical
attributes of the type (:meth:`ResourceType.canon`: plain dicts, lists, str, int, bool).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator

from .ownership import Mark


class ProviderError(Exception):
    """A change or read failed; the message is shown to the user as is."""


class Restored(ProviderError):
    """The create half of a replace failed, and the provider put the old object back
    as it was: the engine keeps it in the state (``attrs``/``private`` as read back)."""

    def __init__(self, message: str, attrs: dict, private: dict | None = None):
        super().__init__(message)
        self.attrs = attrs
        self.private = dict(private or {})


@dataclass
class LiveObject:
    """One object as it exists live."""

    id: str                     # the import ID (network name, ifname, DOMAIN/MAC, ...)
    attrs: dict                 # canonical attributes, computed ones included
    mark: Mark | None = None    # the ownership mark found on it, if any
    private: dict = field(default_factory=dict)  # provider-private data kept in state


@dataclass
class Change:
    """One step of an apply, as given to a provider. ``after`` is fully known."""

    action: str                 # "create" | "update" | "delete"
    type: str
    address: str
    before: dict | None         # attributes in state (None for create)
    after: dict | None          # desired attributes (None for delete)
    private: dict = field(default_factory=dict)
    mark: str = ""              # ownership mark text to put on the object (create/update)
    # both steps of a replace say so; the delete step then also carries the desired
    # attributes in ``after`` when they are fully known (else None)
    replacing: bool = False


@dataclass
class Result:
    change: Change
    attrs: dict | None          # attributes after the change (None after a delete)
    private: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Consumer:
    """Something live that still uses an object (SPEC §5)."""

    kind: str                   # "domain", "port", "network", "bridge"
    name: str
    detail: str = ""            # e.g. "running", "shut off"
    # the managed resource (type, live id) whose removal would end this use, e.g.
    # ("nic_attachment", "web/52:54:00:12:34:56"); None when nothing kvmnet manages is
    via: tuple[str, str] | None = None
    # whether it runs now (a restart only disturbs running users); None = unknown
    running: bool | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.detail})" if self.detail else self.name


class Provider:
    """Base class. Subclasses set ``name`` and ``resource_types`` and implement
    :meth:`read`, :meth:`create`, :meth:`update` and :meth:`delete`."""

    name: ClassVar[str] = ""
    resource_types: ClassVar[tuple[str, ...]] = ()
    transactional: ClassVar[bool] = False
    # how many of this provider's changes the engine may run at once, each in its
    # own thread (``apply --parallelism`` caps the total). 1, the default, means the
    # provider is never called from two threads at a time; a provider that says
    # more must be safe to call so. A transactional provider's batch counts as one.
    concurrency: ClassVar[int] = 1
    # JSON Schema of the provider block's attributes (SPEC §1 "Provider blocks")
    config_schema: ClassVar[dict] = {"type": "object", "properties": {}, "additionalProperties": False}

    def __init__(self, config: dict | None = None, instance: str | None = None):
        self.config: dict[str, Any] = dict(config or {})
        self.instance = instance or self.name   # the provider block's name (aliases later)

    def prepare_apply(self) -> None:
        """Load what changing things needs (libraries, connections) before the
        first change: called once, before an apply's walk, on each provider that
        has changes in it (timed as its own ``prepare PROVIDER`` phase, so the walk
        times the changes alone). It changes nothing; a ProviderError fails the run
        before anything is changed. Default: nothing."""

    # -- 1. what exists now ---------------------------------------------------
    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        """All live objects of ``rtype``, keyed by ID, read in bulk.

        Must include every ID of ``ids`` that exists, and should include every
        object carrying a kvmnet mark (so that one left by a crash between a change
        and the state write is adopted). Providers whose objects cannot be listed
        (sysctl keys) return just ``ids``.
        """
        raise NotImplementedError

    def import_object(self, rtype: str, id: str) -> LiveObject | None:
        """The object ``kvmnet import`` adopts, or None when there is none."""
        return self.read(rtype, [id]).get(id)

    def read_data(self, dtype: str, args: dict) -> dict:
        """The attributes of the live object a ``data "DTYPE"`` block names by
        ``args`` (its data source's arguments, known). Raise :class:`ProviderError`
        when there is no such object. Only for the data types the plugin lists."""
        raise ProviderError(f"the {self.name} provider has no data source {dtype!r}")

    def importable(self, rtype: str) -> list[str]:
        """The IDs of every live object of ``rtype`` that :meth:`import_object`
        could adopt (``kvmnet import --all TYPE``), managed or not. A provider that
        cannot list its objects (sysctl keys) keeps this default, which says so."""
        raise ProviderError(f"the {self.name} provider cannot list the {rtype} objects it could import; "
                            f"import them one by one with kvmnet import ADDRESS ID")

    # -- checks at plan time --------------------------------------------------
    def check(self, rtype: str, address: str, attrs: dict) -> list[tuple[str | None, str]]:
        """Provider-specific problems with desired attributes, as (attribute, message).

        Called during plan for every instance of this provider; may look at the live
        system (a nic_attachment's domain must exist). Values may be UNKNOWN.
        """
        return []

    def replace_paths(self, rtype: str, before: dict, after: dict) -> list[str] | None:
        """Attributes that force a replacement, or None to use the catalogue's."""
        return None

    def losses(self, rtype: str, before: dict, after: dict) -> list[str]:
        """What replacing the live object ``before`` with ``after`` would lose: live
        configuration the provider can neither model nor keep, each part named. The
        plan refuses such a replace unless the user passes ``--allow-loss ADDRESS``."""
        return []

    def restart_paths(self, rtype: str, before: dict, after: dict) -> list[str]:
        """For an in-place update: the changed attributes that make the object restart
        (the plan's ``restart`` action, refused while running consumers use it)."""
        return []

    # -- 3. do it --------------------------------------------------------------
    def identify(self, change: Change) -> dict:
        """Fix, before a create, what names exactly the object it will make; the
        engine records it in the change's intent (see ``kvmnet.engine.reconcile``).

        May fill identities the backend would otherwise choose into
        ``change.after`` (a network's UUID, a NIC's MAC) and return them as
        ``{"attrs": {...}}``, plus ``{"parts": {...}}``: what :meth:`discard` needs
        to remove a half-made object. ``id`` (the live ID) and ``mark`` are added by
        the engine. Default: the ID and the mark alone name the object.
        """
        return {}

    def discard(self, rtype: str, identity: dict) -> None:
        """Remove what an interrupted create left that is not a whole object of its
        intent (``identity`` as recorded): a link under its temporary name, a
        network defined but never started, sysctl values written before their
        persist file. Never touches an object the intent does not name. Default:
        nothing (the provider's creates make whole objects in one step)."""

    def apply(self, changes: list[Change]) -> Iterator[Result]:
        """Apply ``changes`` in order, yielding each result as soon as it is done.

        Raise :class:`ProviderError` to stop; results already yielded are kept.
        """
        for c in changes:
            yield self.apply_one(c)

    def apply_one(self, c: Change) -> Result:
        # the engine's changes carry ``after`` for a create/update, ``before`` for an update/delete
        if c.action == "create":
            assert c.after is not None
            try:
                attrs, private = self.create(c.type, c.address, c.after, c.mark)
            except ProviderError as e:
                try:
                    back = self.restore_replaced(c.type, c.address) if c.replacing else None
                except ProviderError as r:
                    raise ProviderError(f"{e}; putting the old object back failed too: {r}") from e
                if back is None:
                    raise
                raise Restored(f"{e}; the old object is back as it was", *back) from e
        elif c.action == "update":
            assert c.before is not None and c.after is not None
            attrs, private = self.update(c.type, c.address, c.before, c.after, c.private, c.mark)
        elif c.action == "delete":
            assert c.before is not None
            if c.replacing:
                self.before_replace(c.type, c.address, c.before, c.after)
            self.delete(c.type, c.address, c.before, c.private)
            attrs, private = None, {}
        else:
            raise ValueError(f"unknown action {c.action!r}")
        return Result(c, attrs, private)

    def create(self, rtype: str, address: str, after: dict, mark: str) -> tuple[dict, dict]:
        raise NotImplementedError

    def update(self, rtype: str, address: str, before: dict, after: dict,
               private: dict, mark: str) -> tuple[dict, dict]:
        raise NotImplementedError

    def delete(self, rtype: str, address: str, before: dict, private: dict) -> None:
        raise NotImplementedError

    # -- a safe replace (optional) -----------------------------------------------
    def before_replace(self, rtype: str, address: str, before: dict, after: dict | None) -> None:
        """Called right before the delete half of a replace. A provider may check
        the new object (``after``, None when not yet fully known) with the live
        system and raise :class:`ProviderError` to stop with nothing changed, and
        remember the old object to put it back (:meth:`restore_replaced`)."""

    def restore_replaced(self, rtype: str, address: str) -> tuple[dict, dict] | None:
        """The create half of a replace failed: put the old object back as it was
        and return its (attrs, private), or None when it cannot."""
        return None

    # -- 4. who still uses this ------------------------------------------------
    def consumers(self, rtype: str, attrs: dict) -> list[Consumer]:
        """Live users, in this provider's world, of the object ``rtype``/``attrs``.

        Asked of every configured provider before an object of a ``consumable``
        type is deleted or replaced; each answers from what it sees.
        """
        return []

    # -- operations (history before apply, doctor) ------------------------------
    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        """What is about to change, saved in the state history before an apply."""
        return {}

    def diagnose(self, managed: dict, host_netns: str | None = None) -> list:
        """``kvmnet doctor``'s checks of what this provider manages, bottom up.

        ``managed`` maps each resource type to the
        :class:`kvmnet.sdk.doctor.Managed` records the state holds for this
        provider instance (possibly none: a provider block alone may still be
        checked, e.g. libvirt's reachability); ``host_netns`` is where host-side
        objects of this host live (the ``netns`` of the host-level providers), for
        a provider that cannot tell itself (libvirt's bridges and dnsmasq).
        Returns :class:`kvmnet.sdk.doctor.Check` values. Default: the
        ``diagnose(provider, managed, host_netns)`` function of the ``doctor``
        module next to the provider's class, or no checks when there is none. A
        provider class whose checks are the same for all its subclasses overrides
        this method instead (``ForwardingProvider`` does, for nftables and
        iptables); checks shared by providers of different classes live in a
        shared module (``providers/linkcheck.py``), not in one provider's ``doctor``.
        """
        import importlib
        package = importlib.import_module(type(self).__module__).__package__
        try:
            module = importlib.import_module(f"{package}.doctor")
        except ModuleNotFoundError as e:
            if e.name != f"{package}.doctor":
                raise
            return []
        return module.diagnose(self, managed, host_netns)

    # -- probes (apply --probe, the fleet agent) --------------------------------
    def probes(self, managed: dict) -> list:
        """The :class:`kvmnet.sdk.probes.Probe` values a change must not break, for
        what this provider manages: ``managed`` maps each resource type to the
        :class:`kvmnet.sdk.doctor.Managed` records the state holds for this provider
        instance (possibly none). Asked before a change and again after it (the
        probes of the same keys then check the resources as they are). Default:
        none."""
        return []

    def close(self) -> None:
        pass
