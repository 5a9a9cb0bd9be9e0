"""The probes (engine.fleet.probes) as the agent's :class:`ApplyChecks`: a baseline
before each apply, and after it the keep-or-revert decision of ``apply --probe``."""
from __future__ import annotations

from kvmnet.engine.fleet import probes
from kvmnet.engine.fleet.local import HostPlan


class ProbeChecks:
    def __init__(self, state_path: str, user: list[probes.Probe] | None = None,
                 timeout: float = probes.DEFAULT_TIMEOUT):
        self.state_path, self.user, self.timeout = state_path, list(user or []), timeout

    def before(self, hp: HostPlan) -> probes.Baseline | None:
        """The baseline, or None when the plan changes nothing (no probes then)."""
        if not hp.plan.changes:
            return None
        snapshot = hp.backend.read()
        return probes.baseline(probes.discover(hp.providers, snapshot, self.user, self.timeout), snapshot)

    def after(self, hp: HostPlan, outcome, baseline) -> str | None:
        """None when the counted probes pass (the apply is kept), else why the host
        was reverted."""
        if baseline is None:
            return None
        o = probes.run_after_apply(hp.backend, self.state_path, hp.prepared, hp.providers, outcome.report,
                                   baseline)
        return o.message if o.reverted else None
