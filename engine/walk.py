"""The walk that applies a plan.

Deletes first, in reverse dependency order (so a NIC goes before its network), then
creates and updates in dependency order. Independent changes run concurrently
(:mod:`kvmnet.engine.schedule`: at most ``parallelism`` at once, at most what each
provider declares in ``Provider.concurrency``); everything but the provider calls
stays in the walk's thread. Each step is handed to its provider; the state is
written after every single change, one transaction each, in the order the changes
finish (after each batch, for a transactional provider). Each change's intent is
committed (fsynced) before its provider is called; its result is committed without
an fsync (the intent covers it until the next durable commit, see
:meth:`Walk._commit`). Before a delete the live
consumers are asked again (the world may have moved since the plan). Values known
only after apply are filled in by evaluating a resource again once what it depends
on exists. The first failure stops new work (changes already running finish);
what succeeded is in the state. Afterwards every changed object is read back and
compared with what was asked for (a change that "succeeded" but is not live is an
error), as nmstate's verify step does.

Every change kvmnet makes is a plan run by this walk: apply, destroy, and the
inverse plans of a rollback or a confirm-revert (:mod:`kvmnet.engine.plan.inverse`).
A stop request (``stop``: SIGINT/SIGTERM, see :mod:`kvmnet.engine.operations`) ends
the walk after the steps in progress: they are recorded, no new one starts.

The ordering (:func:`phase_steps`, :meth:`Walk.run`) is kept apart from running one
phase of steps (:meth:`Walk._run_phase`: step -> provider -> state write).
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from kvmnet.engine.plan.diff import diff_attrs, merge_planned
from kvmnet.engine.plan.model import FORGET, Plan, ResourceChange
from kvmnet.engine.plan.planner import consumer_problems, describe_consumers
from kvmnet.engine.plan.redact import provider_private
from kvmnet.engine.prepare import Prepared, instance_view, resource_value
from kvmnet.engine.resources import TYPES, canonical, identity, with_defaults
from kvmnet.engine.timings import NULL, Timings
from kvmnet.sdk.values import UNKNOWN, contains_unknown
from kvmnet.sdk.addresses import resource_of
from kvmnet.sdk.ownership import format_mark
from kvmnet.sdk.killpoints import hit as kill_point, register as register_kill_points

register_kill_points("walk", "walk.intents-recorded", "walk.provider-returned",
                     "walk.state-written")


DEFAULT_PARALLELISM = 10    # changes in flight at once, as Terraform's -parallelism


class ApplyError(Exception):
    pass


@dataclass
class Step:
    change: ResourceChange
    action: str                       # "create" | "update" | "delete"


@dataclass
class ApplyReport:
    done: list[tuple[str, str]] = field(default_factory=list)      # (address, action)
    failed: tuple[str, str, str] | None = None                     # (address, action, message)
    verify_errors: list[str] = field(default_factory=list)
    not_started: list[tuple[str, str]] = field(default_factory=list)
    history_id: int | None = None
    records_before: dict = field(default_factory=dict)             # address -> InstanceRecord | None
    interrupted: int | None = None      # the signal number that stopped the walk early
    # changes that failed while the first failure's neighbours were still running
    also_failed: list[tuple[str, str, str]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)   # dropped from the state (removed blocks)
    peak_concurrency: dict[str, int] = field(default_factory=dict)  # provider -> most at once

    @property
    def ok(self) -> bool:
        return self.failed is None and not self.verify_errors and self.interrupted is None


def _resource_of(address: str) -> str:
    return resource_of(address)


def _steps_of(c: ResourceChange) -> list[str]:
    """The step actions one change runs, in order (a replace deletes, then creates)."""
    return ((["delete"] if c.deletes else []) + (["create"] if "create" in c.actions else [])
            + (["update"] if c.actions == ["update"] else []))


def _dependency_graph(changes: list[ResourceChange]):
    """Edges ``A → B``: B depends on A (a dependency naming a whole resource means
    every instance of it)."""
    import networkx as nx

    by_res = defaultdict(list)
    for c in changes:
        by_res[_resource_of(c.address)].append(c.address)
    g: nx.DiGraph[str] = nx.DiGraph()
    for c in changes:
        g.add_node(c.address)
    for c in changes:
        for dep in c.dependencies:
            targets = [dep] if dep in g else by_res.get(_resource_of(dep), [])
            for t in targets:
                if t != c.address:
                    g.add_edge(t, c.address)
    return g


def _phase_graphs(changes: list[ResourceChange]):
    """(delete graph, create/update graph): deletes run in reverse dependency order."""
    g = _dependency_graph(changes)
    index = {c.address: c for c in changes}
    deletes = [a for a in g if index[a].deletes]
    creates = [a for a in g if index[a].actions in (["create"], ["update"], ["delete", "create"])]
    return g.subgraph(deletes).reverse(copy=True), g.subgraph(creates), index


def _action(c: ResourceChange) -> str:
    return "update" if c.actions == ["update"] else "create"


def order_steps(changes: list[ResourceChange]) -> tuple[list[list[Step]], list[list[Step]]]:
    """(delete generations, create/update generations) from the changes' dependencies."""
    import networkx as nx

    dg, cg, index = _phase_graphs(changes)
    del_gens = [[Step(index[a], "delete") for a in sorted(gen)] for gen in nx.topological_generations(dg)]
    cre_gens = [[Step(index[a], _action(index[a])) for a in sorted(gen)]
                for gen in nx.topological_generations(cg)]
    return del_gens, cre_gens


def phase_steps(changes: list[ResourceChange]) -> tuple[list[tuple[Step, set]], list[tuple[Step, set]]]:
    """The same steps in the same order as :func:`order_steps` (generation by
    generation), each with the addresses of its phase that must be done first."""
    dg, cg, _index = _phase_graphs(changes)
    del_gens, cre_gens = order_steps(changes)
    return ([(s, set(dg.predecessors(s.change.address))) for gen in del_gens for s in gen],
            [(s, set(cg.predecessors(s.change.address))) for gen in cre_gens for s in gen])


def instance_record(of, attrs: dict, private: dict):
    """The state record of an instance after a change: ``of`` names it (anything with
    ``address``, ``type``, ``name``, ``key``, ``provider``, ``dependencies``: a
    ResourceChange or an earlier InstanceRecord), ``attrs``/``private`` are what the
    provider returned."""
    from kvmnet.engine.plan.redact import recorded_sensitive, with_recorded
    from kvmnet.state import InstanceRecord
    attrs = canonical(of.type, attrs)
    # a change knows which attributes are sensitive now; an earlier record, then
    sensitive = of.sensitive if isinstance(of, ResourceChange) else recorded_sensitive(of.private)
    return InstanceRecord(address=of.address, type=of.type, name=of.name, key=of.key,
                          provider=of.provider, id=identity(of.type, attrs), attrs=attrs,
                          private=with_recorded(private, sensitive), dependencies=list(of.dependencies))


def provider_after(rtype: str, after: dict) -> dict:
    """What a provider is given: no computed attributes (but those a replace carries
    over, ``kept_on_replace``, when known), omitted ones as None."""
    t = TYPES[rtype]
    out = {k: v for k, v in after.items()
           if k not in t.computed or (k in t.kept_on_replace and v is not UNKNOWN)}
    for k in t.computed_if_omitted:
        if out.get(k) is UNKNOWN:
            out[k] = None
    return out


def crash_point(variable: str, nth: int) -> None:
    """Test hook for the crash-safety tests (tests/e2e/test_crash.py): SIGKILL this
    process when the environment variable ``variable`` is ``nth``. Two points of the
    walk, counting the changes this walk made live: ``KVMNET_TEST_KILL_BEFORE_WRITE=N``
    (the N-th change is live, its state write has not happened) and
    ``KVMNET_TEST_KILL_AFTER_WRITES=N`` (right after the N-th change's state write).
    Inactive unless the variable is set."""
    import os
    if os.environ.get(variable) == str(nth):
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def pause_point(variable: str, nth: int, stopped: Callable[[], int | None]) -> None:
    """Test hook (tests/real/test_signals.py, test_rollback_consumers.py): when the
    environment variable ``variable`` is ``nth``, say so on stderr and wait (at most
    30 s) for a stop request or for the file ``KVMNET_TEST_RESUME_FILE`` to exist,
    so a test can act between two exact steps (send a signal, change the world).
    ``KVMNET_TEST_PAUSE_AFTER_WRITES=N`` pauses right after the N-th change's state
    write. Inactive unless the variable is set."""
    import os
    if os.environ.get(variable) != str(nth):
        return
    import sys
    import time
    resume = os.environ.get("KVMNET_TEST_RESUME_FILE")
    sys.stderr.write(f"kvmnet-test: paused after {nth}\n")
    sys.stderr.flush()
    end = time.monotonic() + 30
    while stopped() is None and time.monotonic() < end and not (resume and os.path.exists(resume)):
        time.sleep(0.01)


def _never() -> int | None:
    return None


def call_log(provider: str, what: str) -> None:
    """Test hook for the parallel-apply tests (tests/real/test_parallel_apply.py): with
    ``KVMNET_TEST_CALL_LOG=FILE`` every provider call appends ``start|end PROVIDER``
    lines to FILE (one ``write`` each, O_APPEND), from which a test counts how many
    calls of a provider overlapped. Inactive unless the variable is set."""
    import os
    path = os.environ.get("KVMNET_TEST_CALL_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{what} {provider}\n".encode())
        finally:
            os.close(fd)


class Walk:
    def __init__(self, plan: Plan, prepared: Prepared | None, backend, providers, *,
                 lineage: str | None, timings: Timings = NULL,
                 on_event: Callable[[str, str, str], None] | None = None,
                 stop: Callable[[], int | None] = _never,
                 parallelism: int = DEFAULT_PARALLELISM):
        """``stop`` returns a signal number once the walk is asked to stop early;
        ``parallelism``: at most this many changes at once."""
        if parallelism < 1:
            raise ApplyError("parallelism must be at least 1")
        self.parallelism = parallelism
        self.plan = plan
        self.stop = stop
        self.prepared = prepared
        self.backend = backend
        self.providers = providers
        self.timings = timings
        self.on_event = on_event or (lambda addr, action, what: None)
        self.lineage = lineage
        self.report = ApplyReport()
        # values[resource address][key] = attributes, for re-evaluating unknowns
        self.values: dict[str, dict] = defaultdict(dict)
        for c in plan.resource_changes:
            if c.after is not None:
                self.values[_resource_of(c.address)][c.key] = c.after

    # -- state ------------------------------------------------------------------
    def _record(self, c: ResourceChange, attrs: dict, private: dict):
        return instance_record(c, attrs, private)

    def _write(self, fn, durable: bool = True) -> None:
        with self.backend.transaction(durable=durable) as w:
            fn(w)
            if self.lineage is None:
                self.lineage = w.lineage

    # -- unknowns ---------------------------------------------------------------
    def _resolve_after(self, c: ResourceChange) -> dict:
        assert c.after is not None        # only creates and updates are resolved
        if not contains_unknown(provider_after(c.type, c.after)):
            return provider_after(c.type, c.after)
        prepared = self.prepared
        if prepared is None:
            raise ApplyError(f"{c.address}: a value is unknown and there is no configuration to evaluate it")
        decl = prepared.config.resources[_resource_of(c.address)]
        ev = prepared.evaluator
        ev.resolve_resource = lambda t, n: resource_value(prepared.config, self.values, t, n)
        ev.reset_locals()
        from kvmnet.engine.diagnostics import Diagnostics
        diags = Diagnostics()
        for inst in ev.expand(decl, diags):
            if inst.address == c.address:
                desired = canonical(c.type, with_defaults(c.type, inst.name, inst.attrs))
                fresh = c.is_replace or c.before is None
                after = provider_after(c.type, merge_planned(c.type, desired, c.before, fresh))
                if contains_unknown(after):
                    raise ApplyError(f"{c.address}: a value is still unknown after its dependencies were applied")
                return after
        raise ApplyError(f"{c.address}: cannot evaluate: " + "; ".join(str(d) for d in diags.errors))

    # -- the walk -----------------------------------------------------------------
    def run(self) -> ApplyReport:
        changes = [c for c in self.plan.resource_changes if not c.is_noop and c.actions != FORGET]
        phases = phase_steps(changes)
        snap = self.backend.read()
        self.report.records_before = {c.address: snap.instances.get(c.address) for c in changes}
        snap = self._refactor_state(snap)
        # provider-private data per address: from the state; for an object adopted
        # by the refresh (not in the state yet), what the refresh found (plan carries it)
        self.private = {a: dict(r.private or {}) for a, r in snap.instances.items()}
        for c in self.plan.resource_changes:
            if c.private and c.address not in self.private:
                self.private[c.address] = dict(c.private)
        # intents left open by an interrupted run and adopted by the plan: closed
        # with the state write that records their instance
        self.intents: dict[str, list[int]] = defaultdict(list)
        for it in self.backend.open_intents():
            self.intents[it.address].append(it.id)
        self._forget_vanished(snap)
        self._keep_refreshed(snap)
        try:
            self._prepare_providers(changes)
            with self.timings.phase("walk"):     # every change and its state write
                for steps in phases:
                    self._run_phase(steps)
        except _Stop:
            pass
        if self.report.interrupted is None and self.report.failed is not None:
            # a signal that also reached a provider's child process (Ctrl-C goes to the
            # whole process group) fails its step: the run was still interrupted
            self.report.interrupted = self.stop()
        if self.report.failed is None:
            done = {a for a, _ in self.report.done}
            self._verify([c for c in changes if self.report.interrupted is None or c.address in done])
        remaining = {(c.address, a) for c in changes for a in _steps_of(c)}
        early = self.report.failed is not None or self.report.interrupted is not None
        self.report.not_started = sorted(remaining - set(self.report.done)) if early else []
        return self.report

    def _check_stop(self) -> None:
        """End the walk here if a stop was requested (no new step starts)."""
        signum = self.stop()
        if signum is not None:
            self.report.interrupted = signum
            raise _Stop()

    def _refactor_state(self, snap):
        """Moved records renamed and removed-block records dropped, in one state write
        before any provider call (a move's mark is rewritten by its update after)."""
        moves = {c.address: c.moved_from for c in self.plan.resource_changes
                 if c.moved_from is not None and c.moved_from in snap.instances}
        forget = [c.address for c in self.plan.resource_changes
                  if c.actions == FORGET and c.address in snap.instances]
        if not moves and not forget:
            return snap
        renamed = {new: dataclasses.replace(snap.instances[old], address=new, name=c.name, key=c.key)
                   for c in self.plan.resource_changes
                   for new, old in [(c.address, moves.get(c.address))] if old is not None}

        def write(w) -> None:
            for old in moves.values():
                w.remove(old)
            for rec in renamed.values():
                w.put(rec)
            for a in forget:
                w.remove(a)
        self._write(write)
        for new in moves:
            self.report.records_before[new] = renamed[new]
        self.report.forgotten = list(forget)
        return self.backend.read()

    def _prepare_providers(self, changes: list[ResourceChange]) -> None:
        """Each provider with changes loads what it needs to make them
        (``Provider.prepare_apply``); one that cannot fails the run, nothing changed."""
        import kvmnet.engine.schedule  # noqa: F401 - the walk's scheduler, loaded with the rest
        from kvmnet.sdk.provider import ProviderError
        first: dict[str, ResourceChange] = {}
        for c in changes:
            first.setdefault(c.provider, c)
        for name, c in first.items():
            try:
                with self.timings.phase(f"prepare {name}"):
                    self.providers.get(name).prepare_apply()
            except ProviderError as e:
                self.report.failed = (c.address, _steps_of(c)[0], f"provider {name}: {e}")
                raise _Stop() from None

    def _forget_vanished(self, snap) -> None:
        """State entries whose objects are gone live and that nothing re-creates."""
        planned = {c.address for c in self.plan.resource_changes}
        gone = [d.address for d in self.plan.resource_drift
                if d.actions == ["delete"] and d.address not in planned and d.address in snap.instances]
        if gone:
            self._write(lambda w: [w.remove(a) for a in gone])

    def _keep_refreshed(self, snap) -> None:
        """No-op instances: remember what is live now (refreshed or adopted)."""
        recs = []
        for c in self.plan.resource_changes:
            if c.is_noop and c.before is not None:
                old = snap.instances.get(c.address)
                rec = self._record(c, c.before, old.private if old else self.private.get(c.address, {}))
                if old is None or old.attrs != rec.attrs or old.private != rec.private:
                    recs.append(rec)
        if recs:
            def write(w) -> None:
                for r in recs:
                    w.put(r)
                    self._close_intents(w, r.address)
            self._write(write)

    def _run_phase(self, steps: list[tuple[Step, set]]) -> None:
        """Run one phase (deletes, or creates and updates) on the scheduler: each
        change once its dependencies are done, at most ``parallelism`` at once and
        at most what its provider takes (``Provider.concurrency``); a transactional
        provider's ready changes go as one batch. Preparing a change (consumer
        re-check, unknowns, the mark, its intent committed) and writing its result
        happen here, in this thread, one at a time, the results in the order the
        changes finish. While a provider's slots are all busy its next ready change
        is prepared already, so that commit overlaps the running change (a change
        prepared but never started has its intent closed). A stop request
        (``stop``) starts nothing new; the changes already running finish and are
        recorded."""
        from kvmnet.engine.schedule import Job, Scheduler
        if not steps:
            return
        by_addr = {s.change.address: s for s, _deps in steps}
        providers = {s.change.provider: self.providers.get(s.change.provider) for s, _deps in steps}
        jobs = [Job(s.change.address, s.change.provider, frozenset(deps)) for s, deps in steps]
        self._changes: dict[str, object] = {}
        sched = Scheduler(
            jobs, limit=self.parallelism,
            caps={n: getattr(p, "concurrency", 1) for n, p in providers.items()},
            batched=frozenset(n for n, p in providers.items() if getattr(p, "transactional", False)),
            prepare=lambda job: self._prepare(by_addr[job.key]),
            started=lambda job: self.on_event(job.key, by_addr[job.key].action, "start"),
            run_one=lambda job: self._call(providers[job.group], [job])[0][0],
            run_batch=lambda unit: self._call(providers[unit[0].group], unit),
            finished=lambda job, result, error: self._finished(by_addr[job.key], result, error),
            abandon=lambda job: self._abandon(job.key),
            should_stop=lambda: self.stop() is not None or self.report.failed is not None)
        outcome = sched.run()
        for group, peak in outcome.peak.items():
            self.report.peak_concurrency[group] = max(self.report.peak_concurrency.get(group, 0), peak)
        if outcome.failed or self.report.failed is not None:
            raise _Stop()
        self._check_stop()

    def _prepare(self, s: Step) -> None:
        """Build the provider's Change for a step that is about to start."""
        from kvmnet.engine.schedule import Refused
        from kvmnet.sdk.provider import Change, ProviderError
        c = s.change
        try:
            if s.action == "delete":
                self._recheck_consumers(c)
                after = None
                if c.is_replace and c.after is not None:
                    # the new object, for the provider's check before the old one goes
                    known = provider_after(c.type, c.after)
                    after = None if contains_unknown(known) else known
            else:
                if c.is_restart:
                    self._recheck_consumers(c)
                after = self._resolve_after(c)
        except ApplyError as e:
            raise Refused(str(e)) from e
        before = c.before if s.action != "create" else None
        private = provider_private(self.private.get(c.address)) if s.action != "create" else {}
        change = Change(action=s.action, type=c.type, address=c.address, before=before,
                        after=after, private=private, mark=format_mark(self._mark_lineage(), c.address),
                        replacing=c.is_replace)
        try:
            self._record_intent(self.providers.get(c.provider), change, c)
        except ProviderError as e:
            raise Refused(str(e)) from e
        self._changes[c.address] = change

    def _abandon(self, address: str) -> None:
        """A change prepared (its intent recorded) that will not start: the run
        stopped first. Its intent is closed; nothing was done."""
        iid = self.intents[address].pop()
        self._write(lambda w: w.close_intent(iid), durable=False)

    def _call(self, provider, jobs) -> tuple[list, BaseException | None]:
        """In a worker thread: the provider applies these changes; (results, the
        exception that stopped it or None). Times are added when they are written."""
        import time
        batch = [self._changes[j.key] for j in jobs]
        t0 = time.perf_counter()
        results: list = []
        error: BaseException | None = None
        call_log(jobs[0].group, "start")
        try:
            for result in provider.apply(batch):
                results.append(result)
        except Exception as e:      # a provider bug or a library error still stops cleanly
            error = e
        finally:
            call_log(jobs[0].group, "end")
        elapsed = (time.perf_counter() - t0) / max(1, len(batch))
        if len(jobs) == 1 and error is not None and not results:
            raise _Failed(error, elapsed)
        return [(r, elapsed) for r in results], error

    def _finished(self, s: Step, value, error: BaseException | None) -> None:
        """In the walk's thread, in the order changes finish: the state write, or the failure."""
        from kvmnet.engine.schedule import Refused
        from kvmnet.sdk.provider import ProviderError, Restored
        c = s.change
        cause = error.error if isinstance(error, _Failed) else error
        if isinstance(cause, Restored):
            self._put_back(c, cause)
        if error is None:
            result, elapsed = value
            self.timings.add(f"apply {c.provider}", elapsed)
            self._commit(result, c)
            return
        if isinstance(error, _Failed):
            self.timings.add(f"apply {c.provider}", error.elapsed)
            error = error.error
        if isinstance(error, (ProviderError, Refused)):
            message = str(error)
        else:
            message = f"{type(error).__name__}: {error}"
        if self.report.failed is None:
            self.report.failed = (c.address, s.action, message)
        else:
            self.report.also_failed.append((c.address, s.action, message))
        self.on_event(c.address, s.action, "failed")

    def _put_back(self, c: ResourceChange, restored) -> None:
        """A replace's create failed and its provider put the old object back: the
        state holds it again (as it was before this apply, with what was read back)."""
        old = self.report.records_before.get(c.address)
        if old is None:
            return
        rec = instance_record(old, restored.attrs or old.attrs, restored.private or old.private or {})

        def write(w) -> None:
            w.put(rec)
            self._close_intents(w, c.address)     # settled: the old object is what is live
        self._write(write)
        self.private[c.address] = dict(rec.private or {})

    def _mark_lineage(self) -> str:
        if self.lineage is None:
            # the state is new: create it now so marks carry its lineage
            self._write(lambda w: None)
        assert self.lineage is not None   # the first write assigns it
        return self.lineage

    # -- intents (kvmnet.engine.reconcile settles those a crash leaves open) ---------
    def _record_intent(self, provider, change, rc: ResourceChange) -> None:
        """Fix the change's identity and commit its intent before the provider runs
        (in the walk's thread, like every state write)."""
        from kvmnet.state import Intent
        ident = dict(provider.identify(change)) if change.action == "create" else {}
        live_id = identity(change.type, change.after) if change.action == "create" else rc.id
        ident.update(id=live_id, mark=change.mark, exclusive=TYPES[change.type].exclusive)
        [iid] = self.backend.record_intents([Intent(change.address, change.action, change.type,
                                                    rc.provider, ident)])
        self.intents[change.address].append(iid)
        kill_point("walk.intents-recorded")

    def _close_intents(self, w, address: str) -> None:
        for iid in self.intents.pop(address, []):
            w.close_intent(iid)

    def _commit(self, result, c: ResourceChange) -> None:
        action = result.change.action
        nth = len(self.report.done) + 1
        crash_point("KVMNET_TEST_KILL_BEFORE_WRITE", nth)
        kill_point("walk.provider-returned")
        rec = None if action == "delete" else self._record(c, result.attrs or {}, result.private)

        def write(w) -> None:
            w.settle(c.address, rec, self.intents.pop(c.address, []))
        # not fsynced: until a later durable commit (the next intent, the history
        # entry's end) a power loss may undo it, and the change's intent, durable
        # and still open then, makes the next run reconcile it as after a kill here
        self._write(write, durable=False)
        if rec is not None:
            self.values[_resource_of(c.address)][c.key] = rec.attrs
        kill_point("walk.state-written")
        crash_point("KVMNET_TEST_KILL_AFTER_WRITES", nth)
        self.private[c.address] = dict(result.private or {})
        self.report.done.append((c.address, action))
        self.on_event(c.address, action, "done")
        if rec is not None:
            self._postconditions(c, rec.attrs)
        pause_point("KVMNET_TEST_PAUSE_AFTER_WRITES", nth, self.stop)

    def _postconditions(self, c: ResourceChange, applied: dict) -> None:
        """Check the instance's lifecycle postconditions with ``self`` = what was
        applied; a failure stops the walk as a failed change would (the object is
        recorded)."""
        prepared = self.prepared
        inst = prepared.instances.get(c.address) if prepared is not None else None
        if prepared is None or inst is None or not inst.postconditions:
            return
        from kvmnet.engine.config.checks import failed_self
        prepared.evaluator.resolve_resource = lambda t, n: resource_value(prepared.config, self.values, t, n)
        prepared.evaluator.reset_locals()
        for rule, scope in inst.postconditions:
            diag = failed_self(rule, scope, instance_view(prepared.config, inst, applied))
            if diag is not None:
                self._fail_after(c, "postcondition", f"{diag.file}:{diag.line}: {diag.message}")
                return

    def _fail_after(self, c: ResourceChange, action: str, message: str) -> None:
        if self.report.failed is None:
            self.report.failed = (c.address, action, message)
        else:
            self.report.also_failed.append((c.address, action, message))
        self.on_event(c.address, action, "failed")

    def _recheck_consumers(self, c: ResourceChange) -> None:
        if not TYPES[c.type].consumable:
            return
        done = {a for a, act in self.report.done if act == "delete"}
        pending = [x for x in self.plan.resource_changes
                   if (x.deletes or x.is_restart) and x.address not in done]
        recorded = {a: r.attrs for a, r in self.report.records_before.items() if r is not None}
        for ch, blocking in consumer_problems(pending, self.providers, recorded=recorded):
            if ch.address == c.address:
                raise ApplyError(describe_consumers(c.address, blocking))

    def _verify(self, changes: list[ResourceChange]) -> None:
        """Read back every created/updated object and compare with what was asked."""
        snap = self.backend.read()
        wanted: dict[tuple[str, str], list] = defaultdict(list)
        for c in changes:
            if "create" in c.actions or c.actions == ["update"]:
                rec = snap.instances.get(c.address)
                if rec is not None and rec.id:
                    wanted[(c.provider, c.type)].append((c, rec))
        with self.timings.phase("verify"):
            for (pname, rtype), items in wanted.items():
                live = self.providers.get(pname).read(rtype, [r.id for _c, r in items])
                for c, rec in items:
                    obj = live.get(rec.id)
                    if obj is None:
                        self.report.verify_errors.append(
                            f"{c.address}: applied, but {rtype} {rec.id!r} is not there when read back")
                        continue
                    want = {k: v for k, v in provider_after(c.type, c.after).items()
                            if v is not None and v is not UNKNOWN and not contains_unknown(v)}
                    skip = TYPES[rtype].computed | TYPES[rtype].config_only
                    for d in diff_attrs(want, canonical(rtype, obj.attrs), skip=skip):
                        self.report.verify_errors.append(
                            f"{c.address}: applied, but {d.path} reads back as {d.before!r}, "
                            f"not {d.after!r}")


class _Stop(Exception):
    pass


class _Failed(Exception):
    """A single change failed in a worker; carries how long it took."""

    def __init__(self, error: BaseException, elapsed: float):
        super().__init__(str(error))
        self.error = error
        self.elapsed = elapsed
