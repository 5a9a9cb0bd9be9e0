"""How long kvmnet waits for an external command or connection (it holds the state
lock meanwhile): one default, overridable per provider block or for every provider.

Precedence: the provider block's ``timeout`` attribute, else ``KVMNET_TIMEOUT``
(seconds) from the environment, else :data:`DEFAULT`.
"""
from __future__ import annotations

import math
import os

from kvmnet.sdk.provider import ProviderError

ENV = "KVMNET_TIMEOUT"
DEFAULT = 30.0
MAXIMUM = 3600.0
# the provider block attribute, added to each provider's ``config_schema``
SCHEMA = {"type": "number", "exclusiveMinimum": 0, "maximum": MAXIMUM}


def from_env(environ=os.environ) -> float:
    """``KVMNET_TIMEOUT`` as seconds, or :data:`DEFAULT` when unset."""
    text = environ.get(ENV)
    if text is None or text.strip() == "":
        return DEFAULT
    try:
        value = float(text)
    except ValueError:
        raise ProviderError(f"{ENV}={text!r} is not a number of seconds") from None
    if not (0 < value <= MAXIMUM) or math.isnan(value):
        raise ProviderError(f"{ENV}={text!r}: a timeout is more than 0 and at most {MAXIMUM:g} seconds")
    return value


def timeout_of(config: dict) -> float:
    """The timeout a provider block asks for (already checked against :data:`SCHEMA`)."""
    value = config.get("timeout")
    return float(value) if value is not None else from_env()


def describe(seconds: float) -> str:
    return f"{seconds:g} s"
