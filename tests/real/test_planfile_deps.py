"""``apply PLANFILE`` records the same dependencies as ``apply``, so the next destroy
removes a dependent object before what it depends on (real iproute bridges in a
throw-away namespace, the real CLI)."""
from __future__ import annotations

import json

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.state import open_state
from tests.conftest import requires_root
from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [requires_root, pytest.mark.real]

# "z" depends on "a" (a reference): destroyed first only if the state knows it;
# without the edge both are in one generation and "a" (sorted first) would go first
CONFIG = """
provider "iproute" {{
  netns = "{ns}"
}}

resource "bridge" "a" {{
  name = "br-up"
  mtu  = 1400
}}

resource "bridge" "z" {{
  name = "br-down"
  mtu  = bridge.a.mtu
}}
"""


def _deps(state) -> dict:
    return {a: r.dependencies for a, r in open_state(state).read().instances.items()}


def _destroy_order(out: str) -> list[str]:
    return [ln.split(":")[0] for ln in out.splitlines() if ln.endswith(": Destruction complete")]


@pytest.fixture
def cfg(ns, tmp_path):
    d = tmp_path / "cfg"
    write_config(d, CONFIG.format(ns=ns))
    return d


def test_a_saved_plan_records_dependencies_like_apply(cfg, ns, tmp_path):
    direct, saved = tmp_path / "direct.db", tmp_path / "saved.db"
    rc, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=direct)
    assert rc == 0, out + err
    want = _deps(direct)
    assert want == {"bridge.a": [], "bridge.z": ["bridge.a"]}
    rc, out, err = run_kvmnet(cfg, "destroy", "--auto-approve", state=direct)
    assert rc == 0, out + err
    assert _destroy_order(out) == ["bridge.z", "bridge.a"]

    planfile = tmp_path / "plan.json"
    rc, out, err = run_kvmnet(cfg, "plan", "--out", str(planfile), state=saved)
    assert rc == 0, out + err
    assert json.loads(planfile.read_text())["resource_changes"]
    rc, out, err = run_kvmnet(cfg, "apply", str(planfile), state=saved)
    assert rc == 0, out + err
    assert _deps(saved) == want
    assert "mtu 1400" in in_ns(ns, "ip", "link", "show", "br-down").stdout

    rc, out, err = run_kvmnet(cfg, "destroy", "--auto-approve", state=saved)
    assert rc == 0, out + err
    assert _destroy_order(out) == ["bridge.z", "bridge.a"]
