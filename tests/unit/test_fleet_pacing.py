"""The rollout's pure decisions (engine.fleet.pacing), version constraints, and the
kvmnet { required_version } block."""
from __future__ import annotations

import pytest

from kvmnet.engine.fleet.pacing import Fleet, Rollout, budget, canaries, decide, decide_unchanged, lost, next_state
from kvmnet.engine.fleet.versions import BadConstraint, satisfies


def R(**kw):
    args = dict(id=1, commit="abcdef1", state="running", max_unavailable="10%", canary=2, max_failures=1)
    args.update(kw)
    return Rollout(**args)


HOSTS = {f"kvm{i:02d}": () for i in range(1, 26)}


@pytest.mark.parametrize("spec,total,n", [("10%", 25, 2), ("10%", 5, 1), ("1%", 1000, 10), ("100%", 3, 3),
                                         ("3", 25, 3), ("50%", 1, 1)])
def test_budget_rounds_down_with_a_minimum_of_one(spec, total, n):
    assert budget(spec, total) == n


def test_canaries_are_the_labelled_hosts_else_the_first_by_name():
    assert canaries(R(), HOSTS) == ["kvm01", "kvm02"]
    assert canaries(R(), {**HOSTS, "kvm07": ("canary",)}) == ["kvm07"]
    assert canaries(R(canary=0), HOSTS) == []
    assert canaries(R(selector="kvm1*"), HOSTS) == ["kvm10", "kvm11"]


def test_the_rest_wait_for_the_canaries_then_the_budget_holds():
    f = Fleet(R(), HOSTS)
    assert decide(f, "kvm05").verdict == "wait" and "canaries" in decide(f, "kvm05").why
    assert decide(f, "kvm01").verdict == "grant"
    f = Fleet(R(), HOSTS, frozenset({"kvm03", "kvm04"}), {"kvm01": "applied", "kvm02": "applied"})
    assert decide(f, "kvm05").verdict == "wait" and "2 slot(s)" in decide(f, "kvm05").why
    f = Fleet(R(), HOSTS, frozenset({"kvm03"}), {"kvm01": "applied", "kvm02": "applied"})
    assert decide(f, "kvm05").verdict == "grant"
    assert decide(f, "kvm01").verdict == "none"
    assert decide(Fleet(R(selector="kvm2*"), HOSTS), "kvm01").verdict == "none"
    assert decide(Fleet(R(state="paused"), HOSTS), "kvm01").verdict == "wait"


def test_a_host_that_failed_the_commit_before_is_skipped_unless_retried():
    f = Fleet(R(canary=0), HOSTS, failed_before=frozenset({"kvm01"}))
    assert decide(f, "kvm01").verdict == "skip"
    assert decide(Fleet(R(canary=0, retry_failed=True), HOSTS, failed_before=frozenset({"kvm01"})),
                  "kvm01").verdict == "grant"


def test_the_rollout_aborts_over_the_failure_limit_or_on_a_failed_canary_and_ends():
    two = {"kvm05": "failed", "kvm06": "reverted"}
    assert next_state(Fleet(R(), HOSTS, results=two))[0] == "aborting"
    assert next_state(Fleet(R(), HOSTS, results={"kvm05": "failed"})) is None
    assert "canary kvm01" in next_state(Fleet(R(), HOSTS, results={"kvm01": "failed"}))[1]
    assert next_state(Fleet(R(state="aborting"), HOSTS, frozenset({"kvm09"}))) is None
    assert next_state(Fleet(R(state="aborting"), HOSTS))[0] == "stopped"
    every = {h: "applied" for h in HOSTS}
    assert next_state(Fleet(R(), HOSTS, results=every))[0] == "done"
    lapsed = dict(every)
    del lapsed["kvm09"]
    assert next_state(Fleet(R(), HOSTS, results=lapsed, lapsed=frozenset({"kvm09"}))) is None


@pytest.mark.parametrize("version,constraint,ok", [
    ("2.0.0", ">= 2.0", True), ("1.9", ">= 2.0", False), ("1.4.7", "~> 1.4", True), ("2.0", "~> 1.4", False),
    ("1.4.9", "~> 1.4.2", True), ("1.5.0", "~> 1.4.2", False), ("0.1.0", ">= 0.1, < 1", True),
    ("1.0", "!= 1.0", False), ("3.1", "3.1", True)])
def test_version_constraints(version, constraint, ok):
    assert satisfies(version, constraint) is ok


def test_a_bad_constraint_is_refused():
    with pytest.raises(BadConstraint):
        satisfies("1.0", ">= two")


def test_the_kvmnet_block_is_read_and_checked(tmp_path):
    from kvmnet.engine.config.loader import load_config
    (tmp_path / "main.hcl").write_text('kvmnet {\n  required_version = ">= 2.0"\n}\n')
    cfg = load_config(str(tmp_path))
    assert cfg.required_version == ">= 2.0" and not cfg.diagnostics.errors
    (tmp_path / "main.hcl").write_text('kvmnet {\n  required_version = "two"\n  colour = 1\n}\n'
                                       'kvmnet {\n  required_version = ">= 1"\n}\n')
    errors = [str(e) for e in load_config(str(tmp_path)).diagnostics.errors]
    assert any("main.hcl:2" in e and "not a version constraint" in e for e in errors)
    assert any('unknown attribute "colour"' in e for e in errors)
    assert any("main.hcl:6" in e and "set twice (first in " in e and "main.hcl:2)" in e for e in errors)
    (tmp_path / "main.hcl").write_text('kvmnet {\n  required_version = ">= 0.1"\n  backend "sqlite" {}\n}\n')
    cfg = load_config(str(tmp_path))
    assert cfg.required_version == ">= 0.1" and not cfg.diagnostics.errors


def test_a_host_lapsed_and_unseen_for_lost_after_is_lost_and_counts_as_failed():
    r = R(canary=0, max_failures=0, lost_after=60)
    hosts = {"kvm01": (), "kvm02": (), "kvm03": ()}
    f = Fleet(r, hosts, results={"kvm03": "applied"}, lapsed=frozenset({"kvm01", "kvm02"}),
              unseen={"kvm01": 61.4, "kvm02": 59.0})
    gone = lost(f)
    assert list(gone) == ["kvm01"]                       # kvm02 was seen 59 s ago: not yet
    assert gone["kvm01"] == "agent lost: last seen 61 s ago, after its slot's lease lapsed (--lost-after 60 s)"
    assert "never seen" in lost(Fleet(r, hosts, lapsed=frozenset({"kvm02"})))["kvm02"]
    assert lost(Fleet(R(state="stopped", lost_after=60), hosts, lapsed=frozenset({"kvm01"}),
                      unseen={"kvm01": 999.0})) == {}
    # recorded, it is a failure like any other: more than --max-failures 0 aborts
    after = Fleet(r, hosts, results={"kvm03": "applied", "kvm01": "failed"}, lapsed=frozenset({"kvm02"}),
                  unseen={"kvm02": 59.0})
    assert next_state(after)[0] == "aborting"


def test_a_host_with_an_empty_plan_is_available_without_a_slot_unless_paused():
    hosts = {"kvm01": (), "kvm02": (), "kvm03": ()}
    r = R(canary=1, max_unavailable="1")
    waiting = Fleet(r, hosts, live_slots=frozenset({"kvm01"}))
    assert decide(waiting, "kvm02").verdict == "wait"                 # the canary, and the one slot
    d = decide_unchanged(waiting, "kvm02")
    assert d.verdict == "unchanged" and "no changes: commit abcdef1" in d.why
    assert decide_unchanged(Fleet(r, hosts), "kvm01").verdict == "unchanged"
    for state in ("paused", "aborting"):
        assert decide_unchanged(Fleet(R(state=state), hosts), "kvm02").verdict == "wait"
    assert decide_unchanged(Fleet(r, hosts, results={"kvm02": "applied"}), "kvm02").verdict == "unchanged"
    assert decide_unchanged(Fleet(r, hosts, results={"kvm02": "failed"}), "kvm02").verdict == "none"
    assert decide_unchanged(Fleet(r, hosts, failed_before=frozenset({"kvm02"})), "kvm02").verdict == "skip"
    assert decide_unchanged(Fleet(R(selector="kvm01"), hosts), "kvm02").verdict == "none"
