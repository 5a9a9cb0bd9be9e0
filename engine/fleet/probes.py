"""Probes an apply must not break, and the automatic revert when it does (issue 13 §5).

Before a change, :func:`baseline` finds the probes of the host and runs each once.
After the apply, :func:`run_after_apply` runs the probes that passed before, each
retried until it passes or its timeout ends; when one still fails, the apply is
reverted through the confirm-or-revert protocol of ``apply --confirm-timeout``
(:mod:`kvmnet.engine.confirmation` for the history transitions,
:func:`kvmnet.engine.operations.revert` for the undo). A probe that already failed
before the change does not count: the change did not break it.

The probes come from two places:

- each configured provider, asked through :meth:`kvmnet.sdk.Provider.probes` with
  the resources the state holds for it (docs/providers.md; e.g. a gateway that
  answers, a network that is active, a forward that accepts a connection); probes
  of the same key are one. After the change the providers are asked again, so each
  key is checked against the resources as they are then; a key no longer offered
  is skipped (nothing left to check);
- the user's ``command`` probes: an argument list (no shell) that must exit 0.

Every check runs outside this process, with a timeout.
"""
from __future__ import annotations

import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from kvmnet.sdk import probes as sdk_probes
from kvmnet.sdk.doctor import Managed

DEFAULT_TIMEOUT = 5.0                    # seconds a probe may take to pass after a change
RETRY_INTERVAL = 0.5


@dataclass(frozen=True)
class Probe:
    """One probe as the engine runs it: a user's command, or a provider's check
    (``check``) under its key, with the time it may take."""
    kind: str                       # "command" (the user's) | "provider"
    target: str                     # the user probe's name | the provider probe's key
    timeout: float = DEFAULT_TIMEOUT
    netns: str | None = None        # command probes
    argv: tuple[str, ...] = ()      # command probes
    check: sdk_probes.Probe | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return f"command {self.target}" if self.kind == "command" else self.target


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
def provider_probes(providers, snapshot) -> dict[str, sdk_probes.Probe]:
    """Each configured provider's probes for the instances the state holds for it,
    by key (the first of a key is kept: one gateway per namespace)."""
    found: dict[str, sdk_probes.Probe] = {}
    for name in sorted(providers.configs):
        managed: dict[str, list[Managed]] = {}
        for address, rec in sorted(snapshot.instances.items()):
            if rec.provider == name:
                managed.setdefault(rec.type, []).append(Managed(address, rec.type, rec.id, dict(rec.attrs)))
        try:
            offered = providers.get(name).probes(managed)
        except Exception as e:          # a provider's bug fails its probes, not the run
            offered = [_unlisted(name, e)]
        for p in offered:
            found.setdefault(p.key, p)
    return found


UNLISTED = "probes of provider "


def _unlisted(provider: str, e: Exception) -> sdk_probes.Probe:
    """A probe that always fails: ``provider`` could not say what to probe."""
    why = f"provider {provider!r} could not list its probes: {type(e).__name__}: {e}"
    return sdk_probes.Probe(UNLISTED + provider, lambda timeout: why)


def discover(providers, snapshot, user: list[Probe] | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> list[Probe]:
    """The probes of a host: the providers' (:func:`provider_probes`), each with
    ``timeout``; then the user's, each with its own."""
    found: dict[str, Probe] = {}
    for key, check in provider_probes(providers, snapshot).items():
        found[key] = Probe("provider", key, timeout=timeout, check=check)
    for p in user or []:
        found.setdefault(p.name, p)
    return list(found.values())


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
def check_command(p: Probe, timeout: float) -> str | None:
    code, out = sdk_probes.run(sdk_probes.in_netns(p.netns, list(p.argv)), timeout)
    return None if code == 0 else f"exit {code}{': ' + out if out else ''}"


def run_once(p: Probe, snapshot, timeout: float | None = None) -> Result:
    """One attempt of ``p`` against the live system; a provider probe whose resource
    is gone from ``snapshot`` is skipped."""
    t = p.timeout if timeout is None else timeout
    check = p.check
    gone = check is None or (check.address is not None and check.address not in snapshot.instances)
    if p.kind != "command" and gone:
        return Result(p, True, "no longer configured", skipped=True)
    try:
        why = check_command(p, t) if check is None else check.check(t)
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


def check_after(before: Baseline, snapshot, providers=None) -> list[Result]:
    """The probes that passed before, each until it passes or times out; a
    provider's as the providers offer its key now (``snapshot`` is the state after
    the change), skipped when none does."""
    fresh = provider_probes(providers, snapshot) if providers is not None else {}

    def again(p: Probe) -> Result:
        if p.kind == "command":
            return run_until(p, snapshot)
        if p.target not in fresh:
            unlisted = [k for k in fresh if k.startswith(UNLISTED)]
            if unlisted:        # its provider failed to list: gone or not, it cannot tell
                return run_until(replace(p, check=fresh[unlisted[0]]), snapshot)
            return Result(p, True, "no longer configured", skipped=True)
        return run_until(replace(p, check=fresh[p.target]), snapshot)
    return _run_all(before.counted, again)


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
    results = check_after(before, backend.read(), providers)
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
