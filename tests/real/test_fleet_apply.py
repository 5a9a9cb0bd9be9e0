"""``fleet apply`` against the real PostgreSQL and git: the commit is resolved in the
fleet repository to its full id before anything starts (so an abbreviation and the
full id are one commit to ``--retry-failed``), ``--hosts`` reads the same in every
fleet command, a host waiting for a slot reports Pending, and an abort lets the
host in flight finish with its probes while no new slot is granted."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import psycopg
import pytest

from kvmnet.commands.fleet_conn import host_patterns
from kvmnet.engine.fleet import slots
from tests.conftest import ROOT, requires_root
from tests.real.test_fleet_agent import _agent_once, _agent_roles, _committed_repo, _kvmnet, fleet_db  # noqa: F401

pytestmark = [requires_root]


def _apply(pg_db, *argv, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kvmnet", "fleet", "apply", *argv, "--conn-str", pg_db],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_fleet_apply_refuses_a_commit_it_cannot_find_and_starts_nothing(pg_db, fleet_db, tmp_path):
    c = fleet_db
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm01/main.hcl": ""})
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01')")
    plain = tmp_path / "plain"
    plain.mkdir()
    absent = "0123456789abcdef" * 2 + "01234567"
    for argv, cwd, words in [
            (["--commit", absent, "--repo", str(repo)], ROOT, f"commit {absent} is not in {repo}"),
            (["--commit", "main"], repo, '--commit "main" is not a commit id'),
            (["--commit", sha, "--repo", str(plain)], ROOT, f"--repo {plain}: not a git repository"),
            (["--commit", sha, "--repo", str(tmp_path / "none")], ROOT, "no such directory"),
            (["--commit", sha[:10]], plain, f"{plain} is not a git work tree (git rev-parse: fatal: not a git"),
            (["--commit", sha[:10]], repo / ".git", "is not a git work tree (no work tree here): give --repo DIR")]:
        r = _apply(pg_db, *argv, cwd=cwd)
        assert r.returncode == 1 and r.stderr.count("Error:") == 1 and words in r.stderr, (argv, r.stderr)
    assert c.execute("SELECT count(*) FROM fleet_rollouts").fetchone()[0] == 0
    assert c.execute("SELECT count(*) FROM fleet_audit").fetchone()[0] == 0


def test_an_abbreviated_and_a_full_commit_id_are_one_commit_to_retry_failed(pg_db, fleet_db, tmp_path):
    c = fleet_db
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm01/main.hcl": ""})
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01'), ('kvm02')")
    r = _apply(pg_db, "--commit", sha[:8], "--canary", "0", "--max-failures", "1", cwd=repo)   # . is the repo
    assert r.returncode == 0, r.stderr
    assert f"of {sha} started" in r.stdout
    assert c.execute("SELECT commit FROM fleet_rollouts").fetchone()[0] == sha
    assert {d for (d,) in c.execute("SELECT desired_commit FROM fleet_hosts")} == {sha}
    slot, _ = slots.request_slot(c, "kvm01")
    assert slots.report(c, slot.rollout_id, "kvm01", "reverted", "probe failed", token=slot.token)
    assert _kvmnet("fleet", "abort", "--conn-str", pg_db).returncode == 0
    r = _apply(pg_db, "--commit", sha, "--repo", str(repo), "--canary", "0")
    assert r.returncode == 0, r.stderr
    slot, d = slots.request_slot(c, "kvm01")
    assert slot is None and d.verdict == "skip" and "failed or reverted commit" in d.why
    assert slots.request_slot(c, "kvm02")[0] is not None


def test_hosts_is_repeatable_and_comma_separated_in_every_fleet_command(pg_db, fleet_db, tmp_path):
    assert host_patterns(("kvm01", " kvm0[3-4] ,edge*", ",")) == ["kvm01", "kvm0[3-4]", "edge*"]
    c = fleet_db
    hosts = [f"kvm0{i}" for i in range(1, 6)]
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {f"hosts/{h}/main.hcl": "" for h in hosts})
    c.execute("INSERT INTO fleet_hosts (host) SELECT unnest(%s::text[])", (hosts,))
    chosen = ["--hosts", "kvm01", "--hosts", "kvm03,kvm04"]
    plan = _kvmnet("fleet", "plan", *chosen, str(repo), env={"PG_CONN_STR": ""})
    assert plan.returncode == 0, plan.stderr
    assert [ln.split(":")[0] for ln in plan.stdout.splitlines() if ln.startswith("kvm")] == ["kvm01", "kvm03", "kvm04"]
    drift = _kvmnet("fleet", "drift", *chosen, "--wait", "0", "--conn-str", pg_db)
    assert drift.returncode == 0 and "Asked 3 hosts" in drift.stdout, drift.stderr
    r = _apply(pg_db, "--commit", sha, "--repo", str(repo), *chosen)
    assert r.returncode == 0 and "hosts kvm01,kvm03,kvm04" in r.stdout, r.stderr
    desired = dict(c.execute("SELECT host, desired_commit FROM fleet_hosts").fetchall())
    assert {h for h, d in desired.items() if d == sha} == {"kvm01", "kvm03", "kvm04"}
    r = _apply(pg_db, "--commit", sha, "--repo", str(repo), "--hosts", " , ")
    assert r.returncode == 1 and r.stderr.count("Error:") == 1 and "selects nothing" in r.stderr


def test_a_host_waiting_for_a_slot_reports_pending(pg_cluster, pg_db, fleet_db, tmp_path, ns):
    c = fleet_db
    _agent_roles(c, "kvm01", "kvm02")
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm02/main.hcl": f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
                                 'resource "bridge" "lab" {\n  name = "br-pending"\n}\n'})
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01'), ('kvm02')")
    assert _apply(pg_db, "--commit", sha, "--repo", str(repo), "--canary", "1").returncode == 0   # kvm01 first
    r = _agent_once(pg_cluster, c, "kvm02", repo, tmp_path / "kvm02")
    assert r.returncode == 0, r.stderr
    cond, msg, desired, applied, summary = c.execute(
        "SELECT condition, message, desired_commit, applied_commit, plan_summary FROM fleet_hosts "
        "WHERE host = 'kvm02'").fetchone()
    assert (cond, desired, applied) == ("Pending", sha, None)
    assert msg == "waiting for the canaries to be Available: kvm01" and summary["add"] == 1, summary
    status = _kvmnet("fleet", "status", "--json", "--conn-str", pg_db)
    rows = {h["host"]: h for h in json.loads(status.stdout)["hosts"]}
    assert (rows["kvm02"]["condition"], rows["kvm02"]["desired_commit"]) == ("Pending", sha)
    assert rows["kvm02"]["message"] == "waiting for the canaries to be Available: kvm01"
    assert rows["kvm01"]["condition"] == "Pending"             # no agent report yet: the schema's default
    assert c.execute("SELECT count(*) FROM fleet_slots").fetchone()[0] == 0


def _until(pred, timeout: float, what: str, logs):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    tails = "".join(f"\n--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-5:]) for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}{tails}")


def test_abort_grants_no_new_slot_while_the_host_in_flight_finishes_with_its_probes(
        pg_cluster, pg_db, fleet_db, tmp_path, ns):
    c = fleet_db
    hosts = ("kvm01", "kvm02", "kvm03")
    _agent_roles(c, *hosts)
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {f"hosts/{h}/main.hcl": (
        f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
        f'provider "sysctl" {{\n  netns       = "{ns}"\n  persist_dir = "{tmp_path}/persist/{h}"\n}}\n'
        f'resource "bridge" "lab" {{\n  name = "br-{h}"\n}}\n'
        'resource "sysctl_profile" "tuning" {\n  settings = { "net.ipv4.ip_forward" = 1 }\n}\n') for h in hosts})
    procs, logs = [], []
    try:
        for h in hosts:     # slow probes keep the host in flight; the second fails once the change is made
            probes = tmp_path / f"probes-{h}.hcl"
            probes.write_text('kvmnet {\n  probe "slow" {\n    command = ["sleep", "4"]\n    timeout = "8s"\n  }\n'
                              '  probe "no-sysctl-file" {\n    command = ["test", "!", "-e", '
                              f'"{tmp_path}/persist/{h}/90-kvmnet-tuning.conf"]\n    timeout = "1s"\n  }}\n}}\n')
            logs.append(tmp_path / f"{h}.log")
            with open(logs[-1], "w") as log:
                procs.append(subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, "-m", "kvmnet", "agent", "run", "--repo", str(repo),
                     "--host", h, "--loop", "--interval", "0.2", "--lease", "10", "--workdir", str(tmp_path / h),
                     "--conn-str", pg_cluster.conninfo(c.info.dbname, user=h), "--probe-file", str(probes),
                     "--probe-timeout", "2"], cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        _until(lambda: c.execute("SELECT count(*) FROM fleet_hosts").fetchone()[0] == 3, 60, "heartbeats", logs)
        assert _apply(pg_db, "--commit", sha, "--repo", str(repo), "--canary", "0", "--max-unavailable", "1",
                      "--max-failures", "3").returncode == 0

        def conditions():
            return dict(c.execute("SELECT host, condition FROM fleet_hosts").fetchall())
        busy = _until(lambda: [h for h, k in conditions().items() if k == "Progressing"], 60, "a host in flight", logs)
        assert len(busy) == 1
        (flying,) = busy
        others = [h for h in hosts if h != flying]
        _until(lambda: all(conditions()[h] == "Pending" for h in others), 30, "the others Pending", logs)
        assert conditions()[flying] == "Progressing"            # still in flight: the abort lands mid-apply
        abort = _kvmnet("fleet", "abort", "--conn-str", pg_db)
        assert abort.returncode == 0 and "aborting" in abort.stdout, abort.stderr
        _until(lambda: c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "stopped", 60, "stopped", logs)
        time.sleep(1.0)                                         # a few more passes of the waiting agents
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    cond, msg = c.execute("SELECT condition, message FROM fleet_hosts WHERE host = %s", (flying,)).fetchone()
    assert cond == "Reverted" and "no-sysctl-file" in msg, msg     # its probes ran after the abort
    assert dict(c.execute("SELECT host, result FROM fleet_results").fetchall()) == {flying: "reverted"}
    audit = c.execute("SELECT action, actor FROM fleet_audit ORDER BY id").fetchall()
    actions = [a for a, _ in audit]
    assert [h for a, h in audit if a == "slot granted"] == [flying]      # the one slot, before the abort
    assert actions.index("slot granted") < actions.index("rollout abort") < actions.index("host result")
    for h in others:
        assert not (tmp_path / h / "applies.log").exists()
        gone = subprocess.run(["ip", "-n", ns, "link", "show", f"br-{h}"], capture_output=True)
        assert gone.returncode != 0
        cond, desired, msg = c.execute("SELECT condition, desired_commit, message FROM fleet_hosts "
                                       "WHERE host = %s", (h,)).fetchone()
        assert (cond, desired) == ("Available", None) and "was stopped without applying it here" in msg, msg
    assert subprocess.run(["ip", "-n", ns, "link", "show", f"br-{flying}"], capture_output=True).returncode != 0
    with psycopg.connect(pg_db, autocommit=True) as v:
        assert v.execute("SELECT count(*) FROM fleet_slots WHERE lease_expires > now()").fetchone()[0] == 0


def test_a_host_whose_rollout_was_aborted_before_its_turn_says_what_it_holds(
        pg_cluster, pg_db, fleet_db, tmp_path, ns):
    c = fleet_db
    _agent_roles(c, "kvm01", "kvm02", "kvm03")
    repo = tmp_path / "repo"
    held = _committed_repo(repo, {"hosts/kvm02/main.hcl": ""})
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01'), ('kvm02'), ('kvm03')")
    assert _apply(pg_db, "--commit", held, "--repo", str(repo), "--hosts", "kvm02", "--canary", "0").returncode == 0
    assert _agent_once(pg_cluster, c, "kvm02", repo, tmp_path / "kvm02").returncode == 0   # nothing to change
    sha = _committed_repo(repo, {f"hosts/{h}/main.hcl": f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
                                 f'resource "bridge" "lab" {{\n  name = "br-{h}"\n}}\n' for h in ("kvm02", "kvm03")})
    assert _apply(pg_db, "--commit", sha, "--repo", str(repo), "--canary", "1").returncode == 0   # kvm01 first
    canary, _ = slots.request_slot(c, "kvm01")                  # kvm01's agent is applying
    for h in ("kvm02", "kvm03"):
        assert _agent_once(pg_cluster, c, h, repo, tmp_path / h).returncode == 0

    def row(h):
        return c.execute("SELECT condition, desired_commit, applied_commit, message FROM fleet_hosts "
                         "WHERE host = %s", (h,)).fetchone()
    assert row("kvm02") == ("Pending", sha, held, "waiting for the canaries to be Available: kvm01")
    assert _kvmnet("fleet", "abort", "--conn-str", pg_db).returncode == 0
    rid = canary.rollout_id
    assert _agent_once(pg_cluster, c, "kvm02", repo, tmp_path / "kvm02").returncode == 0
    assert row("kvm02") == ("Pending", sha, held, f"rollout #{rid} of commit {sha[:12]} is aborting: "
                                                  "it grants no new slots")
    assert slots.report(c, rid, "kvm01", "applied", "ok", token=canary.token)
    assert c.execute("SELECT state FROM fleet_rollouts WHERE id = %s", (rid,)).fetchone()[0] == "stopped"
    for h in ("kvm02", "kvm03", "kvm02"):                      # a second pass changes nothing more
        assert _agent_once(pg_cluster, c, h, repo, tmp_path / h).returncode == 0
    stopped = f"rollout #{rid} of commit {sha[:12]} was stopped without applying it here; "
    status = _kvmnet("fleet", "status", "--json", "--conn-str", pg_db)
    rows = {h["host"]: h for h in json.loads(status.stdout)["hosts"]}
    assert [rows["kvm02"][k] for k in ("condition", "desired_commit", "applied_commit", "in_sync", "message")] == \
        ["Available", held, held, True, stopped + f"this host holds commit {held[:12]}"]
    assert [rows["kvm03"][k] for k in ("condition", "desired_commit", "applied_commit", "message")] == \
        ["Available", None, None, stopped + "no rollout has applied a commit on this host"]
    for h in ("kvm02", "kvm03"):
        assert not (tmp_path / h / "applies.log").exists()
        assert subprocess.run(["ip", "-n", ns, "link", "show", f"br-{h}"], capture_output=True).returncode != 0
    assert c.execute("SELECT count(*) FROM fleet_results WHERE rollout_id = %s", (rid,)).fetchone()[0] == 1


@pytest.fixture(autouse=True)
def _no_pg_conn_str(monkeypatch):
    monkeypatch.delenv("PG_CONN_STR", raising=False)
