"""The ``port_forward`` type, served by the nftables and iptables providers alike
(both plugins register this definition)."""
from __future__ import annotations

from kvmnet.providers import forward_rules
from kvmnet.sdk.types import ResourceType


def canonical(a: dict) -> dict:
    """``host_port`` as text without spaces ("8080", "8000-8010")."""
    hp = a.get("host_port")
    if isinstance(hp, float) and hp.is_integer():
        hp = int(hp)
    if hp is not None:
        a["host_port"] = str(hp).replace(" ", "")
    return a


PORT_FORWARD = ResourceType(
    name="port_forward", default_provider="nftables", schema_file=("kvmnet.schemas", "port_forward.json"),
    replace_on=frozenset({"*"}),
    canonical=canonical,
    identity=lambda a: f"{a.get('protocol')}/{a.get('host_port')}",
    config_only=frozenset({"network"}),
    rules=forward_rules.RULES,
    claims=forward_rules.forward_claims,
    lookups=forward_rules.forward_lookups,
    doctor_layer="port_forward",
)

TYPES = (PORT_FORWARD,)
LAYERS = {"port_forward": 50}
