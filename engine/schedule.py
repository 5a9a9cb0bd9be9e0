"""A ready-set scheduler: run jobs of a dependency graph on a thread pool.

A job runs once everything it depends on has finished successfully. At most
``limit`` jobs run at once overall, and at most ``caps[group]`` of one group (a
provider instance says how much concurrency it takes). What a job does happens in
a worker thread; everything else happens in the caller's thread, one at a time:
``prepare`` (before a job starts; it may refuse the job), ``started`` (as it is
handed to a worker) and ``finished`` (as each job ends, in the order they end), so
the caller's own bookkeeping, such as the state writes, stays serial and ordered
with no locks.

Preparing ahead: while every slot of a group is busy, its next ready jobs (one per
slot) are prepared already, so the caller's preparation (the walk commits an
intent, an fsync) overlaps the running jobs instead of delaying the next start;
when a slot frees, a prepared job starts at once. A job prepared ahead that never
starts (the run stopped) is handed to ``abandon`` and counts as not started.
Batched groups are not prepared ahead.

With ``limit = 1`` no thread is started: each job runs in the caller's thread,
in the order given, as a plain loop would. Otherwise the pool has as many threads
as can be busy at once (the caps of the groups present, at most ``limit``): a
worker opening its own connection or socket is paid for once per thread.

The first failure stops new work: jobs already running finish and are reported
(successes too), nothing else starts. So does ``should_stop()`` turning true (a
signal asked the run to end), checked before each start.

Jobs of a ``batched`` group are not run one by one: when such a group has a free
slot, every ready job of it starts together as one unit (a transactional
provider commits them at once); ``run_batch`` gets the list.
"""
from __future__ import annotations

from bisect import insort
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Generic, Hashable, Iterable, TypeVar

K = TypeVar("K", bound=Hashable)


class Refused(Exception):
    """Raised by ``prepare`` to fail a job before it starts (the message says why)."""


@dataclass
class Job(Generic[K]):
    key: K
    group: str
    after: frozenset = frozenset()        # keys of jobs that must succeed first


@dataclass
class Outcome(Generic[K]):
    done: list = field(default_factory=list)           # keys, in the order they finished
    failed: list = field(default_factory=list)         # (key, exception), in that order
    not_started: list = field(default_factory=list)    # keys never started
    peak: dict = field(default_factory=dict)           # group -> most jobs running at once
    stopped: bool = False                              # should_stop() said so: nothing new started

    @property
    def ok(self) -> bool:
        return not self.failed


def check_graph(jobs: Iterable[Job]) -> None:
    """Every dependency names a job of the run, and no job waits on itself (a
    cycle would leave jobs that can never start: refused up front)."""
    jobs = list(jobs)
    keys = {j.key for j in jobs}
    if len(keys) != len(jobs):
        raise ValueError("two jobs share a key")
    for j in jobs:
        missing = set(j.after) - keys
        if missing:
            raise ValueError(f"job {j.key!r} depends on unknown job(s) {sorted(map(str, missing))}")
    left = {j.key: len(set(j.after)) for j in jobs}
    dependents: dict = {}
    for j in jobs:
        for d in set(j.after):
            dependents.setdefault(d, []).append(j.key)
    free = [k for k, n in left.items() if not n]
    while free:
        k = free.pop()
        del left[k]
        for other in dependents.get(k, ()):
            left[other] -= 1
            if not left[other]:
                free.append(other)
    if left:
        raise ValueError(f"dependency cycle among {sorted(map(str, left))}")


class Scheduler(Generic[K]):
    """One run over ``jobs``; see the module docstring. ``run_one(job)`` (or
    ``run_batch(jobs)`` for a batched group) is called in a worker thread and
    returns a value handed to ``finished(job, value, None)``; an exception it
    raises is handed over as ``finished(job, None, exc)`` and counts as a failure.
    For a batch, ``run_batch`` returns ``(values, exc)``: a value per job that
    succeeded, in job order, and the exception that stopped the rest (or None)."""

    def __init__(self, jobs: list[Job[K]], *, limit: int, caps: dict[str, int],
                 run_one: Callable[[Job[K]], object],
                 run_batch: Callable[[list[Job[K]]], tuple[list, BaseException | None]] | None = None,
                 batched: frozenset[str] = frozenset(),
                 prepare: Callable[[Job[K]], None] = lambda job: None,
                 started: Callable[[Job[K]], None] = lambda job: None,
                 finished: Callable[[Job[K], object, BaseException | None], None] = lambda j, v, e: None,
                 abandon: Callable[[Job[K]], None] = lambda job: None,
                 should_stop: Callable[[], bool] = lambda: False):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        check_graph(jobs)
        self.jobs = list(jobs)
        self.limit = limit
        self.caps = {g: max(1, int(c)) for g, c in caps.items()}
        self.run_one = run_one
        self.run_batch = run_batch
        self.batched = batched
        self.prepare = prepare
        self.started = started
        self.finished = finished
        self.abandon = abandon
        self.should_stop = should_stop

    def _cap(self, group: str) -> int:
        return min(self.limit, self.caps.get(group, 1))

    def run(self) -> Outcome[K]:
        out: Outcome[K] = Outcome()
        order = {j.key: i for i, j in enumerate(self.jobs)}
        by_key = {j.key: j for j in self.jobs}
        missing = {j.key: len(set(j.after)) for j in self.jobs}
        dependents: dict[K, list[K]] = {}
        for j in self.jobs:
            for d in set(j.after):
                dependents.setdefault(d, []).append(j.key)
        ready: dict[str, list[int]] = {}          # group -> orders of its ready jobs, sorted
        for j in self.jobs:
            if not missing[j.key]:
                ready.setdefault(j.group, []).append(order[j.key])
        running: dict[Future, list[Job[K]]] = {}
        load: dict[str, int] = {}
        started: set[K] = set()
        ahead: dict[str, list[Job[K]]] = {}       # group -> jobs prepared ahead, in order
        stop = False

        def first(g: str) -> int | None:
            """The order of the job ``g`` would start next (prepared ones come first)."""
            if ahead.get(g):
                return order[ahead[g][0].key]
            orders = ready.get(g)
            return orders[0] if orders else None

        def next_group() -> str | None:
            """The group whose next job comes first, among those with room."""
            best, best_order = None, None
            for g in set(ready) | set(ahead):
                o = first(g)
                if o is not None and load.get(g, 0) < self._cap(g) and (best_order is None or o < best_order):
                    best, best_order = g, o
            return best

        def refuse(job: Job[K], e: Refused) -> None:
            nonlocal stop
            started.add(job.key)
            out.failed.append((job.key, e))
            self.finished(job, None, e)
            stop = True

        groups = {j.group for j in self.jobs}
        workers = max(1, min(self.limit, sum(self._cap(g) for g in groups)))
        pool: ThreadPoolExecutor | _Inline
        pool = _Inline() if self.limit == 1 else ThreadPoolExecutor(workers, thread_name_prefix="kvmnet-apply")

        def start_ready() -> None:
            nonlocal stop
            while not stop and len(running) < self.limit:
                if self.should_stop():
                    out.stopped = stop = True
                    return
                group = next_group()
                if group is None:
                    return
                if ahead.get(group):
                    unit = [ahead[group].pop(0)]
                else:
                    orders = ready[group]
                    take = len(orders) if group in self.batched else 1
                    unit = [self.jobs[i] for i in orders[:take]]
                    del orders[:take]
                    refused = self._prepare(unit)
                    if refused is not None:
                        job, e = refused
                        for j in unit[:unit.index(job)]:    # prepared, never to start
                            self.abandon(j)
                        refuse(job, e)
                        return
                started.update(j.key for j in unit)
                load[group] = load.get(group, 0) + 1
                out.peak[group] = max(out.peak.get(group, 0), load[group])
                for j in unit:
                    self.started(j)
                if group in self.batched:
                    running[pool.submit(self._batch, unit)] = unit
                else:
                    running[pool.submit(self.run_one, unit[0])] = unit

        def prepare_ahead() -> None:
            """Prepare the next ready job of each busy group, one per slot."""
            if isinstance(pool, _Inline):
                return
            for g in sorted(ready, key=lambda g: ready[g][0] if ready[g] else len(order)):
                queue = ahead.setdefault(g, [])
                while (not stop and g not in self.batched and ready[g]
                       and len(queue) < self._cap(g)):
                    if self.should_stop():
                        return
                    job = self.jobs[ready[g].pop(0)]
                    refused = self._prepare([job])
                    if refused is not None:
                        refuse(*refused)
                        return
                    queue.append(job)

        with pool:
            while True:
                start_ready()
                prepare_ahead()
                if not running:
                    break
                done = set(running) if isinstance(pool, _Inline) else wait(running, return_when=FIRST_COMPLETED)[0]
                ended = [(f, running.pop(f)) for f in sorted(done, key=lambda f: order[running[f][0].key])]
                for fut, unit in ended:
                    load[unit[0].group] -= 1
                    stop = stop or _failed(fut, unit, self.batched)
                if not isinstance(pool, _Inline):
                    # the freed slots take more work before the results are written:
                    # a provider call and the caller's state write overlap
                    start_ready()
                for fut, unit in ended:
                    ok_keys = self._settle(fut, unit, out)
                    if len(ok_keys) < len(unit):
                        stop = True
                        # a batch that stopped part way never ran the jobs after the failed one
                        failed_keys = {k for k, _e in out.failed}
                        started.difference_update(j.key for j in unit
                                                  if j.key not in ok_keys and j.key not in failed_keys)
                    for k in ok_keys:
                        for other in dependents.get(k, ()):
                            missing[other] -= 1
                            if not missing[other]:
                                insort(ready.setdefault(by_key[other].group, []), order[other])
        for queue in ahead.values():
            for job in queue:
                self.abandon(job)
        out.not_started = [j.key for j in self.jobs if j.key not in started]
        return out

    def _batch(self, unit: list[Job[K]]) -> tuple[list, BaseException | None]:
        if self.run_batch is None:
            raise RuntimeError("a batched group needs run_batch")
        return self.run_batch(unit)

    def _prepare(self, unit: list[Job[K]]) -> tuple[Job[K], Refused] | None:
        for j in unit:
            try:
                self.prepare(j)
            except Refused as e:
                return j, e
        return None

    def _settle(self, fut: Future, unit: list[Job[K]], out: Outcome[K]) -> list[K]:
        """Report a finished unit to ``finished``; the keys that succeeded."""
        if unit[0].group not in self.batched:
            job = unit[0]
            try:
                value = fut.result()
            except Exception as e:
                out.failed.append((job.key, e))
                self.finished(job, None, e)
                return []
            out.done.append(job.key)
            self.finished(job, value, None)
            return [job.key]
        try:
            values, error = fut.result()
        except Exception as e:
            values, error = [], e
        ok = []
        for job, value in zip(unit, values, strict=False):   # values may stop short
            out.done.append(job.key)
            self.finished(job, value, None)
            ok.append(job.key)
        if error is not None or len(values) < len(unit):
            job = unit[len(values)] if len(values) < len(unit) else unit[-1]
            err = error if error is not None else RuntimeError("the batch ended early")
            out.failed.append((job.key, err))
            self.finished(job, None, err)
        return ok


def _failed(fut: Future, unit: list, batched: frozenset) -> bool:
    """Whether a finished unit failed (a batch: any of its jobs), without reporting it."""
    if fut.exception() is not None:
        return True
    if unit[0].group in batched:
        values, error = fut.result()
        return error is not None or len(values) < len(unit)
    return False


class _Inline:
    """``limit = 1``: no threads at all, each job runs when it is submitted (the
    plain serial loop, in the caller's thread)."""

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as e:
            fut.set_exception(e)
        return fut
