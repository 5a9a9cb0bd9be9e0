"""``Provider.prepare_apply`` of the link providers: pyroute2 is loaded before the
walk (never by a plan), and only by a provider that changes links."""
from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
from kvmnet.providers.{module} import {cls} as P
p = P({config})
assert "pyroute2" not in sys.modules, "loaded before prepare_apply"
p.prepare_apply()
print("pyroute2" in sys.modules)
"""


@pytest.mark.parametrize("module, cls, config, loads", [
    ("iproute.provider", "IprouteProvider", {}, True),
    ("netplan.provider", "NetplanProvider", {"apply": True}, True),
    ("netplan.provider", "NetplanProvider", {"apply": False}, False),   # files only
])
def test_prepare_apply_loads_pyroute2_only_for_live_link_changes(module, cls, config, loads):
    code = CHECK.format(module=module, cls=cls, config=config)
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == str(loads)
