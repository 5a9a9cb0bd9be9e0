"""A rollback is the inverse plan run by the engine walk, so its deletes get the
consumer check of any delete (SPEC §5): a bridge this apply created, that a port
was enslaved to while the apply ran, is not deleted by ``--rollback-on-failure``.
Real iproute bridge and sysctls in a throw-away namespace, the real CLI; the walk
pauses after its first state write (``KVMNET_TEST_PAUSE_AFTER_WRITES``) until the
test has enslaved the port (``KVMNET_TEST_RESUME_FILE``)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kvmnet.sandbox.netns import add_veth, in_ns
from kvmnet.state import open_state
from tests.conftest import requires_root
from tests.e2e.helpers import write_config

pytestmark = [requires_root, pytest.mark.real]

CONFIG = """
provider "iproute" {{
  netns = "{ns}"
}}

provider "sysctl" {{
  netns       = "{ns}"
  persist_dir = "{persist}"
}}

resource "bridge" "a" {{
  name = "br-rb"
}}

# the kernel refuses ports above 65535: this step fails for real, after bridge.a
resource "sysctl_profile" "bad" {{
  settings   = {{ "net.ipv4.ip_local_port_range" = "70000 80000" }}
  depends_on = [bridge.a]
}}
"""


def test_rollback_keeps_a_bridge_that_gained_a_port_meanwhile(ns, tmp_path):
    add_veth(ns, "p0", "q0")
    cfg, state, resume = tmp_path / "cfg", tmp_path / "kvmnet.state.db", tmp_path / "resume"
    write_config(cfg, CONFIG.format(ns=ns, persist=tmp_path / "sysctl.d"))
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(tmp_path / "cache"),
               KVMNET_TEST_PAUSE_AFTER_WRITES="1", KVMNET_TEST_RESUME_FILE=str(resume))
    env.pop("KVMNET_STATE", None)
    p = subprocess.Popen([sys.executable, "-m", "kvmnet", "-C", str(cfg), "--state", str(state),
                          "apply", "--auto-approve", "--rollback-on-failure"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    try:
        err = p.stderr.readline()
        assert "kvmnet-test: paused after 1" in err, err + p.stderr.read()
        in_ns(ns, "ip", "link", "set", "p0", "master", "br-rb")    # someone else, meanwhile
        resume.touch()
        out, rest = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    err += rest
    assert p.returncode == 1, out + err
    assert "Apply failed at sysctl_profile.bad (create)" in out
    assert "Error: rollback of bridge.a (create) failed: bridge.a is in use by port(s) p0 (enslaved)" in err
    assert "Rollback incomplete. Still as this apply left them: bridge.a (create)" in err
    link = json.loads(in_ns(ns, "ip", "-j", "link", "show", "p0").stdout)[0]
    assert link.get("master") == "br-rb"
    assert sorted(open_state(state).read().instances) == ["bridge.a"]
    h = open_state(state).history(1)[0]
    assert h.status == "failed" and h.summary == "rollback incomplete: 0 undone, 1 left as applied"
