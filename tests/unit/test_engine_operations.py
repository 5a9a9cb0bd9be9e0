"""Inverse plans (pure) and :mod:`kvmnet.engine.operations` (one recorded run: the
walk, rollback as an inverse plan through the same walk, the history entry that
always ends, a stop request) with the FAKE provider of test_engine_plan."""
from __future__ import annotations

import signal

import pytest

from kvmnet.engine import operations
from kvmnet.engine.plan.inverse import CannotInvert, inverse_plan
from kvmnet.engine.plan.model import CREATE, DELETE, REPLACE, UPDATE, Plan
from kvmnet.sdk.provider import Consumer
from kvmnet.state import InstanceRecord
from tests.unit.test_engine_plan import Harness, LAB, world  # noqa: F401 - fixture


@pytest.fixture
def h(tmp_path, world):  # noqa: F811 - the imported fixture
    return Harness(tmp_path, world)


def rec(address: str, attrs: dict, deps=()) -> InstanceRecord:
    rtype, name = address.split(".")
    return InstanceRecord(address=address, type=rtype, name=name, key=None, provider="libvirt",
                          id=attrs.get("name", name), attrs=attrs, dependencies=list(deps))


# -- the inverse plan -----------------------------------------------------------------------

def test_inverse_of_each_action():
    old = {"network.u": rec("network.u", {"name": "u", "autostart": True}),
           "network.d": rec("network.d", {"name": "d"}, deps=["bridge.x"]),
           "network.r": rec("network.r", {"name": "r", "mode": "nat"})}
    now = {"network.u": rec("network.u", {"name": "u", "autostart": False}),
           "network.c": rec("network.c", {"name": "c"}, deps=["network.u"]),
           "network.r": rec("network.r", {"name": "r", "mode": "route"})}
    done = [("network.u", "update"), ("network.d", "delete"), ("network.r", "delete"),
            ("network.r", "create"), ("network.c", "create")]
    plan = inverse_plan(done, old, now, lineage="L", serial=7)
    assert (plan.lineage, plan.serial) == ("L", 7)
    got = {c.address: c for c in plan.resource_changes}
    assert got["network.u"].actions == UPDATE
    assert (got["network.u"].before, got["network.u"].after) == (now["network.u"].attrs, old["network.u"].attrs)
    assert got["network.c"].actions == DELETE and got["network.c"].after is None
    assert got["network.c"].dependencies == ["network.u"] and got["network.c"].id == "c"
    assert got["network.d"].actions == CREATE and got["network.d"].before is None
    assert got["network.d"].after == old["network.d"].attrs and got["network.d"].dependencies == ["bridge.x"]
    assert got["network.r"].actions == REPLACE and got["network.r"].after == {"name": "r", "mode": "nat"}


@pytest.mark.parametrize("done, old, now, why", [
    ([("network.a", "create")], {}, {}, "not in the state"),
    ([("network.a", "delete")], {}, {}, "kept no record"),
    ([("network.a", "update")], {"network.a": rec("network.a", {"name": "a"})}, {}, "no longer in the state"),
])
def test_what_cannot_be_inverted_is_named(done, old, now, why):
    with pytest.raises(CannotInvert, match=f"network.a: .*{why}"):
        inverse_plan(done, old, now, lineage=None, serial=0)


# -- one recorded run -----------------------------------------------------------------------

def run(h, **kw):
    plan, prepared, ps, be = h.plan(**{k: kw.pop(k) for k in ("destroy",) if k in kw})
    assert not plan.errors, [str(e) for e in plan.errors]
    return operations.run_plan(be, plan, prepared, ps, command="test", **kw), be


def history(be):
    return be.history(1)[0]


TWO = LAB % "true" + 'resource "bridge" "br0" {\n  mtu = 1500\n  depends_on = [network.lab]\n}\n'


def test_success_ends_the_history_entry(h):
    h.config(LAB % "true")
    out, be = run(h)
    assert out.status == "applied" and out.report.ok
    e = history(be)
    assert (e.id, e.status, e.summary) == (out.history_id, "applied", "1 added, 0 changed, 0 destroyed")
    assert e.finished and e.serial_after == be.read().serial


def test_failure_without_rollback_ends_failed(h):
    h.config(TWO)
    h.world.fail_on.add("bridge.br0")
    out, be = run(h)
    assert out.status == "failed" and out.rollback is None
    assert history(be).status == "failed" and list(h.state().instances) == ["network.lab"]


def test_rollback_is_the_inverse_plan_walked(h):
    h.config(TWO)
    h.world.fail_on.add("bridge.br0")
    h.world.calls.clear()
    out, be = run(h, rollback_on_failure=True)
    assert out.status == "rolled back" and out.rollback.complete
    assert out.rollback.undone == [("network.lab", "create")]
    assert h.world.calls == [("create", "network.lab"), ("create", "bridge.br0"), ("delete", "network.lab")]
    assert h.state().instances == {} and ("network", "lab") not in h.world.objects
    assert (history(be).status, history(be).summary) == ("rolled back", "rolled back 1 change(s)")


def test_rollback_refuses_a_delete_something_now_uses(h):
    """The undo delete gets the consumer check of any delete: a domain that started
    using the new network meanwhile keeps it (and the state says so)."""
    h.config(TWO)
    h.world.fail_on.add("bridge.br0")

    class Events(operations.RollbackEvents):
        def begin(self, report, count):
            h.world.consumers[("network", "lab")] = [Consumer("domain", "web", "running")]
    out, be = run(h, rollback_on_failure=True, rollback_events=Events())
    rb = out.rollback
    assert not rb.complete and rb.undone == []
    assert rb.failed[:2] == ("network.lab", "create") and "in use by domain(s) web" in rb.failed[2]
    assert rb.not_undone == [("network.lab", "create")]
    assert ("network", "lab") in h.world.objects and "network.lab" in h.state().instances
    assert (history(be).status, history(be).summary) == ("failed", "rollback incomplete: 0 undone, 1 left as applied")


def test_rollback_restores_an_update_and_recreates_a_delete_with_a_note(h):
    h.config(LAB % "true" + 'resource "bridge" "old" {\n  mtu = 1500\n}\n')
    run(h)
    before = h.state().instances
    h.config(LAB % "false" + 'resource "bridge" "new" {\n  mtu = 1500\n  depends_on = [network.lab]\n}\n')
    h.world.fail_on.add("bridge.new")
    out, be = run(h, rollback_on_failure=True)
    assert out.rollback.complete and sorted(out.rollback.undone) == [("bridge.old", "delete"),
                                                                     ("network.lab", "update")]
    now = h.state().instances
    assert sorted(now) == ["bridge.old", "network.lab"]
    assert now["network.lab"].attrs == before["network.lab"].attrs
    assert now["bridge.old"].attrs == before["bridge.old"].attrs
    assert out.status == "rolled back"


def test_a_stop_request_ends_the_run_interrupted(h):
    h.config(TWO)
    out, be = run(h, stop=lambda: signal.SIGTERM if h.world.calls else None)
    assert out.status == "interrupted" and out.report.interrupted == signal.SIGTERM
    assert out.report.done == [("network.lab", "create")]
    assert out.report.not_started == [("bridge.br0", "create")]
    assert history(be).summary == "interrupted by SIGTERM: 1 added, 0 changed, 0 destroyed"
    assert list(h.state().instances) == ["network.lab"]


def test_an_unexpected_error_still_ends_the_history_entry(h):
    h.config(LAB % "true")

    def boom(address, action, what):
        raise RuntimeError("renderer broke")
    with pytest.raises(RuntimeError):
        run(h, on_event=boom)
    plan_be = h.plan()[3]
    e = history(plan_be)
    assert e.status == "failed" and e.summary == "stopped by RuntimeError: renderer broke" and e.finished


def test_revert_ends_the_entry_with_why(h):
    h.config(LAB % "true")
    out, be = run(h)
    _, prepared, ps, be = h.plan()
    rb = operations.revert(be, prepared, ps, out.report, why="not confirmed within 2 s")
    assert rb.complete and h.state().instances == {}
    assert (history(be).status, history(be).summary) == ("rolled back",
                                                         "not confirmed within 2 s: rolled back 1 change(s)")


def test_stop_on_signals_records_the_first_and_restores_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with operations.stop_on_signals() as stop:
        assert stop() is None
        signal.raise_signal(signal.SIGTERM)
        assert stop() == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is before     # a second one acts as usual
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_empty_inverse_plan_is_a_plan():
    assert inverse_plan([], {}, {}, lineage=None, serial=0).resource_changes == []
    assert isinstance(inverse_plan([], {}, {}, lineage=None, serial=0), Plan)


def test_a_saved_plan_keeps_each_changes_dependencies(h):
    h.config(TWO)
    plan = h.plan()[0]
    again = Plan.from_json(plan.to_json())
    assert {c.address: c.dependencies for c in again.resource_changes} == \
        {c.address: c.dependencies for c in plan.resource_changes} == {"network.lab": [], "bridge.br0": ["network.lab"]}


def test_a_step_failed_by_the_signal_itself_is_still_an_interruption(h):
    """Ctrl-C reaches a provider's child process too and fails its step: the run
    ends interrupted (and is not rolled back), the failure kept in the report."""
    h.config(TWO)
    h.world.fail_on.add("bridge.br0")
    out, be = run(h, rollback_on_failure=True,
                  stop=lambda: signal.SIGINT if ("create", "bridge.br0") in h.world.calls else None)
    assert out.status == "interrupted" and out.rollback is None
    assert out.report.failed[:2] == ("bridge.br0", "create")
    assert list(h.state().instances) == ["network.lab"]
