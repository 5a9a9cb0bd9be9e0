"""Sysctl keys and values: dotted names, their /proc/sys paths, normalised values.

Pure functions. A key is a dotted name (``net.ipv4.ip_forward``); its file is the
name with every dot turned into a slash under /proc/sys. An interface name that
itself contains a dot (``eth0.100``) therefore cannot be addressed (sysctl(8) would
write ``net.ipv4.conf.eth0/100.rp_filter``; SPEC §3 allows dotted names only).
"""
from __future__ import annotations

from kvmnet.providers.formats import sysctl_key_problem
from kvmnet.providers.sysctl.types import SYSCTL_PROFILE
from kvmnet.sdk.provider import ProviderError

PROC_SYS = "/proc/sys"


def key_path(key: str) -> str:
    """``/proc/sys/net/ipv4/ip_forward`` for ``net.ipv4.ip_forward``."""
    problem = sysctl_key_problem(key)
    if problem:
        raise ProviderError(f'invalid sysctl key "{key}": {problem}')
    return f"{PROC_SYS}/{key.replace('.', '/')}"


def split_id(instance_id: str) -> list[str]:
    """The keys of an import ID (comma-separated keys), sorted and de-duplicated."""
    return sorted({k.strip() for k in instance_id.split(",") if k.strip()})


def join_id(keys) -> str:
    """The import ID of a set of keys: comma-separated, sorted."""
    return ",".join(sorted(keys))


def normalise(settings: dict) -> dict[str, str]:
    """Keys sorted, values as strings with whitespace normalised (/proc shows tabs)."""
    return SYSCTL_PROFILE.canon({"settings": dict(settings)})["settings"]
