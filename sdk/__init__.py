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
nothing a ``kvmnet validate`` would notice.
"""
from .doctor import Check, Managed, failed, in_netns, passed
from .probes import Probe
from .ownership import Mark, format_mark, parse_mark
from .provider import Change, Consumer, LiveObject, Provider, ProviderError, Result
from .rules import Finding, Subject, block, blocks, known, path_str, show
from .types import Claim, DataType, Lookup, Offer, Plugin, ResourceType, Rule, label_name
from .values import UNKNOWN, contains_unknown, is_unknown

__all__ = [
    "Change", "Check", "Claim", "Consumer", "DataType", "Finding", "LiveObject", "Lookup", "Managed", "Mark",
    "Offer", "Plugin", "Probe", "Provider", "ProviderError", "ResourceType", "Result", "Rule", "Subject",
    "UNKNOWN", "block", "blocks", "contains_unknown", "failed", "format_mark", "in_netns",
    "is_unknown", "known", "label_name", "parse_mark", "passed", "path_str", "show",
]
