"""A netlink request the kernel never answers fails at the provider's timeout.

The stimulus is real: the kernel drops a reply it cannot queue. The test subscribes
kvmnet's own socket to link events and shrinks its receive buffer to the kernel's
minimum, then makes link events with ``ip``; the buffer overflows, so the kernel
drops the acknowledgement of the next request (netlink gives no delivery
guarantee), and pyroute2 queues the reader's ENOBUFS under sequence number 0
while the request waits on its own: without a deadline the request waits forever.
Through the CLI the same stimulus is set up inside the kvmnet process by a
``sitecustomize`` hook (:data:`DEAF_HOOK`).
"""
from __future__ import annotations

import json
import os
import socket
import time

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.sdk.provider import Change, ProviderError
from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

RTNLGRP_LINK = 1
DEADLINE = 1.0
# every other request: on this shared machine a namespace torn down elsewhere holds
# the kernel's RTNL lock for seconds at times, and a request waits for it
ROOMY = 30.0


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
    nl = Netlink(ns, timeout=ROOMY)
    try:
        nl.set_link("lo", mtu=65000)
        fds = open_fds()
        deafen(nl, ns, "ipr")
        nl.timeout = DEADLINE
        start = time.monotonic()
        with pytest.raises(ProviderError, match=r"^set lo: no answer from the kernel within 1 s \(netlink timeout\)$"):
            nl.set_link("lo", mtu=64000)
        elapsed = time.monotonic() - start
        assert DEADLINE <= elapsed < DEADLINE + 10     # + a possible RTNL wait (see ROOMY)
        nl.timeout = ROOMY
        nl.set_link("lo", mtu=63000)      # a fresh socket: the stuck one is closed and dropped
        assert '"mtu":63000' in in_ns(ns, "ip", "-j", "link", "show", "lo").stdout
        assert open_fds() == fds
        assert len(nl._opened) == 1
    finally:
        nl.close()


def test_a_create_without_answer_is_a_provider_error_naming_the_bridge(ns):
    from kvmnet.providers.iproute import IprouteProvider
    provider = IprouteProvider({"netns": ns, "timeout": ROOMY})
    try:
        nl = provider.links.nl
        deafen(nl, ns, "ipr_echo")       # a bridge is created on the NLM_F_ECHO socket
        nl.timeout = DEADLINE
        change = Change("create", "bridge", "bridge.b0", None,
                        {"name": "b0", "interfaces": [], "addresses": [], "routes": [], "stp": False},
                        mark="kvmnet:L:bridge.b0")
        start = time.monotonic()
        with pytest.raises(ProviderError, match=r"^create bridge b0: no answer from the kernel within 1 s"):
            list(provider.apply([change]))
        assert time.monotonic() - start < DEADLINE + 10
        # the next create opens a fresh socket and works
        nl.timeout = ROOMY
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


# Loaded by the kvmnet process under test (``sitecustomize``): before the first
# request on a thread's NLM_F_ECHO socket (the bridge create), that socket is made
# deaf exactly as :func:`deafen` does, so the kernel really drops the answer; that
# one request gets a 2 s deadline, every other one the provider's (see ROOMY).
DEAF_HOOK = '''
import socket
import subprocess

from kvmnet.providers import links

_call = links.Netlink._call
_done = []


def _deaf_call(self, what, attr, method, *args, **kw):
    if attr == "ipr_echo" and not _done:
        _done.append(True)
        _call(self, "look up lo", attr, "link", "get", ifname="lo")
        sock = self._socket(attr)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        sock.asyncore.add_membership(1)
        for i in range(8):
            subprocess.run(["ip", "-n", self.netns, "link", "add", f"noise{i}", "type", "bridge"], check=True)
        self.timeout, roomy = 2.0, self.timeout
        try:
            return _call(self, what, attr, method, *args, **kw)
        finally:
            self.timeout = roomy
    return _call(self, what, attr, method, *args, **kw)


links.Netlink._call = _deaf_call
'''


def test_apply_with_a_netlink_request_without_answer_fails_with_one_error_and_the_next_apply_converges(ns, tmp_path):
    cfg, hook = tmp_path / "cfg", tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(DEAF_HOOK)
    write_config(cfg, f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
                 'resource "bridge" "first" {\n  provider = "iproute"\n  name     = "kvfirst0"\n}\n')
    state = tmp_path / "kvmnet.state.db"
    start = time.monotonic()
    rc, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state, timeout=90,
                              env={"PYTHONPATH": str(hook)})
    assert rc == 1, out + err
    assert time.monotonic() - start < 60 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert lines == ["Error: bridge.first: create failed: create bridge kvfirst0: "
                     "no answer from the kernel within 2 s (netlink timeout)"], err
    rc, out, err = run_kvmnet(cfg, "state", "history", "--json", state=state)
    assert rc == 0 and json.loads(out)["history"][-1]["status"] == "failed", out + err
    # the kernel did make the link (only its answer was lost): the next apply
    # reconciles the open intent and converges, with nothing left behind
    rc, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state, timeout=60)
    assert rc == 0, out + err
    links = json.loads(in_ns(ns, "ip", "-j", "link", "show", "type", "bridge").stdout)
    assert sorted(link["ifname"] for link in links if not link["ifname"].startswith("noise")) == ["kvfirst0"]
    rc, out, err = run_kvmnet(cfg, "plan", "--detailed-exitcode", state=state)
    assert rc == 0, out + err


_forks: list[int] = []
os.register_at_fork(before=lambda: _forks.append(os.getpid()))


def test_opening_sockets_in_a_namespace_never_forks(ns):
    """pyroute2's ``IPRoute(netns=...)`` forks, and a child it ends with SIGTERM
    while the signal raises (this session's handler) unwinds this process's stack:
    its teardown removed the parent's sockets from their shared epoll set, and the
    parent's next request waited forever. kvmnet opens the socket from a thread that
    entered the namespace instead."""
    from kvmnet.providers.links import Netlink
    nl = Netlink(ns, timeout=ROOMY)
    try:
        before = len(_forks)
        for attr in ("ipr", "ipr_echo"):
            nl._call("look up lo", attr, "link", "get", ifname="lo")
        nl.add_bridge("b0", {})
        assert len(_forks) == before
        # the sockets are in the namespace: the bridge is there, not in this one
        assert json.loads(in_ns(ns, "ip", "-j", "link", "show", "b0").stdout)[0]["ifname"] == "b0"
    finally:
        nl.close()
