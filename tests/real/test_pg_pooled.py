"""The PostgreSQL state and the fleet behind a transaction-mode PgBouncer (the
session's throwaway pooler, each client's transactions taken by server sessions in
turn): the CLI's apply / plan / destroy of bridges in a namespace, a second apply
refused while the first holds the lease, a paused holder's lease expiring and its
write fenced off, and an agent's loop (heartbeats, a slot granted, renewed and
reported) through the pooler. Row leases and transaction-scoped locks hold nothing
in the session, so the pooler changes nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.state import EXCLUSIVE, open_pg_state
from kvmnet.state import fleet_roles, fleet_schema
from tests.conftest import ROOT
from tests.real.test_pg_state import CONFIG, kvmnet, assert_a_paused_holder_is_fenced_off

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (PostgreSQL and PgBouncer)")]


def test_apply_plan_destroy_through_the_pooler_and_a_second_apply_is_refused(ns, pg_pooled_db, tmp_path):
    cfg = tmp_path / "kvm01"
    cfg.mkdir()
    (cfg / "main.hcl").write_text(CONFIG.format(ns=ns, mtu=1400))
    env = {"PG_CONN_STR": pg_pooled_db}
    st = open_pg_state(pg_pooled_db, "kvm01")
    with st.lock(EXCLUSIVE, "kvmnet apply (operator A)"):
        r = kvmnet(cfg, "apply", "--auto-approve", env=env)
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
        assert r.returncode == 1 and len(errors) == 1 and "operator A" in errors[0], r.stderr
        assert in_ns(ns, "ip", "link", "show", "br-pg", check=False).returncode != 0
    r = kvmnet(cfg, "apply", "--auto-approve", env=env)
    assert r.returncode == 0, r.stderr
    assert "mtu 1400" in in_ns(ns, "ip", "link", "show", "br-pg").stdout
    assert set(st.read().instances) == {"bridge.lab"} and st.history(1)[0].status == "applied"
    assert kvmnet(cfg, "plan", "--detailed-exitcode", env=env).returncode == 0
    (cfg / "main.hcl").write_text(CONFIG.format(ns=ns, mtu=1300))
    assert kvmnet(cfg, "plan", "--detailed-exitcode", env=env).returncode == 2
    r = kvmnet(cfg, "destroy", "--auto-approve", env=env)
    assert r.returncode == 0, r.stderr
    assert in_ns(ns, "ip", "link", "show", "br-pg", check=False).returncode != 0
    snap = st.read()
    assert snap.instances == {} and snap.serial == 2 and st.locks() == []


def test_a_paused_holders_lease_expires_and_its_write_is_fenced_off_through_the_pooler(pg_pooled_db):
    assert_a_paused_holder_is_fenced_off(pg_pooled_db, lease=2)


def _git_repo(repo, files: dict[str, str]) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_an_agent_loop_heartbeats_gets_renews_and_reports_its_slot_through_the_pooler(
        pg_bouncer, pg_pooled_db, ns, tmp_path):
    c = psycopg.connect(pg_pooled_db, autocommit=True, prepare_threshold=None)
    fleet_schema.ensure(c)
    fleet_roles.create_agent_role(c, "kvm01")
    pg_bouncer.add_user("kvm01")
    agent_conn = pg_bouncer.warm(pg_pooled_db.replace("user=postgres", "user=kvm01"))
    sha = _git_repo(tmp_path / "repo", {"hosts/kvm01/main.hcl":
                    f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
                    'resource "bridge" "lab" {\n  name = "br-pool"\n}\n'})
    c.execute("INSERT INTO fleet_hosts (host) VALUES ('kvm01')")
    env = {**os.environ, "PG_CONN_STR": pg_pooled_db}
    r = subprocess.run([sys.executable, "-m", "kvmnet", "fleet", "apply", "--commit", sha,
                        "--repo", str(tmp_path / "repo"), "--canary", "0"],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    agent = subprocess.Popen(
        [sys.executable, "-m", "kvmnet", "agent", "run", "--repo", str(tmp_path / "repo"), "--host", "kvm01",
         "--loop", "--interval", "0.05", "--lease", "1.5", "--workdir", str(tmp_path / "w"),
         "--conn-str", agent_conn], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        seen = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and agent.poll() is None:
            row = c.execute("SELECT condition, last_seen FROM fleet_hosts WHERE host = 'kvm01'").fetchone()
            seen += 1
            if row[0] == "Available" and seen > 3:
                before = row[1]
                time.sleep(0.5)            # more passes after the apply: heartbeats still land
                if c.execute("SELECT last_seen FROM fleet_hosts").fetchone()[0] > before:
                    break
            time.sleep(0.1)
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert "prepared statement" not in err and "Error" not in err, err
    cond, applied = c.execute("SELECT condition, applied_commit FROM fleet_hosts").fetchone()
    assert (cond, applied) == ("Available", sha), err
    assert c.execute("SELECT result FROM fleet_results").fetchone()[0] == "applied"
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"
    assert c.execute("SELECT count(*) FROM fleet_audit WHERE action = 'slot granted'").fetchone()[0] == 1
    assert in_ns(ns, "ip", "link", "show", "br-pool").returncode == 0
    r = subprocess.run([sys.executable, "-m", "kvmnet", "fleet", "status", "--json"], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and sha in r.stdout, r.stderr
    c.close()
