"""kvmnet's provider SDK: everything a provider plugin needs, and all the engine
knows of providers (see docs/providers.md).

- :mod:`.provider`: the :class:`Provider` interface, :class:`Change`,
  :class:`Result`, :class:`LiveObject`, :class:`Consumer`, :class:`ProviderError`;
- :mod:`.types`: :class:`ResourceType` (schema, canonical form, defaults, rules,
  claims) and the :class:`Plugin` an entry point names;
- :mod:`.rules`: what a validation rule sees (:class:`Subject`) and reports
  (:class:`Finding`);
- :mod:`.ownership`: the marks on live objects; :mod:`.values`: unknown values;
- :mod:`.doctor`: :class:`Check` and :class:`Managed` for ``kvmnet doctor``;
- :mod:`.probes`: :class:`Probe`, what :meth:`Provider.probes` returns, and helpers
  to check reachability inside a network namespace (:mod:`.reach`);
- :mod:`.killpoints`: named points around side-effecting calls where the crash
  tests SIGKILL kvmnet (``register`` at import, ``hit`` at the point).

Every module here is light (standard library only), so importing a plugin costs
nothing a ``kvmnet validate`` would notice. The names below are also loaded only
when first used (``from kvmnet.sdk import Provider`` imports :mod:`.provider`, not
the probes' ``subprocess`` or the marks' ``hashlib``): the engine imports
``kvmnet.sdk.values`` on every run, and that runs this package first.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .doctor import Check, Managed, failed, in_netns, passed
    from .ownership import Mark, format_mark, parse_mark
    from .probes import Probe
    from .provider import Change, Consumer, LiveObject, Provider, ProviderError, Result
    from .rules import Finding, Subject, block, blocks, known, path_str, show
    from .types import Claim, DataType, Lookup, Offer, Plugin, ResourceType, Rule, label_name
    from .values import UNKNOWN, contains_unknown, is_unknown

# each public name -> the module that defines it (tests/unit/test_startup_imports.py checks
# that this, __all__ and the imports above agree)
_HOME = {
    **dict.fromkeys(["Check", "Managed", "failed", "in_netns", "passed"], "doctor"),
    **dict.fromkeys(["Mark", "format_mark", "parse_mark"], "ownership"),
    "Probe": "probes",
    **dict.fromkeys(["Change", "Consumer", "LiveObject", "Provider", "ProviderError", "Result"], "provider"),
    **dict.fromkeys(["Finding", "Subject", "block", "blocks", "known", "path_str", "show"], "rules"),
    **dict.fromkeys(["Claim", "DataType", "Lookup", "Offer", "Plugin", "ResourceType", "Rule", "label_name"],
                    "types"),
    **dict.fromkeys(["UNKNOWN", "contains_unknown", "is_unknown"], "values"),
}

__all__ = [
    "Change", "Check", "Claim", "Consumer", "DataType", "Finding", "LiveObject", "Lookup", "Managed", "Mark",
    "Offer", "Plugin", "Probe", "Provider", "ProviderError", "ResourceType", "Result", "Rule", "Subject",
    "UNKNOWN", "block", "blocks", "contains_unknown", "failed", "format_mark", "in_netns",
    "is_unknown", "known", "label_name", "parse_mark", "passed", "path_str", "show",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
