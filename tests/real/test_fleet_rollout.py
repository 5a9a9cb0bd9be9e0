"""A paced rollout over 20 hosts, each agent its own process in its own network
namespace (iproute, nftables and sysctl providers; two also with a network in the
sandboxed libvirtd), against the session's real PostgreSQL: canaries first, the slot
budget held at every sampled moment, a host SIGKILLed mid-apply frees its slot when
its lease lapses and, restarted, finishes; a second operator is refused; PostgreSQL
restarted mid-rollout loses nothing and applies nothing twice; a probe that failed
before the change is ignored on every host; a second rollout stops at its failure
limit; in a third, a probe the change breaks reverts its host, which counts as a
failure, while the libvirt network probe passes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from kvmnet.sandbox.netns import create_netns, delete_netns, unique_name
from kvmnet.state import fleet_roles, fleet_schema
from tests.conftest import ROOT, requires_root

pytestmark = [requires_root, pytest.mark.real, pytest.mark.slow]

HOSTS = [f"kvm{i:02d}" for i in range(1, 21)]
CANARIES = ("kvm03", "kvm04")           # labelled: they go before kvm01, kvm02
KILLED = "kvm06"
FAILING = [f"kvm{i:02d}" for i in range(13, 21)]
LIBVIRT = ("kvm09", "kvm10")            # each also has a network in the sandboxed libvirtd
BREAKS = "kvm07"                        # its probe fails once the third rollout's change is made
LEASE = "8"


def _libvirt(host: str, uri: str) -> str:
    n = int(host[3:])
    return (f'provider "libvirt" {{\n  uri = "{uri}"\n}}\n'
            f'resource "network" "lab" {{\n  name   = "kvf{n:02d}"\n  mode   = "nat"\n  bridge = "kvfb{n:02d}"\n'
            f'  ip {{\n    address = "10.69.{n}.1"\n    prefix  = 24\n  }}\n}}\n')


def _config(ns: str, persist: Path, extra: str = "") -> str:
    return (f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
            f'provider "nftables" {{\n  netns = "{ns}"\n}}\n'
            'resource "port_forward" "web" {\n  protocol   = "tcp"\n  host_port  = 8080\n'
            '  to_address = "10.78.0.5"\n  to_port    = 80\n}\n'
            f'provider "sysctl" {{\n  netns       = "{ns}"\n  persist_dir = "{persist}"\n}}\n'
            'resource "bridge" "lab" {\n  name = "br-fleet"\n}\n'
            'resource "sysctl_profile" "tuning" {\n'
            f'  settings = {{ "net.ipv4.ip_forward" = 1{extra} }}\n}}\n')


def _git(repo: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *argv], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout.strip()


def _commit(repo: Path, namespaces: dict, tmp: Path, uri: str, failing=(), breaker=()) -> str:
    for h in HOSTS:
        d = repo / "hosts" / h
        d.mkdir(parents=True, exist_ok=True)
        extra = ', "net.ipv4.ip_default_ttl" = 0' if h in failing else ', "net.ipv4.conf.all.rp_filter" = 2' \
            if failing else ""
        text = _config(namespaces[h], tmp / "persist" / h, extra)
        if h in LIBVIRT:
            text += _libvirt(h, uri)
        if h in breaker:        # a second profile: its file is what BREAKS's probe looks for
            text += ('resource "sysctl_profile" "breaker" {\n'
                     '  settings = { "net.ipv4.conf.all.accept_redirects" = 0 }\n}\n')
        (d / "main.hcl").write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "change")
    return _git(repo, "rev-parse", "HEAD")


class Fleet:
    def __init__(self, cluster, db: str, repo: Path, tmp: Path, namespaces: dict):
        self.cluster, self.db, self.repo, self.tmp, self.ns = cluster, db, repo, tmp, namespaces
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, host: str) -> None:
        labels = ["--label", "canary"] if host in CANARIES else []
        probes = self.tmp / "probes" / host
        if not probes.exists():     # a probe that always fails (never counted), and BREAKS's own
            probes.parent.mkdir(exist_ok=True)
            mine = (f'  probe "no-breaker" {{\n    command = ["test", "!", "-e", '
                    f'"{self.tmp}/persist/{host}/90-kvmnet-breaker.conf"]\n    timeout = "1s"\n  }}\n'
                    if host == BREAKS else "")
            probes.write_text(f'kvmnet {{\n  probe "already-broken" {{\n    command = ["false"]\n  }}\n{mine}}}\n')
        LOGS.append(self.tmp / f"{host}.log")
        log = open(LOGS[-1], "a")
        self.procs[host] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns[host], sys.executable, "-m", "kvmnet", "agent", "run",
             "--repo", str(self.repo), "--host", host, "--loop", "--interval", "0.3", "--lease", LEASE,
             "--workdir", str(self.tmp / "agents" / host), "--conn-str", self.cluster.conninfo(self.db, user=host),
             "--probe-file", str(probes), "--probe-timeout", "2", *labels],
            cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)

    def kill(self, host: str, sig=signal.SIGKILL) -> None:
        p = self.procs.pop(host)
        os.killpg(p.pid, sig)
        p.wait(timeout=30)

    def stop_all(self) -> None:
        for h in list(self.procs):
            self.kill(h, signal.SIGTERM if self.procs[h].poll() is None else signal.SIGKILL) \
                if self.procs[h].poll() is None else self.procs.pop(h)


class Sampler(threading.Thread):
    """Samples every 50 ms (through PostgreSQL restarts) the live slots, and the status
    rows that say Progressing (but KILLED's: its dead agent's row says so until it
    comes back)."""

    def __init__(self, conninfo: str):
        super().__init__(daemon=True)
        self.conninfo, self.samples, self.progressing, self.done = conninfo, [], [], threading.Event()

    def run(self) -> None:
        conn = None
        while not self.done.wait(0.05):
            try:
                conn = conn or psycopg.connect(self.conninfo, autocommit=True)
                with conn.transaction():
                    n = conn.execute("SELECT count(*) FROM fleet_slots WHERE lease_expires > now()").fetchone()[0]
                    p = conn.execute("SELECT count(*) FROM fleet_hosts WHERE condition = 'Progressing' "
                                     "AND host <> %s", (KILLED,)).fetchone()[0]
                self.samples.append(n)
                self.progressing.append(p)
            except psycopg.OperationalError:
                conn = None


def _wait(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}{_tails()}")


LOGS: list[Path] = []


def _tails() -> str:
    """The last lines of every agent's log, for a failure's message."""
    return "".join(f"\n--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-4:]) for p in LOGS if p.exists())


def _applies(tmp: Path, host: str, rollout: int) -> list[str]:
    f = tmp / "agents" / host / "applies.log"
    return [ln for ln in (f.read_text().splitlines() if f.exists() else []) if ln.split()[0] == str(rollout)]


def _kvmnet(*argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmnet", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_a_paced_rollout_over_twenty_agent_processes(pg_cluster, pg_db, tmp_path, libvirt):
    admin = psycopg.connect(pg_db, autocommit=True)
    fleet_schema.ensure(admin)
    for h in HOSTS:
        fleet_roles.create_agent_role(admin, h)
    db = admin.info.dbname
    namespaces = {h: create_netns(unique_name("kvf")) for h in HOSTS}
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    good = _commit(repo, namespaces, tmp_path, libvirt.uri)
    fleet = Fleet(pg_cluster, db, repo, tmp_path, namespaces)
    sampler = Sampler(pg_db)
    try:
        for h in HOSTS:
            fleet.start(h)
        _wait(lambda: admin.execute("SELECT count(*) FROM fleet_hosts").fetchone()[0] == 20, 60, "heartbeats")
        env = {"PG_CONN_STR": pg_db}
        started = _kvmnet("fleet", "apply", "--commit", good, "--repo", str(repo), "--max-unavailable", "10%",
                          "--canary", "2", "--max-failures", "0", env={**env, "KVMNET_ACTOR": "alice@ops1"})
        assert started.returncode == 0, started.stderr
        sampler.start()
        second = _kvmnet("fleet", "apply", "--commit", good, "--repo", str(repo),
                         env={**env, "KVMNET_ACTOR": "bob@ops2"})
        assert second.returncode == 1
        assert second.stderr.count("Error:") == 1 and "started by alice@ops1" in second.stderr

        journal = tmp_path / "agents" / KILLED / "applies.log"
        end = time.monotonic() + 120
        while not journal.exists() and time.monotonic() < end:    # its walk has begun
            time.sleep(0.005)
        fleet.kill(KILLED)                                   # dies mid-apply, its slot leased
        killed_at = time.monotonic()
        _wait(lambda: admin.execute("SELECT count(*) FROM fleet_results").fetchone()[0] >= 8, 120,
              "eight results")
        pg_cluster.restart()                                 # agents retry through it
        admin.close()
        admin = psycopg.connect(pg_db, autocommit=True)
        # the killed host's slot lapses, and other hosts are granted slots meanwhile
        _wait(lambda: (admin.execute("SELECT lease_expires < now() FROM fleet_slots WHERE host = %s",
                                     (KILLED,)).fetchone() or (False,))[0], 60, f"{KILLED}'s lease")
        assert time.monotonic() - killed_at >= float(LEASE) - 1
        assert admin.execute("SELECT count(*) FROM fleet_results WHERE host = %s", (KILLED,)).fetchone()[0] == 0
        assert admin.execute("SELECT condition FROM fleet_hosts WHERE host = %s", (KILLED,)).fetchone()[0] \
            == "Progressing"
        fleet.start(KILLED)                                  # systemd would restart it
        _wait(lambda: admin.execute("SELECT state FROM fleet_rollouts").fetchone()[0] == "done", 150,
              "rollout 1 done")
        rows = dict(admin.execute("SELECT host, result FROM fleet_results").fetchall())
        assert rows == {h: "applied" for h in HOSTS}
        conds = dict(admin.execute("SELECT host, condition FROM fleet_hosts").fetchall())
        assert set(conds.values()) == {"Available"}
        applied = dict(admin.execute("SELECT host, applied_commit FROM fleet_hosts").fetchall())
        assert set(applied.values()) == {good}
        rid = admin.execute("SELECT id FROM fleet_rollouts").fetchone()[0]
        tokens = [ln.split()[2] for ln in _applies(tmp_path, KILLED, rid)]
        assert len(set(tokens)) == 2                         # granted again, with a new fencing token
        for h in HOSTS:                                      # nothing applied twice
            assert len(_applies(tmp_path, h, rid)) == (2 if h == KILLED else 1), h
            live = subprocess.run(["ip", "-n", namespaces[h], "-br", "link", "show", "br-fleet"],
                                  capture_output=True, text=True)
            assert live.returncode == 0, h                   # the hosts really hold it
            rules = subprocess.run(["ip", "netns", "exec", namespaces[h], "nft", "list", "ruleset"],
                                   capture_output=True, text=True).stdout
            assert "10.78.0.5" in rules, h
        assert {f"kvf{h[3:]}" for h in LIBVIRT} <= set(libvirt.virsh("net-list", "--name").stdout.split())
        assert max(sampler.samples) <= 2 and len(sampler.samples) > 20     # 10% of 20
        assert max(sampler.progressing) in (1, 2)                          # and so say the status rows
        grants = [d["rollout"] and a for a, d in admin.execute(
            "SELECT actor, detail FROM fleet_audit WHERE action = 'slot granted' ORDER BY id")]
        assert set(grants[:2]) == set(CANARIES)
        first_other = admin.execute(
            "SELECT min(id) FROM fleet_audit WHERE action = 'slot granted' AND actor <> ALL(%s)",
            (list(CANARIES),)).fetchone()[0]
        canary_done = admin.execute(
            "SELECT max(id) FROM fleet_audit WHERE action = 'host result' AND actor = ANY(%s)",
            (list(CANARIES),)).fetchone()[0]
        assert canary_done < first_other

        # fleet status matches what the hosts hold; fleet drift asks every agent
        import json
        status = _kvmnet("fleet", "status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        hosts = {h["host"]: h for h in json.loads(status.stdout)["hosts"]}
        assert all(hosts[h]["applied_commit"] == good and hosts[h]["in_sync"] for h in HOSTS)
        subprocess.run(["ip", "-n", namespaces["kvm01"], "link", "del", "br-fleet"], check=True)
        drift = _kvmnet("fleet", "drift", "--wait", "60", env=env)
        assert drift.returncode == 0, drift.stderr
        assert "kvm01: 1 resource" in drift.stdout and "bridge.lab" in drift.stdout
        assert "kvm02: no drift" in drift.stdout

        # a second rollout whose change fails on 8 hosts stops at its failure limit
        bad = _commit(repo, namespaces, tmp_path, libvirt.uri, failing=FAILING)
        started = _kvmnet("fleet", "apply", "--commit", bad, "--repo", str(repo), "--max-unavailable", "3",
                          "--canary", "0", "--max-failures", "2", "--hosts", "kvm1*,kvm2*", env={**env, "KVMNET_ACTOR": "alice@ops1"})
        assert started.returncode == 0, started.stderr
        _wait(lambda: admin.execute("SELECT state FROM fleet_rollouts ORDER BY id DESC").fetchone()[0]
              == "stopped", 150, "rollout 2 stopped")
        rid2, msg = admin.execute("SELECT id, message FROM fleet_rollouts ORDER BY id DESC").fetchone()
        res = dict(admin.execute("SELECT host, result FROM fleet_results WHERE rollout_id = %s",
                                 (rid2,)).fetchall())
        failed = [h for h, r in res.items() if r == "failed"]
        assert 3 <= len(failed) <= 5 and len(res) < 11, res    # stopped: not every host was tried
        assert set(res) <= {f"kvm{i}" for i in range(10, 21)}
        assert max(sampler.samples) <= 3 and max(sampler.progressing) <= 3
        msgs = dict(admin.execute("SELECT host, message FROM fleet_hosts").fetchall())
        assert "ip_default_ttl" in msgs[failed[0]]

        # a third: the change breaks BREAKS's probe (reverted: a failure), not kvm08's;
        # kvm09's libvirt network probe passed before and passes after; kvm01, whose
        # commit is unchanged, gets its bridge back: the agent's plan refreshes
        third = _commit(repo, namespaces, tmp_path, libvirt.uri, breaker=(BREAKS, "kvm08", "kvm09"))
        started = _kvmnet("fleet", "apply", "--commit", third, "--repo", str(repo), "--max-unavailable", "3",
                          "--canary", "0", "--max-failures", "1", "--hosts", f"kvm01,{BREAKS},kvm08,kvm09",
                          env=env)
        assert started.returncode == 0, started.stderr
        _wait(lambda: admin.execute("SELECT state FROM fleet_rollouts ORDER BY id DESC").fetchone()[0]
              == "done", 120, "rollout 3 done")
        rid3 = admin.execute("SELECT max(id) FROM fleet_rollouts").fetchone()[0]
        res = dict(admin.execute("SELECT host, result FROM fleet_results WHERE rollout_id = %s",
                                 (rid3,)).fetchall())
        assert res == {"kvm01": "applied", BREAKS: "reverted", "kvm08": "applied", "kvm09": "applied"}, res
        assert subprocess.run(["ip", "-n", namespaces["kvm01"], "link", "show", "br-fleet"],
                              capture_output=True).returncode == 0
        cond, msg, applied_commit = admin.execute(
            "SELECT condition, message, applied_commit FROM fleet_hosts WHERE host = %s", (BREAKS,)).fetchone()
        assert cond == "Reverted" and 'probe failed after the change: command no-breaker' in msg, msg
        assert "already-broken" not in msg.split("; reverted")[0]       # failed before: not counted
        assert "that failed before the change not counted" in msg
        assert applied_commit == good                                     # it still holds the first commit
        assert not (tmp_path / "persist" / BREAKS / "90-kvmnet-breaker.conf").exists()
        assert (tmp_path / "persist" / "kvm08" / "90-kvmnet-breaker.conf").exists()
        status = _kvmnet("fleet", "status", env=env)
        assert f"  {BREAKS} (Reverted): probe failed after the change" in status.stdout, status.stdout
        assert f"Rollout #{rid3} of {third[:12]}: done, 0 slots in use; applied 3, reverted 1." in status.stdout
    finally:
        sampler.done.set()
        fleet.stop_all()
        admin.close()
        for ns in namespaces.values():
            delete_netns(ns)
