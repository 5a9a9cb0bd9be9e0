"""The plugin registry: discovery through entry points, one definition per type,
and a clear error for each way a plugin can be wrong."""
from __future__ import annotations

import pytest

from kvmnet.engine import registry
from kvmnet.engine.diagnostics import DiagnosticError
from kvmnet.sdk import Plugin, ResourceType

A = ResourceType(name="thing", default_provider="b", schema_file=("kvmnet.schemas", "bridge.json"))


def _message(excinfo) -> str:
    return str(excinfo.value.diagnostics.items[0])


def test_types_served_by_two_plugins_list_the_default_provider_first():
    types = registry.merge_types([Plugin("a", "m:C", (A,)), Plugin("b", "m:C", (A,))])
    assert types["thing"].providers == ("b", "a")


def test_two_definitions_of_one_type_are_an_error():
    other = ResourceType(name="thing", default_provider="b", schema_file=("kvmnet.schemas", "vlan.json"))
    with pytest.raises(DiagnosticError) as e:
        registry.merge_types([Plugin("a", "m:C", (A,)), Plugin("b", "m:C", (other,))])
    assert _message(e) == ('resource type "thing" is defined twice, by provider plugins a and "b"; '
                           "providers serving one type must share its definition")


def test_the_built_in_plugins_serve_the_six_types(monkeypatch):
    monkeypatch.delenv(registry.ONLY_ENV, raising=False)
    monkeypatch.setattr(registry, "_plugins", None)
    monkeypatch.setattr(registry, "_types", None)
    types = registry.resource_types()
    assert sorted(types) == ["bridge", "network", "nic_attachment", "port_forward", "sysctl_profile", "vlan"]
    assert types["bridge"].providers == ("iproute", "netplan")
    assert types["port_forward"].providers == ("nftables", "iptables")


class _EntryPoint:
    def __init__(self, name, obj):
        self.name, self.value, self._obj = name, f"fake:{name}", obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


@pytest.mark.parametrize("obj, message", [
    (object(), 'provider plugin "x" (fake:x) is not a kvmnet.sdk.Plugin'),
    (Plugin("y", "m:C", ()), 'provider plugin "x" (fake:x) calls itself "y"; the entry point name and '
                             "Plugin.name must be the same"),
    (ImportError("no module named foo"), 'provider plugin "x" (fake:x) cannot be loaded: '
                                         "ImportError: no module named foo"),
])
def test_a_broken_plugin_is_one_clear_error(monkeypatch, obj, message):
    monkeypatch.setattr(registry, "_plugins", None)
    monkeypatch.setattr(registry, "entry_points", lambda group: [_EntryPoint("x", obj)])
    monkeypatch.delenv(registry.ONLY_ENV, raising=False)
    with pytest.raises(DiagnosticError) as e:
        registry.plugins()
    assert _message(e) == message
