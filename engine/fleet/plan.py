"""``fleet plan``: every host directory of a fleet repository planned from the config
and the host's *stored* state, without reading anything live (the agent makes the
real, refreshing plan on its host before it applies).

The repository layout (examples/fleet-repo): ``modules/<role>/`` and one root per
host in ``hosts/<name>/``. Each host is prepared and planned in this process; the
shared modules' files are parsed once (the parse cache is keyed by their bytes), so
a host costs its evaluation and its diff only."""
from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

HOSTS_DIR = "hosts"
STATE_FILE = "kvmnet.state.db"

# host name, host directory -> the location ``state.open_state`` opens for that host.
StateLocator = Callable[[str, Path], str]


def default_state(host: str, host_dir: Path) -> str:
    """The SQLite file a host's own ``kvmnet -C hosts/<name>`` run uses when its
    config names no backend."""
    return os.fspath(host_dir / STATE_FILE)


def open_host_state(host_dir: Path, location: str, check, env=None):
    """The state the host's own runs use: the PostgreSQL workspace its
    ``kvmnet { backend "pg" }`` block names, else the SQLite file at ``location``
    (``env``: where ``PG_CONN_STR`` is looked up, default the process environment)."""
    from kvmnet.engine.backend_block import backend_settings
    from kvmnet.engine.diagnostics import DiagnosticError
    from kvmnet.state import open_pg_state, open_state
    settings, diags = backend_settings(host_dir, env)
    if diags.errors:
        raise DiagnosticError(diags)
    if settings.kind == "pg":
        return open_pg_state(settings.conn_str, settings.workspace, settings.schema_name,
                             check=check, lease_seconds=settings.lease_seconds)
    return open_state(location, check=check)


@dataclass
class HostPlan:
    """One host's plan summary, or the one error that kept it from planning."""

    host: str
    dir: str
    add: int = 0
    change: int = 0
    destroy: int = 0
    imports: int = 0
    forget: int = 0
    resources: int = 0
    changes: list[tuple[str, str]] = field(default_factory=list)   # (address, kind)
    errors: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)


def discover(repo: str | os.PathLike) -> list[tuple[str, Path]]:
    """The host directories of a fleet repository, by name: every directory under
    ``hosts/`` (one without a ``.hcl`` file is a host whose config is missing:
    :func:`plan_host` says so)."""
    root = Path(repo) / HOSTS_DIR
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (a fleet repository has hosts/<name>/ per host)")
    return sorted((p.name, p) for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def select(names: Iterable[str], patterns: Iterable[str] = (), labels_of: dict[str, Iterable[str]] | None = None,
           labels: Iterable[str] = ()) -> list[str]:
    """The hosts matching any of the shell-style ``patterns`` (``kvm0[1-9]``; none:
    all) and carrying every one of ``labels`` (``labels_of``: host -> its labels)."""
    patterns, wanted = list(patterns), set(labels)
    labels_of = labels_of or {}
    return [n for n in names
            if (not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns))
            and wanted <= set(labels_of.get(n, ()))]


def plan_host(host: str, host_dir: Path, state_location: StateLocator = default_state,
              open_state: Callable | None = None) -> HostPlan:
    """Plan one host without refreshing. Every failure (config, state, provider
    block) becomes the host's errors; nothing is raised, so the other hosts still plan."""
    from kvmnet.engine.diagnostics import DiagnosticError, Diagnostics
    from kvmnet.engine.plan.planner import PlanOptions, make_plan
    from kvmnet.engine.prepare import prepare
    from kvmnet.engine.registry import ProviderSet
    from kvmnet.engine.state_rows import row_problem
    from kvmnet.state import StateError
    from kvmnet.engine.config.loader import config_files
    hp = HostPlan(host=host, dir=os.fspath(host_dir))
    if not config_files(Path(host_dir)):
        # an empty plan would read as "nothing to do" (or, with a state, destroy it all)
        hp.errors = ["no configuration files (*.hcl) in the host directory"]
        return hp
    try:
        prepared = prepare(os.fspath(host_dir))
        diags = Diagnostics()
        configs = {n: prepared.evaluator.provider_config(n, diags) for n in prepared.config.providers}
        if diags.errors:
            raise DiagnosticError(diags)
        location = state_location(host, host_dir)
        be = (open_state(location, check=row_problem) if open_state is not None
              else open_host_state(Path(host_dir), location, row_problem))
        try:
            snap = be.read()
        finally:
            be.close()
        plan = make_plan(prepared, snap, ProviderSet(configs), PlanOptions(refresh=False))
    except DiagnosticError as e:
        hp.errors = [str(d) for d in e.diagnostics.errors] or [str(e)]
        return hp
    except StateError as e:
        hp.errors = [f"state: {e}"]
        return hp
    if plan.errors:
        hp.errors = [str(x) for x in plan.errors]
        return hp
    hp.add, hp.change, hp.destroy = plan.counts()
    more = plan.more_counts()
    hp.imports, hp.forget = more["import"], more["forget"]
    hp.resources = len(prepared.instances)
    hp.changes = [(c.address, _kind(c)) for c in plan.changes]
    return hp


def _kind(change) -> str:
    return "moved" if change.only_moved else change.kind


def totals(plans: Iterable[HostPlan]) -> dict[str, int]:
    """The fleet's totals: hosts planned, failed, with changes; resources to add,
    change, destroy."""
    t = dict(hosts=0, failed=0, changed=0, add=0, change=0, destroy=0)
    for p in plans:
        t["hosts"] += 1
        t["failed"] += bool(p.errors)
        t["changed"] += p.has_changes
        t["add"] += p.add
        t["change"] += p.change
        t["destroy"] += p.destroy
    return t
