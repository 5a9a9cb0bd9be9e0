"""``kvmnet doctor``'s vocabulary: a provider answers with :class:`Check` values
about the :class:`Managed` records the state holds for it."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    layer: str                  # a layer a plugin declares (an unknown layer sorts last)
    check: str                  # what was checked, e.g. "bridge virbr1 up and addressed"
    address: str | None         # the managed resource it concerns (None: the host)
    ok: bool
    detail: str = ""            # what was found (on success too, e.g. the URI)
    hint: str = ""              # what to do about a failure

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Managed:
    """One resource instance kvmnet manages, as the state records it."""

    address: str
    type: str
    id: str | None
    attrs: dict


def passed(check: str, layer: str, address: str | None = None, detail: str = "") -> Check:
    return Check(layer, check, address, True, detail)


def failed(check: str, layer: str, address: str | None, detail: str, hint: str) -> Check:
    return Check(layer, check, address, False, detail, hint)


def in_netns(netns: str | None, argv: str) -> str:
    """A command line for a hint, run inside ``netns`` when there is one."""
    return f"ip netns exec {netns} {argv}" if netns else argv
