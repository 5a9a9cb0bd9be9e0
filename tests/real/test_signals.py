"""SIGINT/SIGTERM during ``kvmnet apply``/``destroy``: the walk stops after the step
in progress, records it, ends the history entry ``interrupted`` and exits 128+N with
one ``Error:`` line. Real iproute bridges in a throw-away namespace, the real CLI in
a subprocess; the signal comes from the test while the walk is paused right after
its first state write (``engine/walk.py`` ``pause_point``). The exact step
boundaries are checked with ``--parallelism=1``; with the default, the change that
was already running when the signal came finishes and is recorded too."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.state import open_state
from tests.conftest import requires_root
from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [requires_root, pytest.mark.real]

BRIDGES = ["a", "b", "c"]


def config(ns: str) -> str:
    return f'provider "iproute" {{\n  netns = "{ns}"\n}}\n' + "".join(
        f'\nresource "bridge" "{b}" {{\n  name = "br-sig-{b}"\n}}\n' for b in BRIDGES)


def live(ns: str) -> list[str]:
    links = json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout)
    return sorted(x["ifname"] for x in links if x["ifname"].startswith("br-sig-"))


def signalled(cfg, state, sig: int, *args: str) -> tuple[int, str, str]:
    """Run ``kvmnet ARGS`` paused after its first state write, send ``sig``, and
    return (exit code, stdout, stderr)."""
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cfg.parent / "cache"),
               KVMNET_TEST_PAUSE_AFTER_WRITES="1")
    env.pop("KVMNET_STATE", None)
    p = subprocess.Popen([sys.executable, "-m", "kvmnet", "-C", str(cfg), "--state", str(state), *args],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        err = ""
        while "kvmnet-test: paused after 1" not in err:
            line = p.stderr.readline()
            assert line, f"no pause: {err}{p.stderr.read()}"
            err += line
        p.send_signal(sig)
        out, rest = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    return p.returncode, out, err + rest


def last_history(state) -> object:
    return open_state(state).history(1)[0]


@pytest.fixture
def setup(ns, tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, config(ns))
    return cfg, tmp_path / "kvmnet.state.db"


def test_sigint_during_apply_stops_after_the_step_and_records_it(setup, ns):
    cfg, state = setup
    rc, out, err = signalled(cfg, state, signal.SIGINT, "apply", "--auto-approve", "--parallelism=1")
    assert rc == 130, out + err
    errors = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert errors == [errors[0]] and errors[0].startswith("Error: interrupted by SIGINT")
    assert "not started: bridge.b, bridge.c" in errors[0]
    assert "Traceback" not in err
    assert out.count("Creation complete") == 1
    assert sorted(open_state(state).read().instances) == ["bridge.a"]
    assert live(ns) == ["br-sig-a"]
    h = last_history(state)
    assert h.status == "interrupted" and h.finished
    assert h.summary == "interrupted by SIGINT: 1 added, 0 changed, 0 destroyed"
    # the next apply does the rest
    rc, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state)
    assert rc == 0, out + err
    assert "2 added, 0 changed, 0 destroyed" in out
    assert live(ns) == [f"br-sig-{b}" for b in BRIDGES]


def test_sigterm_during_destroy_exits_143_and_the_state_keeps_the_rest(setup, ns):
    cfg, state = setup
    rc, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state)
    assert rc == 0, out + err
    rc, out, err = signalled(cfg, state, signal.SIGTERM, "destroy", "--auto-approve", "--parallelism=1")
    assert rc == 143, out + err
    assert "Error: interrupted by SIGTERM" in err and "Traceback" not in err
    assert out.count("Destruction complete") == 1
    left = sorted(open_state(state).read().instances)
    assert len(left) == 2 and live(ns) == sorted(f"br-sig-{a.split('.')[1]}" for a in left)
    assert last_history(state).status == "interrupted"
    rc, out, err = run_kvmnet(cfg, "destroy", "--auto-approve", state=state)
    assert rc == 0, out + err
    assert live(ns) == [] and open_state(state).read().instances == {}


def test_sigint_during_a_parallel_apply_records_every_step_that_ran(setup, ns):
    # default parallelism: the next change may already run while the first one's state
    # is written; it finishes and is recorded, nothing new starts
    cfg, state = setup
    rc, out, err = signalled(cfg, state, signal.SIGINT, "apply", "--auto-approve")
    assert rc == 130, out + err
    errors = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert errors == [errors[0]] and errors[0].startswith("Error: interrupted by SIGINT")
    assert "not started: " in errors[0] and "Traceback" not in err
    recorded = sorted(open_state(state).read().instances)
    assert 1 <= len(recorded) < len(BRIDGES)
    assert live(ns) == sorted(f"br-sig-{a.split('.')[1]}" for a in recorded)
    assert out.count("Creation complete") == len(recorded)
    assert last_history(state).status == "interrupted"
