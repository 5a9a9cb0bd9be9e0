"""Losing the PostgreSQL state lease mid-apply, end to end through the CLI against
the throwaway cluster, with bridges in a namespace: a holder paused past its lease
is fenced off after another run took over; a holder that cannot renew stops before
its lease ends; the confirm waiter holds the lease across its wait."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.state import open_pg_state

KVMNET = [sys.executable, "-m", "kvmnet"]
pytestmark = [pytest.mark.real,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a PostgreSQL cluster)")]

LEASE = 3

CONFIG = """
kvmnet {{
  backend "pg" {{
    workspace     = "kvm01"
    lease_seconds = {lease}
  }}
}}

provider "iproute" {{
  netns = "{ns}"
}}

resource "bridge" "a" {{
  name = "br-la"
}}

resource "bridge" "b" {{
  name = "br-lb"
}}

resource "bridge" "c" {{
  name = "br-lc"
}}
"""


def host_dir(tmp_path: Path, ns: str) -> Path:
    cfg = tmp_path / "kvm01"
    cfg.mkdir()
    (cfg / "main.hcl").write_text(CONFIG.format(ns=ns, lease=LEASE))
    return cfg


def env_for(cfg: Path, pg: str, **extra: str) -> dict:
    return dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cfg.parent / "cache"),
                PG_CONN_STR=pg, **extra)


def start(cfg: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*KVMNET, "-C", str(cfg), "--no-color", *args], cwd=str(cfg), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(cfg: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*KVMNET, "-C", str(cfg), "--no-color", *args], cwd=str(cfg), env=env,
                          capture_output=True, text=True, timeout=60)


def wait_for_line(stream, text: str) -> list[str]:
    seen = []
    for line in stream:
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} never came: {''.join(seen)}")


def errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("Error:")]


def bridges(ns: str) -> set[str]:
    out = in_ns(ns, "ip", "-o", "link", "show", "type", "bridge").stdout
    return {ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()}


def lease_expires(pg: str) -> float:
    """The end of the one lease held, by the server's clock (this host's)."""
    import psycopg
    with psycopg.connect(pg, autocommit=True) as c:
        [(expires,)] = c.execute("SELECT expires FROM kvmnet.locks").fetchall()
    return expires.timestamp()


def test_a_paused_apply_whose_lease_another_run_took_is_fenced_off(ns, pg_db, tmp_path):
    cfg = host_dir(tmp_path, ns)
    resume = tmp_path / "resume"
    first = start(cfg, env_for(cfg, pg_db, KVMNET_TEST_PAUSE_AFTER_WRITES="1",
                               KVMNET_TEST_RESUME_FILE=str(resume)),
                  "apply", "--auto-approve", "--parallelism", "1")
    try:
        wait_for_line(first.stderr, "kvmnet-test: paused after 1")
        os.kill(first.pid, signal.SIGSTOP)              # no renewal, no write from here on
        time.sleep(0.2)                                  # a renewal already sent has landed
        expires = lease_expires(pg_db)
        second = run(cfg, env_for(cfg, pg_db), "--lock-timeout", "30s", "apply", "--auto-approve")
        assert second.returncode == 0, second.stderr
        assert time.time() > expires                     # it waited for the lease to end
        assert "cleared a stale lock" in second.stderr
        assert "history entry #1" in second.stderr and "marked it interrupted" in second.stderr
        assert "bridge.a: Creating" not in second.stdout      # the first run's, kept
        st = open_pg_state(pg_db, "kvm01")
        after_second = st.read()
        resume.touch()
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=30)
    assert first.returncode == 1, err
    assert errors(err) == [
        "Error: the state lock was lost: its lease ran out before it could be renewed; "
        "stopping this run"], err
    assert out.count("Creating...") == 1                    # bridge.a only: nothing twice
    assert bridges(ns) == {"br-la", "br-lb", "br-lc"}
    now = st.read()
    assert (now.serial, now.instances) == (after_second.serial, after_second.instances)
    first_entry, second_entry = sorted(st.history(), key=lambda h: h.id)
    assert (first_entry.status, second_entry.status) == ("interrupted", "applied")
    assert "lost the state lock" in first_entry.summary
    assert st.open_intents() == [] and st.locks() == []
    plan = run(cfg, env_for(cfg, pg_db), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


def test_an_apply_that_cannot_renew_stops_before_its_lease_ends_and_the_next_run_converges(
        ns, pg_db, pg_cluster, tmp_path):
    cfg = host_dir(tmp_path, ns)
    # two at once: bridge.b is created while the walk pauses after bridge.a's write
    first = start(cfg, env_for(cfg, pg_db, KVMNET_TEST_PAUSE_AFTER_WRITES="1"),
                  "apply", "--auto-approve", "--parallelism", "2")
    try:
        wait_for_line(first.stderr, "kvmnet-test: paused after 1")
        os.kill(first.pid, signal.SIGSTOP)     # no renewal while the lease's end is read
        time.sleep(0.2)                        # a renewal already sent is committed by now
        expires = lease_expires(pg_db)
        pg_cluster.stop("immediate")
        os.kill(first.pid, signal.SIGCONT)
        first.wait(30)
        exited = time.time()
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGCONT)
        pg_cluster.start()
    _out, err = first.communicate()
    assert exited < expires, f"exited {exited - expires:.2f} s after its lease ended"
    assert first.returncode == 1, err
    [line] = errors(err)
    assert line.startswith("Error: the state lock was lost: could not renew the lease"), err
    st = open_pg_state(pg_db, "kvm01")
    assert set(st.read().instances) == {"bridge.a"}         # bridge.b's write was refused
    assert [i.address for i in st.open_intents()] == ["bridge.b"]
    second = run(cfg, env_for(cfg, pg_db), "apply", "--auto-approve")
    assert second.returncode == 0, second.stderr
    assert "bridge.b (id br-lb)" in second.stdout            # adopted, not created again
    assert "bridge.b: Creating" not in second.stdout
    assert bridges(ns) == {"br-la", "br-lb", "br-lc"}
    assert set(st.read().instances) == {"bridge.a", "bridge.b", "bridge.c"}
    assert st.open_intents() == []
    first_entry, second_entry = sorted(st.history(), key=lambda h: h.id)
    assert (first_entry.status, second_entry.status) == ("interrupted", "applied")
    plan = run(cfg, env_for(cfg, pg_db), "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr


def lease_rows(pg: str) -> list[tuple]:
    import psycopg
    with psycopg.connect(pg, autocommit=True) as c:
        return c.execute("SELECT pid, token, command FROM kvmnet.locks").fetchall()


def last_token(pg: str) -> int:
    import psycopg
    with psycopg.connect(pg, autocommit=True) as c:
        return int(c.execute("SELECT last_value FROM kvmnet.lock_tokens").fetchone()[0])


def test_the_confirm_waiter_holds_the_lease_across_its_wait_and_reverts_under_its_token(
        ns, pg_db, tmp_path):
    cfg = host_dir(tmp_path, ns)
    env = env_for(cfg, pg_db)
    applied = run(cfg, env, "apply", "--auto-approve", "--confirm-timeout", "6")
    assert applied.returncode == 0, applied.stderr
    assert "waiting up to 6 s for confirmation" in applied.stdout
    [(waiter, token, command)] = lease_rows(pg_db)
    assert "(waiting for confirmation)" in command and Path(f"/proc/{waiter}").exists()
    time.sleep(LEASE + 0.5)                             # past the lease: renewed by the waiter
    assert lease_rows(pg_db) == [(waiter, token, command)]
    refused = run(cfg, env, "apply", "--auto-approve")
    assert refused.returncode == 1
    [line] = errors(refused.stderr)
    assert "waiting for confirmation" in line and f"pid {waiter} " in line, refused.stderr
    assert "kvmnet confirm" in refused.stderr
    st = open_pg_state(pg_db, "kvm01")
    deadline = time.monotonic() + 20
    while st.history(1)[0].status != "rolled back" and time.monotonic() < deadline:
        time.sleep(0.2)
    entry = st.history(1)[0]
    assert entry.status == "rolled back" and "not confirmed within 6 s" in entry.summary
    assert bridges(ns) == set() and st.read().instances == {}
    assert last_token(pg_db) == token        # the revert wrote under the handed-over lease
    while lease_rows(pg_db) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lease_rows(pg_db) == []           # and released it


def test_a_confirm_waiter_paused_past_its_lease_touches_nothing_once_another_run_took_over(
        ns, pg_db, tmp_path):
    cfg = host_dir(tmp_path, ns)
    env = env_for(cfg, pg_db)
    applied = run(cfg, env, "apply", "--auto-approve", "--confirm-timeout", "4")
    assert applied.returncode == 0, applied.stderr
    [(waiter, _token, _command)] = lease_rows(pg_db)
    os.kill(waiter, signal.SIGSTOP)
    try:
        (cfg / "main.hcl").write_text(CONFIG.format(ns=ns, lease=LEASE).replace(
            'name = "br-lc"', 'name = "br-lc"\n  mtu = 1400'))
        took = run(cfg, env, "--lock-timeout", "30s", "apply", "--auto-approve")
        assert took.returncode == 0, took.stderr
        assert "marked it interrupted" in took.stderr
    finally:
        os.kill(waiter, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{waiter}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = (cfg / "kvmnet.state.db.confirm.log").read_text()
    assert "the waiter stopped: the state lock" in log and "rolling back" not in log, log
    assert bridges(ns) == {"br-la", "br-lb", "br-lc"}      # nothing rolled back
    assert "mtu 1400" in in_ns(ns, "ip", "link", "show", "br-lc").stdout
    first, second = sorted(open_pg_state(pg_db, "kvm01").history(), key=lambda h: h.id)
    assert (first.status, second.status) == ("interrupted", "applied")
    plan = run(cfg, env, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
