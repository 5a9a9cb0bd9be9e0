"""The ready-set scheduler (engine/schedule.py) with plain functions as work."""
from __future__ import annotations

import threading
import time

import pytest

from kvmnet.engine.schedule import Job, Refused, Scheduler, check_graph


class Recorder:
    """Work that records starts, ends and how many of each group ran at once."""

    def __init__(self, delay: float = 0.0, fail: set = frozenset()):
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()
        self.events: list[tuple[str, object]] = []
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.total = 0
        self.peak_total = 0

    def run(self, job):
        with self.lock:
            self.events.append(("start", job.key))
            self.now[job.group] = self.now.get(job.group, 0) + 1
            self.peak[job.group] = max(self.peak.get(job.group, 0), self.now[job.group])
            self.total += 1
            self.peak_total = max(self.peak_total, self.total)
        time.sleep(self.delay)
        with self.lock:
            self.now[job.group] -= 1
            self.total -= 1
            self.events.append(("end", job.key))
        if job.key in self.fail:
            raise RuntimeError(f"{job.key} broke")
        return f"value of {job.key}"

    def position(self, what: str, key) -> int:
        return self.events.index((what, key))


def schedule(jobs, rec, *, limit=10, caps=None, **kw):
    finished = []
    main = threading.get_ident()

    def on_finished(job, value, error):
        assert threading.get_ident() == main     # bookkeeping stays in the caller's thread
        finished.append((job.key, value, str(error) if error else None))

    out = Scheduler(jobs, limit=limit, caps=caps or {}, run_one=rec.run, finished=on_finished, **kw).run()
    return out, finished


def test_limit_one_runs_in_the_given_order():
    jobs = [Job("a", "p"), Job("b", "q"), Job("c", "p", frozenset({"a"})), Job("d", "q")]
    rec = Recorder()
    out, finished = schedule(jobs, rec, limit=1, caps={"p": 4, "q": 4})
    assert out.done == ["a", "b", "c", "d"]
    assert [k for k, _v, _e in finished] == ["a", "b", "c", "d"]
    assert finished[0] == ("a", "value of a", None)
    assert out.ok and out.not_started == [] and out.peak == {"p": 1, "q": 1}


def test_dependencies_finish_before_their_dependents_start():
    # a diamond and a chain, all in one group with room for everything
    jobs = [Job("net", "p"), Job("nic1", "p", frozenset({"net"})), Job("nic2", "p", frozenset({"net"})),
            Job("fwd", "p", frozenset({"nic1", "nic2"})), Job("x", "p"), Job("y", "p", frozenset({"x"}))]
    rec = Recorder(delay=0.01)
    out, _ = schedule(jobs, rec, limit=10, caps={"p": 10})
    assert sorted(out.done) == sorted(j.key for j in jobs)
    for j in jobs:
        for dep in j.after:
            assert rec.position("end", dep) < rec.position("start", j.key)


def test_group_caps_and_the_global_limit_are_respected_and_reached():
    jobs = [Job(f"l{i}", "libvirt") for i in range(12)] + [Job(f"b{i}", "iproute") for i in range(12)]
    rec = Recorder(delay=0.02)
    out, _ = schedule(jobs, rec, limit=5, caps={"libvirt": 4, "iproute": 2})
    assert out.ok and len(out.done) == 24
    assert rec.peak == {"libvirt": 4, "iproute": 2}       # each cap reached, never passed
    assert rec.peak_total <= 5
    assert out.peak == rec.peak


def test_global_limit_below_a_cap_wins():
    jobs = [Job(i, "libvirt") for i in range(8)]
    rec = Recorder(delay=0.02)
    out, _ = schedule(jobs, rec, limit=2, caps={"libvirt": 4})
    assert rec.peak == {"libvirt": 2} and out.peak == {"libvirt": 2}


def test_a_group_without_a_cap_runs_one_at_a_time():
    jobs = [Job(i, "thirdparty") for i in range(4)]
    rec = Recorder(delay=0.01)
    schedule(jobs, rec, limit=10, caps={})
    assert rec.peak == {"thirdparty": 1}


def test_first_failure_stops_new_work_and_running_jobs_are_recorded():
    # b fails quickly while a and c are still running; d (ready) and e (after a) never start
    gate = threading.Event()

    class Slow(Recorder):
        def run(self, job):
            if job.key in ("a", "c"):
                gate.wait(2)
            if job.key == "b":
                try:
                    return super().run(job)
                finally:
                    threading.Timer(0.05, gate.set).start()
            return super().run(job)

    jobs = [Job("a", "p"), Job("b", "p"), Job("c", "p"), Job("d", "p"), Job("e", "p", frozenset({"a"}))]
    rec = Slow(fail={"b"})
    out, finished = schedule(jobs, rec, limit=3, caps={"p": 3})
    assert out.failed and out.failed[0][0] == "b" and "b broke" in str(out.failed[0][1])
    assert sorted(out.done) == ["a", "c"]                  # already running: finished and recorded
    assert out.not_started == ["d", "e"]
    assert ("start", "d") not in rec.events and ("start", "e") not in rec.events
    ended = [k for k, _v, _e in finished]                    # in the order they ended:
    assert ended[0] == "b" and sorted(ended[1:]) == ["a", "c"]  # a and c share one gate


def test_dependents_of_a_failed_job_never_start_even_serially():
    jobs = [Job("a", "p"), Job("b", "p", frozenset({"a"})), Job("c", "p")]
    out, _ = schedule(jobs, Recorder(fail={"a"}), limit=1, caps={"p": 1})
    assert [k for k, _e in out.failed] == ["a"]
    assert out.done == [] and out.not_started == ["b", "c"]


def test_prepare_can_refuse_a_job():
    def prepare(job):
        if job.key == "b":
            raise Refused("b is still in use")

    jobs = [Job("a", "p"), Job("b", "p", frozenset({"a"})), Job("c", "p", frozenset({"b"}))]
    out, finished = schedule(jobs, Recorder(), limit=4, caps={"p": 4}, prepare=prepare)
    assert out.done == ["a"]
    assert [(k, str(e)) for k, e in out.failed] == [("b", "b is still in use")]
    assert finished[-1] == ("b", None, "b is still in use")
    assert out.not_started == ["c"]


def test_a_batched_group_takes_every_ready_job_at_once():
    calls = []

    def run_batch(unit):
        calls.append([j.key for j in unit])
        return [f"v{j.key}" for j in unit], None

    jobs = [Job("n1", "lv"), Job("n2", "lv"), Job("f1", "nft", frozenset({"n1"})),
            Job("f2", "nft", frozenset({"n1"})), Job("f3", "nft")]
    out, finished = schedule(jobs, Recorder(), limit=1, caps={"lv": 4, "nft": 1},
                             batched=frozenset({"nft"}), run_batch=run_batch)
    assert out.ok and sorted(out.done) == sorted(j.key for j in jobs)
    assert calls[0] == ["f3"] or ["f1", "f2"] in calls or calls == [["f1", "f2", "f3"]]
    assert sum(len(c) for c in calls) == 3 and out.peak["nft"] == 1
    assert ("f1", "vf1", None) in finished


def test_a_batch_that_stops_part_way_reports_what_it_did():
    def run_batch(unit):
        return ["v1"], RuntimeError("commit of the second failed")

    jobs = [Job("f1", "nft"), Job("f2", "nft"), Job("f3", "nft")]
    out, finished = schedule(jobs, Recorder(), limit=4, caps={"nft": 1},
                             batched=frozenset({"nft"}), run_batch=run_batch)
    assert out.done == ["f1"]
    assert [k for k, _e in out.failed] == ["f2"]
    assert out.not_started == ["f3"]
    assert finished == [("f1", "v1", None), ("f2", None, "commit of the second failed")]


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        Scheduler([], limit=0, caps={}, run_one=lambda j: None)


@pytest.mark.parametrize("jobs, message", [
    ([Job("a", "p", frozenset({"zz"}))], "unknown job"),
    ([Job("a", "p", frozenset({"b"})), Job("b", "p", frozenset({"a"}))], "cycle"),
    ([Job("a", "p"), Job("a", "q")], "share a key"),
])
def test_bad_graphs_are_refused_up_front(jobs, message):
    with pytest.raises(ValueError, match=message):
        check_graph(jobs)


def test_an_empty_run_does_nothing():
    out, finished = schedule([], Recorder())
    assert out.ok and out.done == [] and finished == []


def test_a_long_chain_and_a_wide_fan():
    jobs = [Job(0, "p")] + [Job(i, "p", frozenset({i - 1})) for i in range(1, 2500)]
    jobs += [Job(2500 + i, "q") for i in range(2500)]
    out = Scheduler(jobs, limit=4, caps={"p": 4, "q": 4}, run_one=lambda j: None).run()
    assert out.ok and len(out.done) == 5000
    chain = [k for k in out.done if k < 2500]
    assert chain == list(range(2500))


def test_a_stop_request_starts_nothing_new_and_lets_running_jobs_finish():
    asked = threading.Event()

    class Asking(Recorder):
        def run(self, job):
            if job.key == "a":
                asked.set()       # e.g. SIGINT arrives while "a" runs
            return super().run(job)

    jobs = [Job("a", "p"), Job("b", "p"), Job("c", "p", frozenset({"a"}))]
    out, finished = schedule(jobs, Asking(delay=0.01), limit=4, caps={"p": 1},
                             should_stop=asked.is_set)
    assert out.stopped and out.ok
    assert out.done == ["a"] and out.not_started == ["b", "c"]
    assert finished == [("a", "value of a", None)]


def test_a_busy_groups_next_job_is_prepared_ahead_and_starts_without_waiting():
    # one slot: b is prepared while a runs (the caller's intent commit overlaps a),
    # and is started as a ends, with no prepare in between
    log = []
    a_running = threading.Event()

    def prepare(job):
        log.append(("prepare", job.key, a_running.is_set()))

    class Marking(Recorder):
        def run(self, job):
            if job.key == "a":
                a_running.set()
                time.sleep(0.05)
                a_running.clear()
            return super().run(job)

    jobs = [Job("a", "p"), Job("b", "p"), Job("c", "p")]
    out, finished = schedule(jobs, Marking(), limit=4, caps={"p": 1}, prepare=prepare,
                             started=lambda job: log.append(("start", job.key)))
    assert out.ok and out.done == ["a", "b", "c"]
    assert log[:2] == [("prepare", "a", False), ("start", "a")]
    assert ("prepare", "b", True) in log               # prepared while a was running
    assert log.index(("prepare", "b", True)) < log.index(("start", "b"))
    assert [k for k, _v, _e in finished] == ["a", "b", "c"]


def test_jobs_prepared_ahead_that_never_start_are_abandoned():
    abandoned, prepared = [], []
    jobs = [Job("a", "p"), Job("b", "p"), Job("c", "p", frozenset({"a"}))]
    out, _ = schedule(jobs, Recorder(delay=0.02, fail={"a"}), limit=4, caps={"p": 1},
                      prepare=lambda job: prepared.append(job.key),
                      abandon=lambda job: abandoned.append(job.key))
    assert [k for k, _e in out.failed] == ["a"]
    assert prepared == ["a", "b"] and abandoned == ["b"]   # c was never ready
    assert out.not_started == ["b", "c"]


def test_a_job_refused_while_prepared_ahead_stops_the_run_after_the_running_one():
    def prepare(job):
        if job.key == "b":
            raise Refused("b is still in use")

    jobs = [Job("a", "p"), Job("b", "p"), Job("c", "p")]
    out, finished = schedule(jobs, Recorder(delay=0.02), limit=4, caps={"p": 1}, prepare=prepare)
    assert out.done == ["a"]                                 # running already: finished
    assert [(k, str(e)) for k, e in out.failed] == [("b", "b is still in use")]
    assert out.not_started == ["c"]
    assert ("a", "value of a", None) in finished and ("b", None, "b is still in use") in finished


def test_nothing_is_prepared_ahead_when_running_serially():
    prepared, events = [], []

    def run(job):
        events.append(("run", job.key))
        return job.key

    out = Scheduler([Job("a", "p"), Job("b", "p")], limit=1, caps={"p": 1}, run_one=run,
                    prepare=lambda job: events.append(("prepare", job.key))).run()
    assert out.ok and events == [("prepare", "a"), ("run", "a"), ("prepare", "b"), ("run", "b")]
