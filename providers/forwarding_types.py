"""The ``port_forward`` type, served by the nftables and iptables providers alike
(both plugins register this definition)."""
from __future__ import annotations

import ipaddress

from kvmnet.providers import forward_rules
from kvmnet.providers.forwarding import forward_id
from kvmnet.sdk.types import ResourceType


def _ipv6_text(value, network: bool):
    """A valid IPv6 address (or network) in the form nft and ip6tables print it back
    (compressed, lower case): ``FD00:0::50`` and ``fd00::50`` are one forward.
    Anything else is returned as it is, for validation to report."""
    if not isinstance(value, str) or ":" not in value:
        return value
    try:
        return str(ipaddress.IPv6Network(value, strict=True) if network and "/" in value
                   else ipaddress.IPv6Address(value))
    except ValueError:
        return value


def canonical(a: dict) -> dict:
    """``host_port`` as text without spaces ("8080", "8000-8010"); IPv6
    ``to_address`` and ``source`` compressed and lower case."""
    hp = a.get("host_port")
    if isinstance(hp, float) and hp.is_integer():
        hp = int(hp)
    if hp is not None:
        a["host_port"] = str(hp).replace(" ", "")
    if "to_address" in a:
        a["to_address"] = _ipv6_text(a["to_address"], network=False)
    if "source" in a:
        a["source"] = _ipv6_text(a["source"], network=True)
    return a


PORT_FORWARD = ResourceType(
    name="port_forward", default_provider="nftables", schema_file=("kvmnet.schemas", "port_forward.json"),
    replace_on=frozenset({"*"}),
    canonical=canonical,
    identity=lambda a: forward_id(a.get("protocol"), a.get("host_port"), a.get("to_address")),
    config_only=frozenset({"network"}),
    rules=forward_rules.RULES,
    claims=forward_rules.forward_claims,
    lookups=forward_rules.forward_lookups,
    doctor_layer="port_forward",
)

TYPES = (PORT_FORWARD,)
LAYERS = {"port_forward": 50}
