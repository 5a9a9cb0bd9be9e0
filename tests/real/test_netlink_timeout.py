"""A netlink request the kernel never answers fails at the provider's timeout.

The stimulus is real: the kernel drops a reply it cannot queue. The test subscribes
kvmnet's own socket to link events and shrinks its receive buffer to the kernel's
minimum, then makes link events with ``ip``; the buffer overflows, so the kernel
drops the acknowledgement of the next request (netlink gives no delivery
guarantee), and pyroute2 queues the reader's ENOBUFS under sequence number 0
while the request waits on its own: without a deadline the request waits forever.
"""
from __future__ import annotations

import os
import socket
import time

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.sdk.provider import Change, ProviderError

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

RTNLGRP_LINK = 1
DEADLINE = 1.0


def deafen(nl, ns: str, attr: str) -> None:
    """Make the kernel drop the next reply on this thread's socket ``attr``."""
    nl._call("look up lo", attr, "link", "get", ifname="lo")   # binds the socket: an
    sock = nl._socket(attr)                                     # unbound one gets no events
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)     # the kernel's minimum
    sock.asyncore.add_membership(RTNLGRP_LINK)
    for i in range(8):
        in_ns(ns, "ip", "link", "add", f"noise{i}", "type", "bridge")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_request_without_answer_fails_at_the_deadline_and_the_next_one_works(ns):
    from kvmnet.providers.links import Netlink
    nl = Netlink(ns, timeout=DEADLINE)
    try:
        nl.set_link("lo", mtu=65000)
        fds = open_fds()
        deafen(nl, ns, "ipr")
        start = time.monotonic()
        with pytest.raises(ProviderError, match=r"^set lo: no answer from the kernel within 1 s \(netlink timeout\)$"):
            nl.set_link("lo", mtu=64000)
        elapsed = time.monotonic() - start
        assert DEADLINE <= elapsed < DEADLINE + 5
        nl.set_link("lo", mtu=63000)      # a fresh socket: the stuck one is closed and dropped
        assert '"mtu":63000' in in_ns(ns, "ip", "-j", "link", "show", "lo").stdout
        assert open_fds() == fds
        assert len(nl._opened) == 1
    finally:
        nl.close()


def test_a_create_without_answer_is_a_provider_error_naming_the_bridge(ns):
    from kvmnet.providers.iproute import IprouteProvider
    provider = IprouteProvider({"netns": ns, "timeout": DEADLINE})
    try:
        nl = provider.links.nl
        deafen(nl, ns, "ipr_echo")       # a bridge is created on the NLM_F_ECHO socket
        change = Change("create", "bridge", "bridge.b0", None,
                        {"name": "b0", "interfaces": [], "addresses": [], "routes": [], "stp": False},
                        mark="kvmnet:L:bridge.b0")
        start = time.monotonic()
        with pytest.raises(ProviderError, match=r"^create bridge b0: no answer from the kernel within 1 s"):
            list(provider.apply([change]))
        assert time.monotonic() - start < DEADLINE + 5
        # the next create opens a fresh socket and works
        again = Change("create", "bridge", "bridge.b1", None,
                       {"name": "b1", "interfaces": [], "addresses": [], "routes": [], "stp": False},
                       mark="kvmnet:L:bridge.b1")
        list(provider.apply([again]))
        assert "b1" in provider.read("bridge", ["b1"])
    finally:
        provider.close()


def test_the_deadline_is_the_provider_timeout(ns):
    from kvmnet.providers.iproute import IprouteProvider
    provider = IprouteProvider({"netns": ns, "timeout": 7})
    try:
        assert provider.links.nl.timeout == 7.0
    finally:
        provider.close()
