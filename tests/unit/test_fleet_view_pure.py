"""The fleet view's and fleet plan's pure parts: selection, staleness, ages, the
metrics text, the markdown comment."""
from __future__ import annotations

import pytest

from kvmnet.commands.fleet_plan_cmd import human_lines, markdown
from kvmnet.engine.fleet.plan import HostPlan, discover, select, totals
from kvmnet.engine.fleet.view import HostStatus, RolloutStatus, age_text, is_stale, metrics_text, summary


def test_select_by_glob_and_labels():
    names = ["kvm01", "kvm02", "kvm10", "web1"]
    assert select(names) == names
    assert select(names, ["kvm0[1-9]"]) == ["kvm01", "kvm02"]
    assert select(names, ["kvm0[2-9]", "web*"]) == ["kvm02", "web1"]
    labels = {"kvm01": ["canary", "rack1"], "kvm10": ["rack1"]}
    assert select(names, labels_of=labels, labels=["rack1"]) == ["kvm01", "kvm10"]
    assert select(names, ["kvm1*"], labels, ["rack1", "canary"]) == []


def test_discover_lists_host_dirs_by_name(tmp_path):
    for h in ("kvm02", "kvm01", ".git"):
        (tmp_path / "hosts" / h).mkdir(parents=True)
    (tmp_path / "hosts" / "README.md").write_text("x")
    assert [n for n, _ in discover(tmp_path)] == ["kvm01", "kvm02"]
    with pytest.raises(FileNotFoundError, match="no such directory"):
        discover(tmp_path / "nope")


@pytest.mark.parametrize("age, stale", [(None, True), (0.0, False), (90.0, False), (90.1, True)])
def test_stale_after_n_intervals(age, stale):
    assert is_stale(age, 30.0, 3) is stale


@pytest.mark.parametrize("seconds, text", [(None, "never"), (-2, "0s ago"), (59.9, "59s ago"), (60, "1m ago"),
                                           (3600 * 5 + 1, "5h ago"), (86400 * 3, "3d ago")])
def test_age_text(seconds, text):
    assert age_text(seconds) == text


def test_metrics_escape_label_values_and_skip_unknowns():
    hosts = [HostStatus(host='we"ird\\host\n', applied_commit="abc", desired_commit="abc", seen_age=1.0,
                        drift={"resources": 2}),
             HostStatus(host="kvm02", seen_age=None, drift={"resources": "bad"})]
    hosts[1].stale = True
    text = metrics_text(hosts, None)
    assert 'kvmnet_fleet_host_up{host="we\\"ird\\\\host\\n"} 1' in text
    assert 'kvmnet_fleet_host_up{host="kvm02"} 0' in text
    assert 'kvmnet_fleet_host_drift_resources{host="kvm02"}' not in text       # a malformed report is no figure
    assert 'kvmnet_fleet_host_last_seen_seconds{host="kvm02"}' not in text     # never seen: no age
    assert "kvmnet_fleet_rollout_active 0" in text and "kvmnet_fleet_rollout_info" not in text
    text = metrics_text(hosts, RolloutStatus(id=4, commit="abc", state="done", slots_in_use=0, results={}))
    assert "kvmnet_fleet_rollout_active 0" in text
    assert 'kvmnet_fleet_rollout_results{result="reverted"} 0' in text


def test_summary_counts():
    hosts = [HostStatus(host="a", desired_commit="x", applied_commit="x", condition="Available",
                        drift={"resources": 1}),
             HostStatus(host="b", desired_commit="x", applied_commit=None, condition="Failing", stale=True)]
    assert summary(hosts) == {"hosts": 2, "in_sync": 1, "stale": 1, "drifted": 1, "Available": 1, "Failing": 1}


def test_markdown_and_human_summary():
    plans = [HostPlan(host="kvm01", dir="hosts/kvm01", add=1, resources=3, changes=[("bridge.b", "create")]),
             HostPlan(host="kvm02", dir="hosts/kvm02", errors=["main.hcl:2: a | broken\nthing"])]
    t = totals(plans)
    assert t == {"hosts": 2, "failed": 1, "changed": 1, "add": 1, "change": 0, "destroy": 0}
    md = markdown(plans, {}, t)
    assert "| `kvm01` | 1 | 0 | 0 | 3 | no agent report |" in md
    assert "| `kvm02` | ❌ | | | | main.hcl:2: a \\| broken thing |" in md
    assert "- `+` `bridge.b` (create)" in md
    lines = human_lines(plans, None, t)
    assert lines[0] == "kvm01: 1 to add, 0 to change, 0 to destroy (3 resources); drift: unknown (no fleet database)"
    assert lines[1] == "kvm02: failed to plan (see the error)"


def test_plan_host_of_the_example_fleet_and_of_an_empty_dir(tmp_path):
    """The documented example plans without a state (everything to create); a host
    directory without configuration is an error, not an empty plan."""
    from pathlib import Path

    from kvmnet.engine.fleet.plan import plan_host
    example = Path(__file__).resolve().parents[2] / "examples" / "fleet-repo"
    hosts = dict(discover(example))
    p = plan_host("kvm02", hosts["kvm02"], state_location=lambda host, d: str(tmp_path / f"{host}.db"))
    assert (p.errors, p.add, p.change, p.destroy, p.resources) == ([], 5, 0, 0, 5)
    assert ("module.nat[1].network.this", "create") in p.changes
    (tmp_path / "empty").mkdir()
    p = plan_host("empty", tmp_path / "empty")
    assert p.errors == ["no configuration files (*.hcl) in the host directory"]
