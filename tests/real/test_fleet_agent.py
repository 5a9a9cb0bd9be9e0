"""One agent, once, against the real PostgreSQL: an agent older than the commit's
required_version refuses it and says so; the fleet commands' refusals are one
Error: line."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest

from kvmnet.state import fleet_roles, fleet_schema
from tests.conftest import ROOT, requires_root

pytestmark = [requires_root]


def _kvmnet(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "kvmnet", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


@pytest.fixture
def fleet_db(pg_db):
    """An administrator's connection to the test's database, the fleet schema in place."""
    with psycopg.connect(pg_db, autocommit=True) as c:
        fleet_schema.ensure(c)
        yield c


def _agent_roles(c, *hosts):
    for h in hosts:
        fleet_roles.create_agent_role(c, h)


def _committed_repo(repo, files: dict[str, str]) -> str:
    """A git repository at ``repo`` holding ``files`` (path: text) in one commit: its id."""
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def _start_rollout(pg_db, repo, sha, *options):
    r = _kvmnet("fleet", "apply", "--commit", sha, "--repo", str(repo), *options, "--conn-str", pg_db)
    assert r.returncode == 0, r.stderr


def _agent_once(pg_cluster, c, host, repo, workdir, *options):
    """``kvmnet agent run --once`` as HOST's agent, logged in as HOST's role."""
    return _kvmnet("agent", "run", "--repo", str(repo), "--host", host, "--once", "--workdir", str(workdir),
                   *options, "--conn-str", pg_cluster.conninfo(c.info.dbname, user=host))


def test_an_agent_older_than_the_required_version_refuses_the_commit(pg_cluster, pg_db, fleet_db, tmp_path):
    c = fleet_db
    _agent_roles(c, "kvm01")
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm01/main.hcl":       # and something this kvmnet cannot load
                                 'kvmnet {\n  required_version = ">= 99.0"\n}\n'
                                 'resource "future_thing" "x" {\n  speed = 9\n}\n'})
    assert _agent_once(pg_cluster, c, "kvm01", repo, tmp_path / "w").returncode == 0   # no rollout: idle
    _start_rollout(pg_db, repo, sha, "--canary", "0")
    run = _agent_once(pg_cluster, c, "kvm01", repo, tmp_path / "w")
    assert run.returncode == 1
    cond, msg, version = c.execute("SELECT condition, message, agent_version FROM fleet_hosts").fetchone()
    assert cond == "Failing" and version == "0.1.0"
    assert 'kvmnet 0.1.0 is older than commit' in msg
    assert '(required_version ">= 99.0" at hosts/kvm01/main.hcl:2)' in msg
    assert c.execute("SELECT result FROM fleet_results").fetchone()[0] == "skipped"
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"


def test_fleet_command_refusals_are_one_error_line(pg_db, monkeypatch, tmp_path):
    monkeypatch.delenv("PG_CONN_STR", raising=False)
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm01/main.hcl": ""})
    apply = ["fleet", "apply", "--commit", sha, "--repo", str(repo)]
    for argv, words in [(apply, "no fleet database: pass --conn-str or set PG_CONN_STR"),
                        (["fleet", "forget", "kvm09", "--conn-str", pg_db], 'no host "kvm09"'),
                        (["fleet", "pause", "--conn-str", pg_db], "nothing to pause"),
                        ([*apply, "--lost-after", "0", "--conn-str", pg_db], "--lost-after must be more than 0"),
                        (["fleet", "apply", "--commit", "HEAD", "--conn-str", pg_db], "not a commit id"),
                        ([*apply, "--hosts", "web*", "--conn-str", pg_db], "nothing was started"),
                        ([*apply, "--conn-str", "host=/nonexistent dbname=x"], "fleet database: cannot connect: "),
                        (["fleet", "grant", "postgres", "--conn-str", pg_db], "is not a kvmnet agent's"),
                        (["agent", "run", "--repo", ".", "--host", "h", "--once", "--conn-str", pg_db,
                          "--probe-file", "/nonexistent/probes"], "/nonexistent/probes"),
                        (["agent", "run", "--repo", ".", "--host", "h", "--once"], "no fleet database"),
                        (["fleet", "status", "--conn-str", "sslmode=sometimes"], 'invalid sslmode value: "sometimes"'),
                        ([*apply, "--conn-str", "sslmode=sometimes"], 'invalid sslmode value: "sometimes"'),
                        (["agent", "run", "--repo", ".", "--host", "h", "--once", "--conn-str",
                          pg_db + " sslmode=sometimes"], "connection string is not valid"),
                        (["agent", "run", "--repo", ".", "--host", "h", "--once", "--conn-str",
                          pg_db + " user=nosuchrole"], "PostgreSQL refused the agent's login"),
                        (["agent", "run", "--repo", ".", "--host", "h", "--once", "--conn-str",
                          "host=/nonexistent dbname=x"], "PostgreSQL unreachable for 1 s")]:
        t0 = time.monotonic()
        r = _kvmnet(*argv, env={"KVMNET_PG_RETRY_SECONDS": "1"})
        assert r.returncode == 1, argv
        assert r.stderr.count("Error:") == 1 and words in r.stderr, (argv, r.stderr)
        assert time.monotonic() - t0 < 15, argv        # a bad string or a refused login is not retried


def test_an_agent_without_its_directory_or_repo_fails_and_says_so(pg_cluster, pg_db, fleet_db, tmp_path):
    c = fleet_db
    _agent_roles(c, "kvm01", "kvm02")
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm01/main.hcl": ""})
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01'), ('kvm02')")
    _start_rollout(pg_db, repo, sha, "--canary", "0", "--max-failures", "5")
    for host, where, words in [("kvm02", repo, "has no directory hosts/kvm02"),
                               ("kvm01", tmp_path / "nowhere", "cannot fetch commit: git clone")]:
        r = _agent_once(pg_cluster, c, host, where, tmp_path / host)
        assert r.returncode == 1
        cond, msg = c.execute("SELECT condition, message FROM fleet_hosts WHERE host = %s", (host,)).fetchone()
        assert cond == "Failing" and words in msg, msg
        assert c.execute("SELECT result FROM fleet_results WHERE host = %s", (host,)).fetchone()[0] == "failed"


def test_the_lease_keeper_stops_the_walk_when_the_slot_is_lost_or_unreachable(pg_db, fleet_db, tmp_path):
    from pathlib import Path

    from kvmnet.engine.fleet import rollout, slots
    from kvmnet.engine.fleet.agent import AgentConfig, LeaseKeeper
    c = fleet_db
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01')")
    rollout.start(c, commit="abcdef1" * 5 + "0" * 5, actor="ops", max_unavailable="1", canary=0, max_failures=0)
    slot, _ = slots.request_slot(c, "kvm01", lease_seconds=0.9)
    cfg = AgentConfig(conninfo=pg_db, repo=".", host="kvm01", workdir=Path(tmp_path), version="0.1.0")
    keeper = LeaseKeeper(cfg, slot)
    keeper.start()
    time.sleep(1.2)
    assert keeper.stop_signal() is None                    # renewed: still held
    c.execute("UPDATE fleet_slots SET token = token + 1000")  # granted again elsewhere
    time.sleep(0.8)
    assert keeper.lost and keeper.stop_signal() is not None
    keeper.stop()
    cfg.conninfo = f"host={tmp_path} dbname=x"             # the server cannot be reached
    slot, _ = slots.request_slot(c, "kvm01", lease_seconds=0.9)
    keeper = LeaseKeeper(cfg, slot)
    keeper.start()
    assert keeper.stop_signal() is None
    time.sleep(0.8)
    assert not keeper.lost and keeper.stop_signal() is not None   # under a third of the lease left
    keeper.stop()


def test_a_probe_the_change_breaks_reverts_the_host_and_counts_as_a_failure(pg_cluster, pg_db, fleet_db, tmp_path,
                                                                            ns):
    c = fleet_db
    _agent_roles(c, "kvm01")
    persist = tmp_path / "sysctl.d"
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm01/main.hcl": (
        f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
        f'provider "sysctl" {{\n  netns       = "{ns}"\n  persist_dir = "{persist}"\n}}\n'
        'resource "bridge" "lab" {\n  name = "br-probe"\n}\n'
        'resource "sysctl_profile" "tuning" {\n  settings = { "net.ipv4.ip_forward" = 1 }\n}\n')})
    # passes before the change, fails once the change wrote its sysctl file
    (tmp_path / "probes.txt").write_text(
        'kvmnet {\n  probe "no-sysctl-file" {\n'
        f'    command = ["test", "!", "-e", "{persist}/90-kvmnet-tuning.conf"]\n    timeout = "1s"\n  }}\n}}\n')
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01')")
    _start_rollout(pg_db, repo, sha, "--canary", "0", "--max-failures", "0")
    r = _agent_once(pg_cluster, c, "kvm01", repo, tmp_path / "w",
                    "--probe-file", str(tmp_path / "probes.txt"), "--probe-timeout", "1")
    assert r.returncode == 1, r.stderr
    cond, msg, applied = c.execute("SELECT condition, message, applied_commit FROM fleet_hosts").fetchone()
    assert cond == "Reverted" and "no-sysctl-file" in msg and applied is None
    assert c.execute("SELECT result FROM fleet_results").fetchone()[0] == "reverted"
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "stopped"     # over --max-failures 0
    gone = subprocess.run(["ip", "-n", ns, "link", "show", "br-probe"], capture_output=True)
    assert gone.returncode != 0                              # the revert removed what the apply made


def test_an_agent_whose_plan_is_empty_is_available_without_a_slot(pg_cluster, pg_db, fleet_db, tmp_path):
    c = fleet_db
    _agent_roles(c, "kvm01", "kvm02")
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm02/main.hcl": ""})        # nothing to change on kvm02
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01'), ('kvm02')")
    _start_rollout(pg_db, repo, sha, "--canary", "1")
    r = _agent_once(pg_cluster, c, "kvm02", repo, tmp_path / "kvm02")
    assert r.returncode == 0, r.stderr                      # not held back by the canary kvm01
    cond, msg, applied = c.execute("SELECT condition, message, applied_commit FROM fleet_hosts "
                                   "WHERE host = 'kvm02'").fetchone()
    assert cond == "Available" and applied == sha and msg == f"no changes: commit {sha[:12]} is already in place"
    assert c.execute("SELECT result FROM fleet_results WHERE host = 'kvm02'").fetchone()[0] == "applied"
    assert c.execute("SELECT count(*) FROM fleet_audit WHERE action = 'slot granted'").fetchone()[0] == 0
    assert not (tmp_path / "kvm02" / "applies.log").exists()
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "running"   # kvm01 still to go


def test_an_agents_pass_records_a_lost_host_so_the_rollout_ends(pg_cluster, pg_db, fleet_db, tmp_path):
    from kvmnet.engine.fleet import slots
    c = fleet_db
    _agent_roles(c, "kvm01", "kvm02")
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm02/main.hcl": ""})
    c.execute("INSERT INTO fleet_hosts (host, last_seen) VALUES ('kvm01', now()), ('kvm02', now())")
    _start_rollout(pg_db, repo, sha, "--canary", "0", "--max-failures", "1", "--lost-after", "0.5")
    assert slots.request_slot(c, "kvm01", lease_seconds=0.2)[0] is not None   # kvm01's agent then dies
    time.sleep(0.6)
    # kvm02's pass finds kvm01 lost; nothing to change on kvm02
    assert _agent_once(pg_cluster, c, "kvm02", repo, tmp_path / "kvm02").returncode == 0
    assert c.execute("SELECT result FROM fleet_results WHERE host = 'kvm02'").fetchone()[0] == "applied"
    result, msg = c.execute("SELECT result, message FROM fleet_results WHERE host = 'kvm01'").fetchone()
    assert result == "failed" and msg.startswith("agent lost: last seen ")
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"
    status = _kvmnet("fleet", "status", "--conn-str", pg_db)
    assert "kvm01 (Failing): agent lost: last seen" in status.stdout, status.stdout


def test_an_agent_keeps_the_pg_state_its_host_names_and_only_its_own(pg_cluster, pg_db, fleet_db, tmp_path, ns):
    """A host whose directory names ``backend "pg"`` is applied by its agent into its
    PostgreSQL workspace (not a file on the host nobody else sees), so the operator's
    ``fleet plan`` reads what the host holds; another agent's role can neither read
    nor write that workspace's rows."""
    c = fleet_db
    _agent_roles(c, "kvm01", "kvm02")
    repo = tmp_path / "repo"
    sha = _committed_repo(repo, {"hosts/kvm01/main.hcl": 'kvmnet {\n  backend "pg" {}\n}\n'
                                 f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
                                 'resource "bridge" "lab" {\n  name = "br-pgstate"\n}\n'})
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01')")
    _start_rollout(pg_db, repo, sha, "--canary", "0")
    r = _kvmnet("agent", "run", "--repo", str(repo), "--host", "kvm01", "--once", "--workdir", str(tmp_path / "w"),
                "--conn-str", pg_cluster.conninfo(c.info.dbname, user="kvm01"), env={"PG_CONN_STR": ""})
    assert r.returncode == 0, r.stderr
    assert c.execute("SELECT result FROM fleet_results").fetchone()[0] == "applied"
    assert not (tmp_path / "w" / "state.db").exists()
    assert c.execute("SELECT address FROM kvmnet.instances WHERE workspace = 'kvm01'").fetchall() \
        == [("bridge.lab",)]
    plan = _kvmnet("fleet", "plan", "--hosts", "kvm01", str(repo), env={"PG_CONN_STR": pg_db})
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("kvm01: no changes (1 resources)"), plan.stdout
    with psycopg.connect(pg_cluster.conninfo(c.info.dbname, user="kvm02"), autocommit=True) as k2:
        assert k2.execute("SELECT count(*) FROM kvmnet.instances").fetchone()[0] == 0
        assert k2.execute("UPDATE kvmnet.workspaces SET serial = 0 WHERE workspace = 'kvm01'").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            k2.execute("INSERT INTO kvmnet.outputs (workspace, name, value, sensitive) "
                       "VALUES ('kvm01', 'x', '1', false)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            k2.execute("CREATE TABLE kvmnet.mine (x int)")
    assert c.execute("SELECT serial FROM kvmnet.workspaces WHERE workspace = 'kvm01'").fetchone()[0] > 0
    # a state kept in another schema (backend "pg" { schema_name = "lab" }): grant names it
    r = _kvmnet("fleet", "grant", "kvm02", "--state-schema", "lab", "--conn-str", pg_db)
    assert r.returncode == 0, r.stderr
    with psycopg.connect(pg_cluster.conninfo(c.info.dbname, user="kvm02"), autocommit=True) as k2:
        k2.execute("INSERT INTO lab.workspaces (workspace, lineage, serial, format_version) "
                   "VALUES ('kvm02', 'l', 0, 1)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            k2.execute("INSERT INTO lab.workspaces (workspace, lineage, serial, format_version) "
                       "VALUES ('kvm01', 'l', 0, 1)")
    r = _kvmnet("fleet", "grant", "kvm02", "--state-schema", "Bad-Name", "--conn-str", pg_db)
    assert r.returncode == 1 and r.stderr.count("Error:") == 1 and "schema_name 'Bad-Name'" in r.stderr, r.stderr


def test_an_agent_running_under_another_hosts_role_is_refused_by_postgresql(pg_cluster, fleet_db, tmp_path):
    c = fleet_db
    _agent_roles(c, "kvm01")
    r = _kvmnet("agent", "run", "--repo", str(tmp_path), "--host", "kvm02", "--once", "--workdir", str(tmp_path / "w"),
                "--conn-str", pg_cluster.conninfo(c.info.dbname, user="kvm01"))
    assert r.returncode == 1
    assert r.stderr.count("Error:") == 1 and "row-level security policy for table \"fleet_hosts\"" in r.stderr, r.stderr
    assert c.execute("SELECT count(*) FROM fleet_hosts").fetchone()[0] == 0
