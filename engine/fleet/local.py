"""One host's plan and apply, run by its agent on the host with the engine's library
API: prepare the host's directory, refresh against the live system under the local
state's lock, and run the plan as one recorded operation (engine.operations)."""
from __future__ import annotations

from dataclasses import dataclass
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
from kvmnet.state import EXCLUSIVE, LockError, StateError, open_state


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


def load(config_dir: str):
    """The prepared config of the host's directory (LocalError with its diagnostics)."""
    try:
        return prepare(config_dir, VariableInputs())
    except DiagnosticError as e:
        raise LocalError(str(e)) from None


def _open(prepared, state_path: str, command: str) -> HostPlan:
    """The local state locked and every provider the config or the state uses started
    (a HostPlan without a plan yet)."""
    be = open_state(state_path, check=row_problem)
    try:
        lock = be.lock(EXCLUSIVE, command, timeout=30)
    except (LockError, StateError) as e:
        raise LocalError(str(e)) from None
    diags = Diagnostics()
    configs = {n: prepared.evaluator.provider_config(n, diags) for n in prepared.config.providers}
    if diags:
        lock.release()
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
        raise LocalError(str(e)) from None
    return HostPlan(prepared, None, ps, be, lock)


def plan_host(prepared, state_path: str, command: str) -> HostPlan:
    """Lock the local state, refresh, settle open intents, plan."""
    hp = _open(prepared, state_path, command)
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


def check_drift(prepared, state_path: str, command: str) -> dict:
    """The host's drift report (engine.fleet.drift): a refresh-only plan under the lock."""
    from kvmnet.engine.fleet.drift import run_drift_check
    hp = _open(prepared, state_path, command)
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
