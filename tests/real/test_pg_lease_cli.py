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


def test_a_paused_apply_whose_lease_another_run_took_is_fenced_off(ns, pg_db, tmp_path):
    cfg = host_dir(tmp_path, ns)
    resume = tmp_path / "resume"
    first = start(cfg, env_for(cfg, pg_db, KVMNET_TEST_PAUSE_AFTER_WRITES="1",
                               KVMNET_TEST_RESUME_FILE=str(resume)),
                  "apply", "--auto-approve", "--parallelism", "1")
    try:
        wait_for_line(first.stderr, "kvmnet-test: paused after 1")
        os.kill(first.pid, signal.SIGSTOP)              # no renewal, no write from here on
        stopped = time.monotonic()
        second = run(cfg, env_for(cfg, pg_db), "--lock-timeout", "30s", "apply", "--auto-approve")
        assert time.monotonic() - stopped >= LEASE - 0.5   # it waited for the lease to end
        assert second.returncode == 0, second.stderr
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
