"""One host's plan and apply, run by its agent on the host with the engine's library
API: prepare the host's directory, refresh against the live system under the host
state's lock, and run the plan as one recorded operation (engine.operations).

The state is the one the host's directory names, as for ``kvmnet -C hosts/NAME``:
the PostgreSQL workspace of its ``kvmnet { backend "pg" }`` block (so ``fleet plan``
reads what the agent wrote), else a SQLite file in the agent's workdir."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kvmnet.engine import operations
from kvmnet.engine.config.evaluate import VariableInputs
from kvmnet.engine.diagnostics import DiagnosticError, Diagnostics
from kvmnet.engine.plan.planner import PlanOptions, make_plan
from kvmnet.engine.prepare import prepare
from kvmnet.engine.reconcile import settle
from kvmnet.engine.registry import ProviderSet
from kvmnet.engine.state_rows import row_problem
from kvmnet.sdk.provider import ProviderError
from kvmnet.state import EXCLUSIVE, LockError, StateError


class LocalError(Exception):
    """The host's plan or apply could not run; the message says why."""


@dataclass
class HostPlan:
    """A plan made under the local state lock, ready to apply (call :meth:`close`)."""
    prepared: Any
    plan: Any                     # a Plan, once made
    providers: ProviderSet
    backend: Any
    lock: Any

    @property
    def summary(self) -> dict:
        add, change, destroy = self.plan.counts()
        return {"add": add, "change": change, "destroy": destroy}

    @property
    def has_changes(self) -> bool:
        p = self.plan
        return bool(p.changes or p.resource_drift or p.adopted or p.imports)

    def close(self) -> None:
        self.providers.close()
        self.lock.release()
        self.backend.close()


StateOpener = Callable[[], Any]     # opens the host's state backend (not yet locked)


class TooOld(LocalError):
    """This kvmnet does not meet the host directory's ``required_version``."""

    def __init__(self, version: str, need: str, where: str):
        super().__init__(f'kvmnet {version} is older than this configuration requires '
                         f'(required_version "{need}" at {where})')
        self.version, self.need, self.where = version, need, where


def required_version(config_dir: str) -> tuple[str, str] | None:
    """The host directory's ``kvmnet { required_version }`` and its ``FILE:LINE``, read
    from the parsed files alone: a configuration written for a newer kvmnet may not
    load here, and the version is what the agent must report then."""
    from types import SimpleNamespace

    from kvmnet.engine.config.hcl import parse_files
    from kvmnet.engine.config.loader import config_files
    from kvmnet.engine.config.settings import load_settings
    found = SimpleNamespace(settings_at="", required_version=None)
    for pf in parse_files([(p, str(p)) for p in config_files(Path(config_dir))]):
        for block in pf.blocks:
            if block.type == "kvmnet":
                load_settings(found, block, Diagnostics())
    return (found.required_version, found.settings_at) if found.required_version else None


def check_version(config_dir: str, version: str) -> None:
    """TooOld when kvmnet ``version`` does not meet the directory's required_version."""
    from kvmnet.engine.fleet.versions import satisfies
    need = required_version(config_dir)
    if need and not satisfies(version, need[0]):
        raise TooOld(version, *need)


def load(config_dir: str):
    """The prepared config of the host's directory (LocalError with its diagnostics)."""
    try:
        return prepare(config_dir, VariableInputs())
    except DiagnosticError as e:
        raise LocalError(str(e)) from None


def state_opener(host_dir: str, state_path: str, conninfo: str) -> StateOpener:
    """How the agent opens the state ``host_dir`` names: its ``backend "pg"`` block's
    workspace (``PG_CONN_STR`` there is the agent's own connection string, unless the
    block names one), else the SQLite file ``state_path``. A bad backend block is a
    LocalError now, before anything is planned."""
    from kvmnet.engine.fleet.plan import open_host_state
    env = {**os.environ, "PG_CONN_STR": conninfo}
    try:
        open_host_state(Path(host_dir), state_path, row_problem, env).close()
    except (DiagnosticError, StateError) as e:
        raise LocalError(str(e)) from None
    return lambda: open_host_state(Path(host_dir), state_path, row_problem, env)


def _open(prepared, open_backend: StateOpener, command: str) -> HostPlan:
    """The host's state locked and every provider the config or the state uses
    started (a HostPlan without a plan yet)."""
    be = None
    try:
        be = open_backend()
        lock = be.lock(EXCLUSIVE, command, timeout=30)
    except (DiagnosticError, LockError, StateError) as e:
        if be is not None:
            be.close()
        raise LocalError(str(e)) from None
    diags = Diagnostics()
    configs = {n: prepared.evaluator.provider_config(n, diags) for n in prepared.config.providers}
    if diags:
        lock.release()
        be.close()
        raise LocalError(str(DiagnosticError(diags)))
    ps = ProviderSet(configs, {n: (p.file, p.line) for n, p in prepared.config.providers.items()})
    try:
        be.mark_interrupted(lock)
        snap = be.read()
        for name in sorted({i.provider for i in prepared.instances.values()}
                           | {r.provider for r in snap.instances.values()} | set(prepared.config.providers)):
            ps.get(name)
    except (DiagnosticError, ProviderError, StateError, KeyError) as e:
        ps.close()
        lock.release()
        be.close()
        raise LocalError(str(e)) from None
    return HostPlan(prepared, None, ps, be, lock)


def plan_host(prepared, open_backend: StateOpener, command: str) -> HostPlan:
    """Lock the host's state, refresh, settle open intents, plan."""
    hp = _open(prepared, open_backend, command)
    try:
        settle(hp.backend, hp.providers)
        plan = make_plan(prepared, hp.backend.read(), hp.providers,
                         PlanOptions(intents=hp.backend.open_intents()), {})
    except (DiagnosticError, ProviderError, StateError, KeyError) as e:
        hp.close()
        raise LocalError(str(e)) from None
    if plan.errors:
        hp.close()
        raise LocalError("; ".join(str(e) for e in plan.errors))
    hp.plan = plan
    return hp


def check_drift(prepared, open_backend: StateOpener, command: str) -> dict:
    """The host's drift report (engine.fleet.drift): a refresh-only plan under the lock."""
    from kvmnet.engine.fleet.drift import run_drift_check
    hp = _open(prepared, open_backend, command)
    try:
        return run_drift_check(prepared, hp.backend.read(), hp.providers)
    except (DiagnosticError, ProviderError, StateError) as e:
        raise LocalError(str(e)) from None
    finally:
        hp.close()


def apply_host(hp: HostPlan, command: str, stop: Callable[[], int | None]) -> operations.Outcome:
    """Run the plan (rolled back if a step fails), stopping when ``stop`` asks."""
    return operations.run_plan(hp.backend, hp.plan, hp.prepared, hp.providers, command=command,
                               rollback_on_failure=True, stop=stop)
