"""issue 11 item 5 against the sandbox libvirtd: a v1 config (``mode``, ``bridge =
"virbr77"``, ``ip { dhcp_range }``) whose other resource and output read
``network.lab.bridge`` as a string, exactly as v1 did, applies, plans no change
afterwards, and ``kvmnet output`` shows the string."""
from __future__ import annotations

from tests.e2e.helpers import run_kvmnet, write_config

CONFIG = """provider "libvirt" {{
  uri = "{uri}"
}}

resource "network" "lab" {{
  name   = "v1ref"
  mode   = "nat"
  bridge = "virbr77"
  ip {{
    address = "10.97.0.1"
    prefix  = 24
    dhcp_range {{
      start = "10.97.0.100"
      end   = "10.97.0.200"
    }}
  }}
}}

resource "network" "side" {{
  name   = "v1ref-side"
  mode   = "isolated"
  bridge = "${{network.lab.bridge}}s"
}}

output "lab_bridge" {{
  value = network.lab.bridge
}}
"""


def test_a_v1_reference_reads_the_bridge_name(libvirt, tmp_path):
    cfg, state = tmp_path / "cfg", tmp_path / "state.db"

    def k(*args):
        return run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)

    write_config(cfg, CONFIG.format(uri=libvirt.uri))
    rc, out, err = k("apply", "--auto-approve")
    assert rc == 0, out + err
    assert 'lab_bridge = "virbr77"' in out, out
    conn = libvirt.connect()
    try:
        assert "<bridge name='virbr77s'" in conn.networkLookupByName("v1ref-side").XMLDesc(0)
    finally:
        conn.close()
    rc, out, err = k("plan", "--detailed-exitcode")
    assert rc == 0, out + err
    rc, out, err = k("output", "lab_bridge")
    assert (rc, out) == (0, '"virbr77"\n'), out + err
    rc, out, err = k("output", "--raw", "lab_bridge")
    assert (rc, out) == (0, "virbr77\n"), out + err
