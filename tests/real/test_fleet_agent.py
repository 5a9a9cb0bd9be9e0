"""One agent, once, against the real PostgreSQL: an agent older than the commit's
required_version refuses it and says so; the fleet commands' refusals are one
Error: line."""
from __future__ import annotations

import os
import subprocess
import sys

import psycopg

from kvmnet.state import fleet_roles, fleet_schema
from tests.conftest import ROOT, requires_root

pytestmark = [requires_root]


def _kvmnet(*argv, env=None):
    return subprocess.run([sys.executable, "-m", "kvmnet", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_an_agent_older_than_the_required_version_refuses_the_commit(pg_cluster, pg_db, tmp_path):
    c = psycopg.connect(pg_db, autocommit=True)
    fleet_schema.ensure(c)
    fleet_roles.create_agent_role(c, "kvm01")
    repo = tmp_path / "repo"
    (repo / "hosts" / "kvm01").mkdir(parents=True)
    (repo / "hosts" / "kvm01" / "main.hcl").write_text('kvmnet {\n  required_version = ">= 99.0"\n}\n')
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    conn = pg_cluster.conninfo(c.info.dbname, user="kvm01")
    agent = ["agent", "run", "--repo", str(repo), "--host", "kvm01", "--once", "--workdir", str(tmp_path / "w"),
             "--conn", conn]
    assert _kvmnet(*agent).returncode == 0                   # no rollout: idle, heartbeat only
    assert _kvmnet("fleet", "apply", "--commit", sha, "--canary", "0", "--conn", pg_db).returncode == 0
    run = _kvmnet(*agent)
    assert run.returncode == 1
    cond, msg, version = c.execute("SELECT condition, message, agent_version FROM fleet_hosts").fetchone()
    assert cond == "Failing" and version == "0.1.0"
    assert 'kvmnet 0.1.0 is older than commit' in msg and '">= 99.0"' in msg and "main.hcl:1" in msg
    assert c.execute("SELECT result FROM fleet_results").fetchone()[0] == "skipped"
    assert c.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done"


def test_fleet_command_refusals_are_one_error_line(pg_db, monkeypatch):
    monkeypatch.delenv("PG_CONN_STR", raising=False)
    for argv, words in [(["fleet", "apply", "--commit", "abcdef1"], "no PostgreSQL connection"),
                        (["fleet", "forget", "kvm09", "--conn", pg_db], 'no host "kvm09"'),
                        (["fleet", "pause", "--conn", pg_db], "nothing to pause"),
                        (["fleet", "apply", "--commit", "HEAD", "--conn", pg_db], "not a commit id"),
                        (["fleet", "apply", "--commit", "abcdef1", "--conn", "host=/nonexistent dbname=x"],
                         "cannot connect to PostgreSQL"),
                        (["agent", "run", "--repo", ".", "--host", "h", "--once"], "no PostgreSQL connection")]:
        r = _kvmnet(*argv)
        assert r.returncode == 1, argv
        assert r.stderr.count("Error:") == 1 and words in r.stderr, (argv, r.stderr)
