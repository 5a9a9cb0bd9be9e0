"""Two operators at once: while one apply holds the state's exclusive lock (paused
right after its first state write), a second apply, a destroy and a plan are each
refused with one ``Error:`` line and change nothing; with ``-lock-timeout`` the
second apply waits for the first and then has nothing left to do. Real iproute
bridges in a throw-away namespace, the real CLI in subprocesses. The first apply runs
with ``--parallelism=1``, so exactly one bridge exists while it is paused."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.state import open_state
from tests.conftest import requires_root
from tests.e2e.helpers import file_fingerprint, run_kvmnet, write_config

pytestmark = [requires_root, pytest.mark.real]


def config(ns: str) -> str:
    return f'provider "iproute" {{\n  netns = "{ns}"\n}}\n' + "".join(
        f'\nresource "bridge" "{b}" {{\n  name = "br-cc-{b}"\n}}\n' for b in "abc")


def live(ns: str) -> list[str]:
    links = json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout)
    return sorted(x["ifname"] for x in links if x["ifname"].startswith("br-cc-"))


def test_second_run_is_refused_or_waits(ns, tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, config(ns))
    state = tmp_path / "kvmnet.state.db"
    resume = tmp_path / "resume"
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(tmp_path / "cache"),
               KVMNET_TEST_PAUSE_AFTER_WRITES="1", KVMNET_TEST_RESUME_FILE=str(resume))
    env.pop("KVMNET_STATE", None)
    first = subprocess.Popen([sys.executable, "-m", "kvmnet", "-C", str(cfg), "--state", str(state),
                              "apply", "--auto-approve", "--parallelism=1"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    waiter = None
    try:
        err = ""
        while "kvmnet-test: paused after 1" not in err:
            line = first.stderr.readline()
            assert line, f"no pause: {err}{first.stderr.read()}"
            err += line
        assert live(ns) == ["br-cc-a"]
        before = file_fingerprint(state)

        for args in (["apply", "--auto-approve"], ["destroy", "-auto-approve"], ["plan"]):
            rc, out, e = run_kvmnet(cfg, *args, state=state)
            errors = [ln for ln in e.splitlines() if ln.startswith("Error:")]
            assert rc == 1, (args, out, e)
            assert len(errors) == 1 and "lock" in errors[0].lower(), (args, e)
            assert "apply --auto-approve --parallelism=1 (pid" in e     # names the holder
            assert "Traceback" not in e
        assert file_fingerprint(state) == before
        assert live(ns) == ["br-cc-a"]

        # the same apply with a lock timeout waits for the first, then finds nothing to do
        waiter = subprocess.Popen([sys.executable, "-m", "kvmnet", "-C", str(cfg), "--state", str(state),
                                   "apply", "-auto-approve", "-lock-timeout=60s"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env={k: v for k, v in env.items() if not k.startswith("KVMNET_TEST_")})
        resume.touch()
        out1, err1 = first.communicate(timeout=60)
        assert first.returncode == 0, err + err1
        out2, err2 = waiter.communicate(timeout=90)
        assert waiter.returncode == 0, out2 + err2
        assert "No changes" in out2 or "0 added, 0 changed, 0 destroyed" in out2, out2
    finally:
        for p in (first, waiter):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
    assert live(ns) == ["br-cc-a", "br-cc-b", "br-cc-c"]
    assert sorted(open_state(state).read().instances) == ["bridge.a", "bridge.b", "bridge.c"]
