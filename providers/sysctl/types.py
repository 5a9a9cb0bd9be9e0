"""The ``sysctl_profile`` type of the sysctl provider (light: reads nothing)."""
from __future__ import annotations

from kvmnet.providers.sysctl import rules
from kvmnet.sdk.types import ResourceType


def _norm_ws(v) -> str:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return " ".join(str(v).split())


def canonical(a: dict) -> dict:
    """Settings sorted by key, values as text with whitespace normalised."""
    s = a.get("settings")
    if isinstance(s, dict):
        a["settings"] = {str(k): _norm_ws(v) for k, v in sorted(s.items())}
    return a


SYSCTL_PROFILE = ResourceType(
    name="sysctl_profile", default_provider="sysctl", schema_file=("kvmnet.schemas", "sysctl_profile.json"),
    defaults={"persist": True},
    canonical=canonical,
    identity=lambda a: ",".join(sorted((a.get("settings") or {}).keys())),
    exclusive=False,   # the keys always exist: a profile only sets them
    rules=rules.RULES,
    claims=rules.settings_claims,
    doctor_layer="ip_forward",
)

TYPES = (SYSCTL_PROFILE,)
LAYERS = {"ip_forward": 40}
