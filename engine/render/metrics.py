"""Prometheus textfile-collector metrics for the drift-check cron, written atomically."""
from __future__ import annotations

import time
from collections import Counter

from kvmnet.engine.resources import TYPES
from kvmnet.sdk.files import atomic_write


def _write(path: str, lines: list[str]) -> None:
    atomic_write(path, "\n".join(lines) + "\n", 0o644)


def _header(name: str, kind: str, help_: str) -> list[str]:
    return [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]


def write_metrics(path: str, plan, snapshot) -> None:
    drifted = Counter(c.type for c in plan.resource_drift)
    managed = Counter(r.type for r in snapshot.instances.values())
    pending = Counter(c.type for c in plan.changes) if not plan.refresh_only else Counter()
    lines = _header("kvmnet_drifted_resources", "gauge",
                    "Managed resources changed outside kvmnet, by type")
    lines += [f'kvmnet_drifted_resources{{type="{t}"}} {drifted.get(t, 0)}' for t in TYPES]
    lines += _header("kvmnet_managed_resources", "gauge", "Resources in the state, by type")
    lines += [f'kvmnet_managed_resources{{type="{t}"}} {managed.get(t, 0)}' for t in TYPES]
    if not plan.refresh_only:
        lines += _header("kvmnet_pending_changes", "gauge", "Changes the plan would make, by type")
        lines += [f'kvmnet_pending_changes{{type="{t}"}} {pending.get(t, 0)}' for t in TYPES]
    lines += _header("kvmnet_check_success", "gauge", "1 if the last check ran without error")
    lines.append("kvmnet_check_success 1")
    lines += _header("kvmnet_last_check_timestamp_seconds", "gauge", "When the last check ran")
    lines.append(f"kvmnet_last_check_timestamp_seconds {time.time():.3f}")
    _write(path, lines)


def write_failure(path: str) -> None:
    lines = _header("kvmnet_check_success", "gauge", "1 if the last check ran without error")
    lines.append("kvmnet_check_success 0")
    lines += _header("kvmnet_last_check_timestamp_seconds", "gauge", "When the last check ran")
    lines.append(f"kvmnet_last_check_timestamp_seconds {time.time():.3f}")
    _write(path, lines)
