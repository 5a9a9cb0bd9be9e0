"""``kvmnet fleet plan / status / drift`` against a real throwaway PostgreSQL, with
hosts applied for real in their own network namespaces (iproute provider)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from kvmnet.sandbox.netns import in_ns, netns
from kvmnet.state.fleet_schema import ensure

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

KVMNET = [sys.executable, "-m", "kvmnet"]

ROLE = """
variable "bridge" {
  type = string
}
variable "mtu" {
  type    = number
  default = 1500
}
resource "bridge" "br" {
  name = var.bridge
  mtu  = var.mtu
  stp  = false
}
resource "bridge" "spare" {
  name = "${var.bridge}s"
  stp  = false
}
"""

HOST = """
provider "iproute" {{
  netns = "{ns}"
}}
module "role" {{
  source = "../../modules/role"
  bridge = "brf"
}}
"""


def run(*args: str, env_extra: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", **(env_extra or {}))
    env.pop("PG_CONN_STR", None)
    env.update(env_extra or {})
    return subprocess.run([*KVMNET, "--no-color", *args], capture_output=True, text=True, env=env,
                          cwd=str(cwd) if cwd else None, timeout=120)


@pytest.fixture(scope="module")
def applied_fleet(tmp_path_factory):
    """A 3-host repo; kvm01 and kvm02 applied for real in their namespaces, kvm03
    never. Made once for the module: the tests plan copies of it."""
    base = tmp_path_factory.mktemp("fleet")
    repo = base / "repo"
    (repo / "modules" / "role").mkdir(parents=True)
    (repo / "modules" / "role" / "main.hcl").write_text(ROLE)
    cache = {"XDG_CACHE_HOME": str(base / "cache")}
    with ExitStack() as stack:
        namespaces = {}
        for h in ("kvm01", "kvm02", "kvm03"):
            ns = stack.enter_context(netns())
            namespaces[h] = ns
            (repo / "hosts" / h).mkdir(parents=True)
            (repo / "hosts" / h / "main.hcl").write_text(HOST.format(ns=ns))
        for h in ("kvm01", "kvm02"):
            r = run("-C", str(repo / "hosts" / h), "apply", "--auto-approve", env_extra=cache)
            assert r.returncode == 0, r.stderr
        yield repo, namespaces, cache


@pytest.fixture
def fleet_repo(applied_fleet, tmp_path):
    """A copy of the applied fleet's repository (its states too) for one test."""
    repo, namespaces, cache = applied_fleet
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    return copy, namespaces, cache


def add_host(conn, host, *, labels=(), desired=None, applied=None, condition="Available", message=None,
             seen_ago=5.0, drift=None, drift_ago=None):
    """A status row as an agent writes it."""
    from psycopg.types.json import Jsonb
    conn.execute(
        "INSERT INTO fleet_hosts (host, labels, agent_version, desired_commit, applied_commit, condition, "
        "message, drift, drift_checked, last_seen) VALUES (%s, %s, '0.1', %s, %s, %s, %s, %s, "
        "now() - make_interval(secs => %s), now() - make_interval(secs => %s))",
        (host, list(labels), desired, applied, condition, message,
         Jsonb(drift) if drift is not None else None, drift_ago, seen_ago))


@pytest.fixture
def db(pg_db):
    conn = psycopg.connect(pg_db, autocommit=True)
    ensure(conn)
    yield pg_db, conn
    conn.close()


# fleet plan

def test_fleet_plan_markdown_with_stored_states_and_reported_drift(fleet_repo, db):
    repo, _, cache = fleet_repo
    conninfo, conn = db
    add_host(conn, "kvm01", drift={"resources": 2, "addresses": ["a", "b"]}, drift_ago=600)
    add_host(conn, "kvm02", drift={"resources": 0, "addresses": []}, drift_ago=150)
    # the role changes: the applied hosts get an update, the never-applied host creates all
    (repo / "modules" / "role" / "main.hcl").write_text(ROLE.replace("default = 1500", "default = 1400"))
    r = run("fleet", "plan", "--markdown", str(repo), env_extra={**cache, "PG_CONN_STR": conninfo})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "**3 hosts**: 3 with changes, 0 failed · **2** to add, **2** to change, **0** to destroy" in out
    assert "| `kvm01` | 0 | 1 | 0 | 2 | 2 resources, reported 10m ago |" in out
    assert "| `kvm02` | 0 | 1 | 0 | 2 | none, reported 2m ago |" in out
    assert "| `kvm03` | 2 | 0 | 0 | 2 | no agent report |" in out
    assert "- `~` `module.role.bridge.br` (update)" in out
    assert "- `+` `module.role.bridge.spare` (create)" in out


def test_fleet_plan_human_selection_and_no_database(fleet_repo):
    repo, _, cache = fleet_repo
    r = run("fleet", "plan", "--hosts", "kvm0[2-9]", str(repo), env_extra=cache)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "kvm02: no changes (2 resources); drift: unknown (no fleet database)",
        "kvm03: 2 to add, 0 to change, 0 to destroy (2 resources); drift: unknown (no fleet database)",
        "",
        "Fleet: 2 hosts planned, 1 with changes, 0 failed; 2 to add, 0 to change, 0 to destroy.",
    ]


def test_fleet_plan_label_selection(fleet_repo, db):
    repo, _, cache = fleet_repo
    conninfo, conn = db
    add_host(conn, "kvm01", labels=["canary", "rack1"])
    add_host(conn, "kvm03", labels=["rack1"])
    r = run("fleet", "plan", "--label", "rack1", "--conn-str", conninfo, str(repo), env_extra=cache)
    assert r.returncode == 0, r.stderr
    assert [line.split(":")[0] for line in r.stdout.splitlines()[:2]] == ["kvm01", "kvm03"]
    r = run("fleet", "plan", "--label", "rack1", "--label", "canary", "--conn-str", conninfo, str(repo),
            env_extra=cache)
    assert r.stdout.startswith("kvm01: no changes") and "Fleet: 1 hosts planned" in r.stdout


def test_fleet_plan_broken_host_dir_is_one_error_and_the_others_still_plan(fleet_repo):
    repo, _, cache = fleet_repo
    (repo / "hosts" / "kvm02" / "main.hcl").write_text('module "role" {\n  source = \n}\n')
    r = run("fleet", "plan", str(repo), env_extra=cache)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "host kvm02" in errors[0] and "main.hcl:2" in errors[0], r.stderr
    assert "kvm01: no changes" in r.stdout and "kvm03: 2 to add" in r.stdout
    assert "kvm02: failed to plan" in r.stdout and "1 failed" in r.stdout


def test_fleet_plan_broken_state_names_the_host(fleet_repo):
    repo, _, cache = fleet_repo
    (repo / "hosts" / "kvm01" / "kvmnet.state.db").write_bytes(b"not a database" * 100)
    r = run("fleet", "plan", "--hosts", "kvm01", str(repo), env_extra=cache)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: host kvm01 ("), r.stderr


@pytest.mark.parametrize("args, message", [
    (["--hosts", "web*"], "no host directory under {repo}/hosts matches --hosts 'web*'"),
    (["--label", "x"], "no fleet database: pass --conn-str or set PG_CONN_STR (a libpq connection string)"),
])
def test_fleet_plan_refusals(fleet_repo, args, message):
    repo, _, cache = fleet_repo
    r = run("fleet", "plan", *args, str(repo), env_extra=cache)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == "Error: " + message.format(repo=repo)


def test_fleet_plan_needs_hosts_dir(tmp_path):
    r = run("fleet", "plan", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip() == f"Error: {tmp_path}/hosts: no such directory (a fleet repository has hosts/<name>/ per host)"


# fleet status

METRIC_LINE = re.compile(
    r'^(# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*'
    r'|# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)'
    r'|[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})?'
    r' (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[+-]Inf))$')


def parse_metrics(text: str) -> dict[tuple, float]:
    """Strict exposition-format check; returns (name, labels...) -> value."""
    assert text.endswith("\n")
    samples, typed = {}, set()
    for line in text.splitlines():
        assert METRIC_LINE.match(line), f"not exposition format: {line!r}"
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed, f"family {name} declared twice"
            typed.add(name)
        elif not line.startswith("#"):
            name, _, rest = line.partition("{")
            labels = tuple(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', rest.rpartition("}")[0])) if rest else ()
            name = name.split()[0]
            assert name in typed, f"sample before its TYPE: {line}"
            key = (name, *labels)
            assert key not in samples, f"duplicate sample {line}"
            samples[key] = float(line.rsplit(" ", 1)[1])
    return samples


@pytest.fixture
def reported(db):
    conninfo, conn = db
    add_host(conn, "kvm01", desired="a" * 40, applied="a" * 40, seen_ago=4,
             drift={"resources": 0, "addresses": []}, drift_ago=60)
    add_host(conn, "kvm02", desired="a" * 40, applied="b" * 40, condition="Failing",
             message='probe "gateway" failed: 10.0.0.1 does not answer', seen_ago=12,
             drift={"resources": 3, "addresses": ["x", "y", "z"]}, drift_ago=7200)
    add_host(conn, "kvm03", desired="a" * 40, applied="b" * 40, condition="Progressing", seen_ago=600)
    rid = conn.execute("INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, max_failures, state) "
                       "VALUES (%s, 'ops', '10%%', 1, 1, 'running') RETURNING id", ("a" * 40,)).fetchone()[0]
    conn.execute("INSERT INTO fleet_slots (rollout_id, host, token, lease_expires) VALUES "
                 "(%s, 'kvm03', nextval('fleet_slot_tokens'), now() + interval '5 minutes')", (rid,))
    conn.execute("INSERT INTO fleet_results (rollout_id, host, result) VALUES (%s, 'kvm01', 'applied'), "
                 "(%s, 'kvm02', 'failed')", (rid, rid))
    return conninfo, rid


def test_fleet_status_table_matches_the_rows_and_flags_stale(reported):
    conninfo, rid = reported
    r = run("fleet", "status", "--interval", "30", "--stale-after", "3", env_extra={"PG_CONN_STR": conninfo})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["HOST", "CONDITION", "DESIRED", "APPLIED", "DRIFT", "LAST SEEN"]
    seconds = re.compile(r"1?[0-9]s ago")     # written 4 s and 12 s before; the command runs a little later
    *row, seen = re.split(r"\s{2,}", lines[1])
    assert row == ["kvm01", "Available", "a" * 12, "a" * 12, "none (1m ago)"] and seconds.fullmatch(seen)
    *row, seen = re.split(r"\s{2,}", lines[2])
    assert row == ["kvm02", "Failing", "a" * 12, "b" * 12, "3 resources (2h ago)"] and seconds.fullmatch(seen)
    assert re.split(r"\s{2,}", lines[3]) == ["kvm03", "Progressing", "a" * 12, "b" * 12, "unchecked", "10m ago",
                                             "STALE"]
    assert '  kvm02 (Failing): probe "gateway" failed: 10.0.0.1 does not answer' in lines
    assert "Fleet: 3 hosts, 1 in sync, 1 stale, 1 drifted; Progressing 1, Available 1, Failing 1." in lines
    assert f"Rollout #{rid} of {'a' * 12}: running, 1 slots in use; applied 1, failed 1." in lines
    # a longer stale limit: nobody is stale
    r = run("fleet", "status", "--stale-after", "30", env_extra={"PG_CONN_STR": conninfo})
    assert "STALE" not in r.stdout and "0 stale" in r.stdout


def test_fleet_status_json(reported):
    conninfo, rid = reported
    r = run("fleet", "status", "--json", "--conn-str", conninfo)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    by = {h["host"]: h for h in doc["hosts"]}
    assert by["kvm01"]["in_sync"] and not by["kvm01"]["stale"] and by["kvm01"]["condition"] == "Available"
    assert by["kvm02"]["message"].startswith('probe "gateway"') and by["kvm02"]["drift"]["resources"] == 3
    assert by["kvm03"]["stale"] and by["kvm03"]["drift"] is None
    assert 599 <= by["kvm03"]["last_seen_seconds"] < 660
    assert doc["totals"] == {"hosts": 3, "in_sync": 1, "stale": 1, "drifted": 1,
                             "Available": 1, "Failing": 1, "Progressing": 1}
    assert doc["rollout"] == {"id": rid, "commit": "a" * 40, "state": "running", "active": True,
                              "slots_in_use": 1, "results": {"applied": 1, "failed": 1}}


def test_fleet_status_metrics_exposition_format(reported):
    conninfo, rid = reported
    r = run("fleet", "status", "--metrics", "--conn-str", conninfo)
    assert r.returncode == 0, r.stderr
    m = parse_metrics(r.stdout)
    assert m[("kvmnet_fleet_host_up", ("host", "kvm01"))] == 1
    assert m[("kvmnet_fleet_host_up", ("host", "kvm03"))] == 0
    assert m[("kvmnet_fleet_host_applied", ("host", "kvm02"), ("commit", "b" * 40))] == 1
    assert m[("kvmnet_fleet_host_drift_resources", ("host", "kvm02"))] == 3
    assert ("kvmnet_fleet_host_drift_resources", ("host", "kvm03")) not in m
    assert m[("kvmnet_fleet_host_condition", ("host", "kvm02"), ("condition", "Failing"))] == 1
    assert m[("kvmnet_fleet_host_condition", ("host", "kvm02"), ("condition", "Available"))] == 0
    assert 599 <= m[("kvmnet_fleet_host_last_seen_seconds", ("host", "kvm03"))] < 660
    assert m[("kvmnet_fleet_rollout_active",)] == 1
    assert m[("kvmnet_fleet_rollout_slots_in_use",)] == 1
    assert m[("kvmnet_fleet_rollout_results", ("result", "failed"))] == 1
    assert m[("kvmnet_fleet_rollout_info", ("id", str(rid)), ("commit", "a" * 40), ("state", "running"))] == 1


def test_fleet_status_refusals(pg_cluster, tmp_path):
    r = run("fleet", "status")
    assert (r.returncode, r.stderr.strip()) == (
        1, "Error: no fleet database: pass --conn-str or set PG_CONN_STR (a libpq connection string)")
    r = run("fleet", "status", "--conn-str", pg_cluster.conninfo("no_such_db"))
    assert r.returncode == 1 and r.stderr.startswith("Error: fleet database: ") and len(r.stderr.splitlines()) == 1
    r = run("fleet", "status", "--json", "--metrics", "--conn-str", pg_cluster.conninfo())
    assert (r.returncode, r.stderr.strip()) == (1, "Error: --json and --metrics: choose one")


# fleet drift

def fake_agent(conninfo: str, host: str, host_dir: Path, stop: threading.Event) -> None:
    """What the agent does for a drift request: run_drift_check on its host, report."""
    from kvmnet.engine.diagnostics import Diagnostics
    from kvmnet.engine.fleet.drift import pending_request, report_drift, run_drift_check
    from kvmnet.engine.prepare import prepare
    from kvmnet.engine.registry import ProviderSet
    from kvmnet.state import open_state
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while not stop.is_set():
            asked = pending_request(conn, host)
            if asked is not None:
                prepared = prepare(str(host_dir))
                d = Diagnostics()
                ps = ProviderSet({n: prepared.evaluator.provider_config(n, d) for n in prepared.config.providers})
                be = open_state(str(host_dir / "kvmnet.state.db"))
                try:
                    report_drift(conn, host, run_drift_check(prepared, be.read(), ps), asked)
                finally:
                    be.close()
                    ps.close()
            time.sleep(0.2)


def test_fleet_drift_asks_the_agents_and_shows_their_answers(fleet_repo, db, request):
    repo, namespaces, cache = fleet_repo
    conninfo, conn = db
    for h in ("kvm01", "kvm02", "kvm03"):
        add_host(conn, h)
    in_ns(namespaces["kvm01"], "ip", "link", "set", "brf", "mtu", "1280")    # changed outside kvmnet
    request.addfinalizer(lambda: in_ns(namespaces["kvm01"], "ip", "link", "set", "brf", "mtu", "1500"))
    stop = threading.Event()
    agents = [threading.Thread(target=fake_agent, args=(conninfo, h, repo / "hosts" / h, stop))
              for h in ("kvm01", "kvm02")]
    for t in agents:
        t.start()
    try:
        r = run("fleet", "drift", "--hosts", "kvm0[12]", "--wait", "30", env_extra={**cache, "PG_CONN_STR": conninfo})
    finally:
        stop.set()
        for t in agents:
            t.join()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Asked 2 hosts for a drift check."
    assert sorted(lines[1:3]) == ["kvm01: 1 resource changed outside kvmnet: module.role.bridge.br",
                                  "kvm02: no drift"]
    assert lines[3] == "Drift: 2 of 2 hosts answered, 1 drifted."
    row = conn.execute("SELECT drift, drift_requested FROM fleet_hosts WHERE host = 'kvm01'").fetchone()
    assert row == ({"resources": 1, "addresses": ["module.role.bridge.br"]}, None)
    # the host that was not asked keeps no request
    assert conn.execute("SELECT drift_requested FROM fleet_hosts WHERE host = 'kvm03'").fetchone() == (None,)


def test_fleet_drift_without_answer_is_an_error(db):
    conninfo, conn = db
    r = run("fleet", "drift", "--conn-str", conninfo)
    assert (r.returncode, r.stderr.strip()) == (1, "Error: no hosts have reported yet: nothing to ask")
    add_host(conn, "kvm01")
    add_host(conn, "kvm09", seen_ago=3600)
    r = run("fleet", "drift", "--wait", "0.6", "--conn-str", conninfo)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "Warning: kvm09 is stale (its agent has not reported lately); it may not answer.",
        "Error: no answer within 0.6s from: kvm01, kvm09"]
    r = run("fleet", "drift", "--hosts", "web*", "--conn-str", conninfo)
    assert (r.returncode, r.stderr.strip()) == (1, "Error: --hosts: no known host matches 'web*'")
    r = run("fleet", "drift", "--wait", "0", "--conn-str", conninfo)
    assert r.returncode == 0 and r.stdout == "Asked 2 hosts for a drift check.\n"


def test_fleet_status_with_a_read_only_role_and_without_rights(reported, pg_cluster):
    """A monitoring role that may only read the tables gets the view (nothing to
    create); one that may not read them gets one error line."""
    import uuid
    conninfo, _ = reported
    dbname = re.search(r"dbname=(\S+)", conninfo).group(1)
    viewer, stranger = f"viewer_{uuid.uuid4().hex[:8]}", f"stranger_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {viewer} LOGIN")
        admin.execute(f"CREATE ROLE {stranger} LOGIN")
        admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {viewer}")
        try:
            r = run("fleet", "status", "--json", "--conn-str", pg_cluster.conninfo(dbname, viewer))
            assert r.returncode == 0, r.stderr
            assert [h["host"] for h in json.loads(r.stdout)["hosts"]] == ["kvm01", "kvm02", "kvm03"]
            r = run("fleet", "status", "--conn-str", pg_cluster.conninfo(dbname, stranger))
            assert r.returncode == 1 and r.stdout == ""
            assert r.stderr.strip() == "Error: fleet database: permission denied for table fleet_hosts"
            r = run("fleet", "drift", "--conn-str", pg_cluster.conninfo(dbname, viewer))
            assert r.returncode == 1 and r.stdout == ""
            assert r.stderr.strip() == "Error: fleet database: permission denied for table fleet_hosts"
        finally:
            admin.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {viewer}")
            admin.execute(f"DROP ROLE {viewer}")
            admin.execute(f"DROP ROLE {stranger}")


def test_fleet_plan_with_an_unreachable_database_is_one_error(fleet_repo, tmp_path):
    repo, _, cache = fleet_repo
    r = run("fleet", "plan", "--conn-str", f"host={tmp_path}/nowhere dbname=fleet connect_timeout=2", str(repo),
            env_extra=cache)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("Error: fleet database: "), r.stderr


def test_fleet_plan_reads_a_host_state_kept_in_postgresql(fleet_repo, db):
    """A host whose config names the pg backend is planned from its PostgreSQL
    workspace: kvm01's applied state is migrated there and its SQLite file removed,
    and the plan still sees what kvm01 holds (no change), not an empty state."""
    repo, _, cache = fleet_repo
    conninfo, _ = db
    host = repo / "hosts" / "kvm01"
    (host / "backend.hcl").write_text('kvmnet {\n  backend "pg" {}\n}\n')
    env = {**cache, "PG_CONN_STR": conninfo}
    r = run("-C", str(host), "state", "migrate", "--to", "pg", env_extra=env)
    assert r.returncode == 0, r.stderr
    (host / "kvmnet.state.db").unlink()
    r = run("fleet", "plan", "--hosts", "kvm01", str(repo), env_extra=env)
    assert r.returncode == 0, r.stderr
    assert "kvm01" in r.stdout and "0 to add, 0 to change, 0 to destroy" in r.stdout, r.stdout
    r = run("fleet", "plan", "--hosts", "kvm01", str(repo), env_extra=cache)   # no PG_CONN_STR
    assert r.returncode == 1 and "kvm01" in r.stderr and "PG_CONN_STR" in r.stderr, (r.stdout, r.stderr)
