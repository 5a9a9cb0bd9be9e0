"""``lifecycle.ignore_changes`` silences the drift check for those attributes (a
deliberate difference from Terraform), against a real bridge in a throw-away
namespace changed behind kvmnet's back; other attributes still report drift."""
from __future__ import annotations

import pytest

from kvmnet.sandbox.netns import in_ns
from tests.conftest import requires_root
from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [requires_root, pytest.mark.real]

CONFIG = """
provider "iproute" {{
  netns = "{ns}"
}}
resource "bridge" "lab" {{
  name      = "br-ign"
  mtu       = 1400
  stp       = false
  addresses = ["10.19.0.1/24"]
  lifecycle {{
    ignore_changes = {ignored}
  }}
}}
"""


def test_ignored_attribute_is_no_drift_and_others_still_are(ns, tmp_path):
    cfg, state = tmp_path / "cfg", tmp_path / "s.db"
    write_config(cfg, CONFIG.format(ns=ns, ignored="[mtu]"))

    def k(*args):
        return run_kvmnet(cfg, "--no-color", *args, state=state)

    assert k("apply", "--auto-approve")[0] == 0
    in_ns(ns, "ip", "link", "set", "br-ign", "mtu", "1300")
    rc, out, err = k("plan", "--refresh-only", "--detailed-exitcode")
    assert rc == 0 and "changed outside" not in out, out + err
    rc, out, err = k("plan", "--detailed-exitcode")
    assert rc == 0, out + err

    # a change the config does not ignore is drift as before
    in_ns(ns, "ip", "link", "set", "br-ign", "type", "bridge", "stp_state", "1")
    rc, out, err = k("plan", "--refresh-only", "--detailed-exitcode")
    assert rc == 2 and "stp" in out and "mtu" not in out.split("changed outside")[1], out + err

    # ignore_changes = all silences every attribute
    write_config(cfg, CONFIG.format(ns=ns, ignored="all"))
    rc, out, err = k("plan", "--refresh-only", "--detailed-exitcode")
    assert rc == 0, out + err
