"""Probes an apply must not break, and the automatic revert when it does (issue 13 §5).

Before a change, :func:`baseline` finds the probes of the host (from the state and
the provider configuration) and runs each once. After the apply,
:func:`run_after_apply` runs the probes that passed before, each retried until it
passes or its timeout ends; when one still fails, the apply is reverted through the
confirm-or-revert protocol of ``apply --confirm-timeout``
(:mod:`kvmnet.engine.confirmation` for the history transitions,
:func:`kvmnet.engine.operations.revert` for the undo). A probe that already failed
before the change does not count: the change did not break it.

The probes:

``gateway``      the default gateway of each namespace kvmnet manages answers an ICMP echo
``network``      each libvirt network kvmnet keeps active is active, with its dnsmasq
                 running when it has an ``ip`` block
``forward``      each TCP ``port_forward`` accepts a connection made through it from the
                 host (the output-hook DNAT, to a local address of the host)
``command``      each user probe: an argument list (no shell) that must exit 0

Every check runs outside this process (``nsenter``, :mod:`kvmnet.engine.fleet.reach`,
libvirt), with a timeout.
"""
from __future__ import annotations

import ipaddress
import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable

NETNS_DIR = "/run/netns"
DEFAULT_TIMEOUT = 5.0                    # seconds a probe may take to pass after a change
RETRY_INTERVAL = 0.5
HOST_PROVIDERS = ("iproute", "nftables", "iptables", "sysctl", "netplan")
DEFAULT_LIBVIRT_URI = "qemu:///system"


@dataclass(frozen=True)
class Probe:
    """One check; ``target`` is what it checks (a namespace, a resource address, a
    user probe's name), resolved against the state each time it runs."""
    kind: str                       # gateway | network | forward | command
    target: str
    timeout: float = DEFAULT_TIMEOUT
    netns: str | None = None
    uri: str = ""                   # libvirt connection (network probes)
    argv: tuple[str, ...] = ()      # command probes

    @property
    def name(self) -> str:
        if self.kind == "gateway":
            return f"gateway (netns {self.netns})" if self.netns else "gateway"
        return f"{self.kind} {self.target}"


@dataclass
class Result:
    probe: Probe
    ok: bool
    detail: str = ""
    skipped: bool = False           # its target is gone from the state: nothing to check

    def line(self) -> str:
        return f"{self.probe.name}: {'ok' if self.ok else 'FAILED'}{': ' + self.detail if self.detail else ''}"


@dataclass
class Baseline:
    """The probes and how each did before the change."""
    results: list[Result] = field(default_factory=list)

    @property
    def counted(self) -> list[Probe]:
        return [r.probe for r in self.results if r.ok and not r.skipped]

    @property
    def ignored(self) -> list[Result]:
        return [r for r in self.results if not r.ok]


@dataclass
class ProbeOutcome:
    reverted: bool
    failed: list[Result]
    message: str
    results: list[Result] = field(default_factory=list)
    rollback: Any = None            # the operations.Rollback when reverted


class ProbeConfigError(ValueError):
    """A user probe that cannot run (its message names the file and line)."""


# -- which probes ---------------------------------------------------------------------------
def discover(provider_configs: dict[str, dict], snapshot, user: list[Probe] | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> list[Probe]:
    """The probes of a host: from the instances the state holds and the configuration
    of their providers (``netns``, ``uri``), each with ``timeout``; then the user's,
    each with its own."""
    found: dict[str, Probe] = {}

    def add(p: Probe) -> None:
        found.setdefault(p.name, p if p.kind == "command" else replace(p, timeout=timeout))

    for name, cfg in sorted(provider_configs.items()):
        if name.split(".")[0] in HOST_PROVIDERS:
            add(Probe("gateway", cfg.get("netns") or "", netns=cfg.get("netns") or None))
    for address, rec in sorted(snapshot.instances.items()):
        if rec.provider not in provider_configs:
            continue
        cfg = provider_configs[rec.provider]
        ptype = rec.provider.split(".")[0]
        if rec.type == "network" and ptype == "libvirt" and rec.attrs.get("active", True) is not False:
            add(Probe("network", address, uri=cfg.get("uri") or DEFAULT_LIBVIRT_URI))
        elif rec.type == "port_forward" and forward_target(rec.attrs) is not None:
            add(Probe("forward", address, netns=cfg.get("netns") or None))
    for p in user or []:
        add(p)
    return list(found.values())


def forward_target(attrs: dict) -> tuple[str, int] | None:
    """(family, first host port) of a forward a local connection goes through: TCP,
    not limited to an input interface (a local connection arrives on none) nor to a
    source network."""
    if attrs.get("protocol") != "tcp" or attrs.get("in_interface") or attrs.get("source"):
        return None
    try:
        family = "inet6" if ipaddress.ip_address(str(attrs["to_address"])).version == 6 else "inet"
        port = int(str(attrs["host_port"]).split("-")[0])
    except (KeyError, ValueError):
        return None
    return family, port


def user_probes(blocks, default_timeout: float = DEFAULT_TIMEOUT) -> list[Probe]:
    """User probes from parsed HCL blocks ``kvmnet { probe "NAME" { command = [..]
    timeout = "5s" netns = ".." } }``; literal values only."""
    probes: list[Probe] = []
    seen: dict[str, str] = {}
    for top in blocks:
        where = f"{top.file}:{top.line}"
        if top.type != "kvmnet" or top.labels:
            raise ProbeConfigError(f'{where}: expected a "kvmnet" block without labels, not "{top.type}"')
        for name in top.attrs:
            raise ProbeConfigError(f'{top.file}:{top.attrs[name].line}: unexpected attribute "{name}" '
                                   'in the kvmnet block of a probe file')
        for b in top.blocks:
            where = f"{b.file}:{b.line}"
            if b.type != "probe" or len(b.labels) != 1:
                raise ProbeConfigError(f'{where}: expected probe "NAME" {{ command = [...] }}')
            name = b.labels[0]
            if name in seen:
                raise ProbeConfigError(f'{where}: probe "{name}" is defined twice (first in {seen[name]})')
            seen[name] = where
            probes.append(_user_probe(b, name, default_timeout))
    return probes


def _user_probe(b, name: str, default_timeout: float) -> Probe:
    def at(attr: str) -> str:
        return f"{b.file}:{b.attrs[attr].line}: probe \"{name}\": {attr}"

    for k in b.attrs:
        if k not in ("command", "timeout", "netns"):
            raise ProbeConfigError(f'{at(k)}: unknown attribute (expected command, timeout, netns)')
    if "command" not in b.attrs:
        raise ProbeConfigError(f'{b.file}:{b.line}: probe "{name}" needs a "command" (a list of strings)')
    argv = b.attrs["command"].value
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and "${" not in a for a in argv):
        raise ProbeConfigError(f"{at('command')}: must be a non-empty list of literal strings "
                               '(the program and its arguments, run without a shell)')
    timeout = default_timeout
    if "timeout" in b.attrs:
        parsed = parse_duration(b.attrs["timeout"].value)
        if parsed is None or parsed <= 0:
            raise ProbeConfigError(f"{at('timeout')}: {b.attrs['timeout'].value!r} is not a duration "
                                   'above zero (e.g. 5, "5s", "500ms", "2m")')
        timeout = parsed
    netns = None
    if "netns" in b.attrs:
        netns = b.attrs["netns"].value
        if not isinstance(netns, str) or not netns or "/" in netns or netns in (".", "..") or "${" in netns:
            raise ProbeConfigError(f"{at('netns')}: must be the name of a network namespace")
    return Probe("command", name, timeout=timeout, netns=netns, argv=tuple(argv))


def parse_duration(value) -> float | None:
    """Seconds as a number, or ``500ms`` / ``5s`` / ``2m`` / ``1h``; None if neither."""
    import re
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h)?\s*", str(value))
    if m is None:
        return None
    return float(m.group(1)) * {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[m.group(2) or ""]


def load_probe_file(path: str) -> list[Probe]:
    from kvmnet.engine.config.hcl import parse_text
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ProbeConfigError(f"cannot read probe file {path}: {e.strerror or e}") from None
    parsed = parse_text(text, path)
    if parsed.errors:
        raise ProbeConfigError(str(parsed.errors[0]))
    if parsed.attrs:
        a = next(iter(parsed.attrs.values()))
        raise ProbeConfigError(f'{path}:{a.line}: unexpected attribute "{a.name}"; expected kvmnet {{ probe ... }}')
    return user_probes(parsed.blocks)


# -- running them ------------------------------------------------------------------------------
def _in_netns(netns: str | None, argv: list[str]) -> list[str]:
    if not netns:
        return argv
    return ["nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--", *argv]


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return 127, f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:g} s"
    text = (cp.stdout.strip() or cp.stderr.strip()).splitlines()
    return cp.returncode, (text[-1] if text else "")


def _reach(netns: str | None, args: list[str], timeout: float) -> str | None:
    code, out = _run(_in_netns(netns, [sys.executable, "-m", "kvmnet.engine.fleet.reach", *args]),
                     timeout + 5)
    return None if code == 0 else (out or f"exit {code}")


def _ip_json(netns: str | None, args: list[str]) -> list:
    try:
        cp = subprocess.run(_in_netns(netns, ["ip", "-j", *args]), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"ip {' '.join(args)}: {e}") from None
    if cp.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {cp.stderr.strip()}")
    return json.loads(cp.stdout or "[]")


def check_gateway(p: Probe, timeout: float) -> str | None:
    try:
        routes = _ip_json(p.netns, ["route", "show", "default"]) + \
            _ip_json(p.netns, ["-6", "route", "show", "default"])
    except (RuntimeError, ValueError) as e:
        return str(e)
    gateways = [r["gateway"] for r in routes if r.get("gateway")]
    if not gateways:
        return "no default route with a gateway"
    return _reach(p.netns, ["icmp", gateways[0], str(timeout)], timeout)


def local_address(netns: str | None, family: str) -> str | None:
    """A global address of the namespace in ``family`` (the forward's DNAT matches
    connections to the host's own addresses)."""
    flag = "-6" if family == "inet6" else "-4"
    for link in _ip_json(netns, [flag, "addr", "show", "scope", "global"]):
        for a in link.get("addr_info", []):
            if a.get("family") == family and a.get("local") and not a.get("tentative"):
                return a["local"]
    return None


def check_forward(p: Probe, snapshot, timeout: float) -> str | None:
    rec = snapshot.instances.get(p.target)
    target = forward_target(rec.attrs) if rec is not None else None
    assert target is not None
    family, port = target
    try:
        address = local_address(p.netns, family)
    except (RuntimeError, ValueError) as e:
        return str(e)
    if address is None:
        return "the host has no global address to connect through"
    return _reach(p.netns, ["tcp", address, str(port), str(timeout)], timeout)


def check_network(p: Probe, snapshot) -> str | None:
    import libvirt
    rec = snapshot.instances.get(p.target)
    assert rec is not None
    name = rec.attrs.get("name") or rec.id
    try:
        conn = libvirt.open(p.uri)
    except libvirt.libvirtError as e:
        return f"cannot connect to libvirt at {p.uri}: {e.get_error_message()}"
    try:
        try:
            net = conn.networkLookupByName(name)
            if not net.isActive():
                return f"libvirt network {name!r} is not active"
        except libvirt.libvirtError as e:
            return f"libvirt network {name!r}: {e.get_error_message()}"
    finally:
        conn.close()
    if rec.attrs.get("ip") and not dnsmasq_running(name):
        return f"no dnsmasq runs for libvirt network {name!r}"
    return None


def dnsmasq_running(network: str) -> bool:
    """A dnsmasq process runs with the network's configuration file
    (``--conf-file=…/NETWORK.conf``, as libvirt starts it)."""
    suffix = f"/{network}.conf"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == "dnsmasq" and \
                any(a.startswith("--conf-file=") and a.endswith(suffix) for a in args):
            return True
    return False


def check_command(p: Probe, timeout: float) -> str | None:
    code, out = _run(_in_netns(p.netns, list(p.argv)), timeout)
    return None if code == 0 else f"exit {code}{': ' + out if out else ''}"


def run_once(p: Probe, snapshot, timeout: float | None = None) -> Result:
    """One attempt of ``p`` against the live system, its target read from ``snapshot``."""
    t = p.timeout if timeout is None else timeout
    if p.kind in ("forward", "network"):
        rec = snapshot.instances.get(p.target)
        if rec is None or (p.kind == "forward" and forward_target(rec.attrs) is None) \
                or (p.kind == "network" and rec.attrs.get("active", True) is False):
            return Result(p, True, "no longer configured", skipped=True)
    try:
        why = {"gateway": lambda: check_gateway(p, t),
               "forward": lambda: check_forward(p, snapshot, t),
               "network": lambda: check_network(p, snapshot),
               "command": lambda: check_command(p, t)}[p.kind]()
    except Exception as e:      # noqa: BLE001 - a probe that cannot run has failed
        why = f"the probe could not run: {e}"
    return Result(p, why is None, why or "")


def run_until(p: Probe, snapshot) -> Result:
    """Retry ``p`` until it passes or its timeout ends (a change may take a moment to
    settle: neighbours, dnsmasq)."""
    end = time.monotonic() + p.timeout
    while True:
        left = end - time.monotonic()
        result = run_once(p, snapshot, timeout=max(0.5, min(p.timeout, left)))
        if result.ok or time.monotonic() + RETRY_INTERVAL >= end:
            return result
        time.sleep(RETRY_INTERVAL)


def _run_all(probes: list[Probe], fn) -> list[Result]:
    if not probes:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(probes))) as pool:
        return list(pool.map(fn, probes))


def baseline(probes: list[Probe], snapshot) -> Baseline:
    """Each probe once, before the change."""
    return Baseline(_run_all(probes, lambda p: run_once(p, snapshot)))


def check_after(before: Baseline, snapshot) -> list[Result]:
    """The probes that passed before, each until it passes or times out."""
    return _run_all(before.counted, lambda p: run_until(p, snapshot))


# -- after an apply: keep or revert -------------------------------------------------------------
def run_after_apply(backend, state_path: str, prepared, providers, report, before: Baseline, *,
                    events=None, on_results: Callable[[list[Result]], None] | None = None) -> ProbeOutcome:
    """Probe a finished apply (``report``, history entry awaiting a decision) and
    decide it as ``kvmnet confirm`` would: keep it when every counted probe passes,
    else revert it (the apply's inverse plan) and say which probes failed.
    ``on_results`` sees the results before the decision is carried out; ``events``
    the rollback's steps."""
    from kvmnet.engine.confirmation import Pending, awaiting, confirmed, reverted, reverting
    from kvmnet.engine.operations import revert
    hid = report.history_id
    awaiting(backend, hid)
    longest = max((p.timeout for p in before.counted), default=0.0)
    pending = Pending(hid, secrets.token_hex(16), os.getpid(), time.time() + longest, longest, "")
    results = check_after(before, backend.read())
    if on_results is not None:
        on_results(results)
    failed = [r for r in results if not r.ok]
    ignored = len(before.ignored)
    note = f" ({ignored} probe(s) that failed before the change not counted)" if ignored else ""
    if not failed:
        confirmed(backend, state_path, pending)
        return ProbeOutcome(False, [], f"{len(results)} probe(s) passed after the change{note}", results)
    why = "probe failed after the change: " + "; ".join(r.line() for r in failed)
    reverting(backend, state_path, hid)
    try:
        rb = revert(backend, prepared, providers, report, why=why, events=events)
    finally:
        reverted(state_path)
    done = "reverted" if rb.complete else "revert incomplete"
    return ProbeOutcome(True, failed, f"{why}; {done}{note}", results, rb)
