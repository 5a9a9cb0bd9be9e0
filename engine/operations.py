"""Running a plan as one recorded operation: history entry, walk, rollback, stop.

This is the library API the command line calls (as libnmstate keeps checkpoint and
rollback in the library, not in ``nmstatectl``): :func:`run_plan` opens a history
entry, runs the plan with the one walk (:class:`kvmnet.engine.walk.Walk`), rolls back
on failure when asked, and always ends the entry: ``applied``, ``failed``,
``rolled back`` or ``interrupted``. :func:`roll_back` undoes what an apply completed
by running its inverse plan (:mod:`kvmnet.engine.plan.inverse`) with the same walk,
so a rollback or a confirm-revert gets consumer checks before deletes, per-step
state writes and verify like any apply. :func:`stop_on_signals` turns SIGINT and
SIGTERM into a stop request the walk honours after the step in progress.

Nothing here prints: callers are told through ``on_event`` (each step) and
:class:`RollbackEvents`.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from kvmnet.engine.plan.inverse import UNDOES, CannotInvert, inverse_plan
from kvmnet.engine.config.sensitivity import masked
from kvmnet.engine.plan.model import Plan, encode
from kvmnet.engine.resources import TYPES
from kvmnet.engine.timings import NULL, Timings
from kvmnet.engine.walk import DEFAULT_PARALLELISM, ApplyReport, Walk

from kvmnet.state.records import FAILED, INTERRUPTED, ROLLED_BACK, SUCCESS

__all__ = ["SUCCESS", "FAILED", "ROLLED_BACK", "INTERRUPTED"]

EventFn = Callable[[str, str, str], None]


def _never() -> int | None:
    return None


# -- stopping on a signal ---------------------------------------------------------------
class StopRequest:
    """The first SIGINT/SIGTERM received, as a callable for ``Walk(stop=...)``."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> int | None:
        return self.signum


@contextmanager
def stop_on_signals(signals=(signal.SIGINT, signal.SIGTERM)) -> Iterator[StopRequest]:
    """While inside, the first of ``signals`` asks the walk to stop after the step in
    progress instead of killing the process mid-step; a second one acts as usual
    (KeyboardInterrupt, or termination), for an operator who means *now*. Outside
    the main thread (no signal handlers there) nothing is installed."""
    req = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield req
        return
    previous = {s: signal.getsignal(s) for s in signals}

    def handler(signum, frame):
        if req.signum is None:
            req.signum = signum
            for s, h in previous.items():
                signal.signal(s, h)
    for s in signals:
        signal.signal(s, handler)
    try:
        yield req
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# -- rollback -----------------------------------------------------------------------------
@dataclass
class Rollback:
    """What a rollback undid. Actions are the apply's (``create`` undone by a delete)."""
    undone: list[tuple[str, str]] = field(default_factory=list)
    not_undone: list[tuple[str, str]] = field(default_factory=list)   # left as applied
    failed: tuple[str, str, str] | None = None                        # (address, action, message)
    verify_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.failed is None and not self.not_undone and not self.verify_errors

    @property
    def summary(self) -> str:
        if self.complete:
            return f"rolled back {len(self.undone)} change(s)"
        return (f"rollback incomplete: {len(self.undone)} undone, "
                f"{len(self.not_undone)} left as applied")


class RollbackEvents:
    """What a caller is told while a rollback runs (every hook does nothing here)."""

    def begin(self, report: ApplyReport, count: int) -> None:
        """``count`` completed changes of ``report`` are about to be undone."""

    def step(self, address: str, action: str, what: str) -> None:
        """A walk event of the inverse plan (``action`` is the walk's own)."""

    def end(self, rollback: Rollback) -> None:
        """The rollback is over."""


def roll_back(backend, prepared, providers, report: ApplyReport, *,
              events: RollbackEvents | None = None, timings: Timings = NULL,
              parallelism: int = DEFAULT_PARALLELISM) -> Rollback:
    """Undo ``report.done`` by walking its inverse plan; the state is written after
    each step. The first failing step stops it, leaving the rest as applied."""
    events = events or RollbackEvents()
    events.begin(report, len(report.done))
    rb = Rollback()
    if not report.done:
        events.end(rb)
        return rb
    snap = backend.read()
    try:
        inverse = inverse_plan(report.done, report.records_before, snap.instances,
                               lineage=snap.lineage, serial=snap.serial)
    except CannotInvert as e:
        address = str(e).split(":", 1)[0]
        action = next((act for a, act in reversed(report.done) if a == address), "?")
        rb.failed = (address, action, str(e).split(": ", 1)[-1])
        rb.not_undone = list(reversed(report.done))
        events.end(rb)
        return rb
    walked = Walk(inverse, prepared, backend, providers, lineage=snap.lineage, timings=timings,
                  on_event=events.step, parallelism=parallelism).run()
    rb.undone = [(a, UNDOES[act]) for a, act in walked.done]
    if walked.failed is not None:
        address, action, message = walked.failed
        rb.failed = (address, UNDOES.get(action, action), message)
    rb.verify_errors = list(walked.verify_errors)
    undone = set(rb.undone)
    rb.not_undone = [d for d in reversed(report.done) if d not in undone]
    rb.notes = _computed_differences(report.records_before, backend.read().instances,
                                     [a for a, act in walked.done if act == "create"])
    events.end(rb)
    return rb


def _computed_differences(before: dict, now: dict, recreated: list[str]) -> list[str]:
    """Computed attributes (a network's uuid) that differ after re-creating an object."""
    out = []
    for address in recreated:
        earlier, rec = before.get(address), now.get(address)
        if earlier is None or rec is None:
            continue
        for k in sorted(TYPES[earlier.type].computed):
            a, b = earlier.attrs.get(k), rec.attrs.get(k)
            if a is not None and a != b:
                out.append(f"{address}: {k} was {a!r}, is now {b!r} (re-created objects get new ones)")
    return out


# -- one recorded run -----------------------------------------------------------------------
@dataclass
class Outcome:
    report: ApplyReport
    history_id: int
    status: str
    summary: str
    rollback: Rollback | None = None

    def count(self, action: str) -> int:
        return sum(1 for _a, act in self.report.done if act == action)


def snapshot_before(plan: Plan, providers) -> dict:
    """What providers save about the objects this apply is about to change (a
    provider that cannot say records its error instead; a bug is raised)."""
    from kvmnet.sdk.provider import ProviderError
    out: dict = {}
    by: dict = {}
    for c in plan.changes:
        if c.id:
            by.setdefault((c.provider, c.type), []).append(c.id)
    for (pname, rtype), ids in by.items():
        try:
            snap = providers.get(pname).snapshot(rtype, ids)
        except ProviderError as e:   # a snapshot is best effort; never blocks the apply
            snap = {"error": str(e)}
        if snap:
            out[f"{pname}/{rtype}"] = snap
    return out


def begin_history(backend, plan: Plan, providers, command: str) -> int:
    """Record the run before it changes anything; its history ID."""
    from kvmnet.state import HistoryEntry
    entry = HistoryEntry(command=command, serial_before=backend.read().serial,
                         changes=[{"address": c.address,
                                   "action": c.kind,
                                   "before": encode(masked(c.before, c.sensitive)),
                                   "after": encode(masked(c.after, c.sensitive))}
                                  for c in plan.changes],
                         snapshot=snapshot_before(plan, providers))
    with backend.transaction() as w:
        return w.add_history(entry)


def end_history(backend, history_id: int, status: str, summary: str) -> None:
    from kvmnet.state.records import now_iso
    serial = backend.read().serial
    with backend.transaction() as w:
        w.update_history(history_id, status=status, summary=summary, serial_after=serial,
                         finished=now_iso())


def _summary(report: ApplyReport) -> str:
    n = {act: sum(1 for _a, x in report.done if x == act) for act in ("create", "update", "delete")}
    return f"{n['create']} added, {n['update']} changed, {n['delete']} destroyed"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def save_outputs(backend, prepared, *, destroy: bool = False) -> None:
    """The output values the state now gives, kept with it (kvmnet.engine.outputs)."""
    from kvmnet.engine.outputs import save_outputs as save
    save(backend, prepared, destroy=destroy)


def run_plan(backend, plan: Plan, prepared, providers, *, command: str,
             rollback_on_failure: bool = False, timings: Timings = NULL,
             on_event: EventFn | None = None, rollback_events: RollbackEvents | None = None,
             stop: Callable[[], int | None] = _never,
             parallelism: int | None = None) -> Outcome:
    """Run ``plan`` as one recorded operation; the history entry always ends.

    A stopped walk (``stop``) ends ``interrupted`` and is not rolled back: the
    operator asked to stop, and the state records every step that was made."""
    hid = begin_history(backend, plan, providers, command)
    try:
        report = Walk(plan, prepared, backend, providers, lineage=backend.read().lineage,
                      timings=timings, on_event=on_event, stop=stop,
                      parallelism=parallelism or DEFAULT_PARALLELISM).run()
        report.history_id = hid
        summary = _summary(report)
        rb = None
        if report.interrupted is not None:
            status = INTERRUPTED
            summary = f"interrupted by {signal_name(report.interrupted)}: {summary}"
        elif report.ok:
            status = SUCCESS
            save_outputs(backend, prepared, destroy=plan.destroy)
        elif rollback_on_failure:
            rb = roll_back(backend, prepared, providers, report, events=rollback_events,
                           timings=timings, parallelism=parallelism or DEFAULT_PARALLELISM)
            status, summary = (ROLLED_BACK if rb.complete else FAILED), rb.summary
        else:
            status = FAILED
        end_history(backend, hid, status, summary)
    except BaseException as e:
        _end_quietly(backend, hid, e)
        raise
    return Outcome(report, hid, status, summary, rb)


def revert(backend, prepared, providers, report: ApplyReport, *, why: str,
           events: RollbackEvents | None = None) -> Rollback:
    """Roll back a finished apply (not confirmed in time, or asked to) and end its
    history entry: ``rolled back`` when every change was undone, else ``failed``."""
    try:
        rb = roll_back(backend, prepared, providers, report, events=events)
        save_outputs(backend, prepared)
    except BaseException as e:
        _end_quietly(backend, report.history_id, e, prefix=f"{why}: ")
        raise
    if report.history_id is not None:
        end_history(backend, report.history_id, ROLLED_BACK if rb.complete else FAILED,
                    f"{why}: {rb.summary}")
    return rb


def _end_quietly(backend, history_id: int | None, error: BaseException, prefix: str = "") -> None:
    """End the entry of a run an unexpected error stopped, if the state still takes a
    write (the error that stopped the run is the one reported)."""
    if history_id is None:
        return
    status = INTERRUPTED if isinstance(error, KeyboardInterrupt) else FAILED
    what = "interrupted" if status == INTERRUPTED else f"stopped by {type(error).__name__}: {error}"
    try:
        end_history(backend, history_id, status, prefix + what)
    except Exception:   # noqa: BLE001, S110 - the original error is raised by the caller
        pass
