"""Probes: checks of the live system that a change must not break (``apply --probe``,
the fleet agent; docs/fleet.md). A provider answers :meth:`Provider.probes` with
:class:`Probe` values for what it manages; the engine runs each before the change and,
when it passed then, again after it, and reverts the change when one fails.

The helpers run a check outside this process, inside a network namespace when one
is given (``nsenter``, argument lists, no shell) and within a timeout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable

NETNS_DIR = "/run/netns"


@dataclass(frozen=True)
class Probe:
    """One check. ``key`` names it to the user and identifies it on the host: probes
    with the same key are one (the first is kept), and after a change the probe of a
    key is asked for again, so it checks the resource as it is then (a key no longer
    offered is skipped: nothing to check). ``check(timeout)`` returns None when the
    check passes, else one line saying why not; it must end within about
    ``timeout`` seconds and may raise (the probe then failed)."""

    key: str                        # e.g. "forward port_forward.web", "gateway (netns h1)"
    check: Callable[[float], str | None] = field(compare=False)
    address: str | None = None      # the managed resource it concerns (None: the host)


def in_netns(netns: str | None, argv: list[str]) -> list[str]:
    """``argv`` run inside network namespace ``netns`` (as is without one)."""
    if not netns:
        return argv
    return ["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--", *argv]


def run(argv: list[str], timeout: float) -> tuple[int, str]:
    """Exit code and the last line of output of ``argv`` (127: not found, 124: timed out)."""
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:g} s"
    text = (cp.stdout.strip() or cp.stderr.strip()).splitlines()
    return cp.returncode, (text[-1] if text else "")


def reach(netns: str | None, args: list[str], timeout: float) -> str | None:
    """:mod:`kvmnet.sdk.reach` run in ``netns`` (``["icmp", ADDRESS, T]`` or
    ``["tcp", ADDRESS, PORT, T]``): None when the target answered, else why not."""
    code, out = run(in_netns(netns, [sys.executable, "-m", "kvmnet.sdk.reach", *args]), timeout + 5)
    return None if code == 0 else (out or f"exit {code}")


def ip_json(netns: str | None, args: list[str]) -> list:
    """``ip -j ARGS`` in ``netns``, parsed; RuntimeError when it fails."""
    try:
        cp = subprocess.run(in_netns(netns, ["ip", "-j", *args]), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"ip {' '.join(args)}: {e}") from None
    if cp.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {cp.stderr.strip()}")
    return json.loads(cp.stdout or "[]")


def gateway(netns: str | None) -> Probe:
    """The default gateway of ``netns`` answers an ICMP echo: the probe of every
    provider with a ``netns`` (one per namespace, by its key)."""
    def check(timeout: float) -> str | None:
        try:
            routes = ip_json(netns, ["route", "show", "default"]) + ip_json(netns, ["-6", "route", "show", "default"])
        except (RuntimeError, ValueError) as e:
            return str(e)
        gateways = [r["gateway"] for r in routes if r.get("gateway")]
        if not gateways:
            return "no default route with a gateway"
        return reach(netns, ["icmp", gateways[0], str(timeout)], timeout)
    return Probe(f"gateway (netns {netns})" if netns else "gateway", check)
