"""The host link types ``bridge`` and ``vlan``, served by the iproute and netplan
providers alike (both plugins register these definitions)."""
from __future__ import annotations

from kvmnet.providers import link_rules
from kvmnet.sdk.types import ResourceType, label_name

SCHEMAS = "kvmnet.schemas"


def _sorted_unique(xs):
    return sorted(dict.fromkeys(xs)) if xs is not None else xs


def canonical(a: dict) -> dict:
    """Repeated ``route {}`` blocks become ``routes``; set-like lists are sorted."""
    if a.get("route") is not None:
        a["routes"] = a.pop("route")
    a.pop("route", None)
    for k in ("interfaces", "addresses", "nameservers"):
        if a.get(k) is not None:
            a[k] = _sorted_unique(a[k])
    if a.get("routes") is not None:
        a["routes"] = sorted(
            # the kernel shows no metric 0: 0 and "not set" are the same route
            (dict(to=r.get("to"), via=r.get("via"), metric=r.get("metric") or None) for r in a["routes"]),
            key=lambda r: (str(r["to"]), str(r["via"])),
        )
    return a


def vlan_default_name(label: str, attrs: dict):
    """``<link>.<id>`` when both are set."""
    if attrs.get("link") is not None and attrs.get("id") is not None:
        return f"{attrs['link']}.{attrs['id']}"
    return None


BRIDGE = ResourceType(
    name="bridge", default_provider="iproute", schema_file=(SCHEMAS, "bridge.json"),
    replace_on=frozenset({"name"}),
    defaults={"interfaces": [], "addresses": [], "routes": [], "stp": False},
    default_name=label_name,
    canonical=canonical,
    consumable=True,
    rules=link_rules.BRIDGE_RULES,
    claims=link_rules.bridge_claims,
    doctor_layer="bridge",
)

VLAN = ResourceType(
    name="vlan", default_provider="iproute", schema_file=(SCHEMAS, "vlan.json"),
    replace_on=frozenset({"name", "id", "link"}),
    defaults={"addresses": []},
    default_name=vlan_default_name,
    canonical=canonical,
    consumable=True,
    rules=link_rules.VLAN_RULES,
    claims=link_rules.vlan_claims,
    doctor_layer="bridge",
)

TYPES = (BRIDGE, VLAN)
LAYERS = {"bridge": 60}
