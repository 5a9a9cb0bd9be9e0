"""`kvmnet validate` needs no root, no libvirt and no namespace: an infra repo's CI
job runs it as an ordinary user. Run here as `nobody` (setpriv), with a cache
directory it cannot write (an unwritable parse cache is skipped silently)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root to drop to nobody with setpriv")


def _as_nobody(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "XDG_CACHE_HOME": "/proc/kvmnet-no-cache",
           "NO_COLOR": "1"}
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-m", "kvmnet", *args],
                          capture_output=True, text=True, env=env, cwd="/")


def test_validate_as_nobody_without_libvirt():
    probe = _as_nobody("--version")
    if probe.returncode != 0:
        pytest.skip(f"the venv is not readable by nobody here: {probe.stderr.strip()[:200]}")
    cp = _as_nobody("-C", str(ROOT / "examples" / "guide-lab"), "validate")
    assert cp.returncode == 0, cp.stderr
    assert "Success!" in cp.stdout


def test_validate_errors_as_nobody(tmp_path):
    probe = _as_nobody("--version")
    if probe.returncode != 0:
        pytest.skip(f"the venv is not readable by nobody here: {probe.stderr.strip()[:200]}")
    cfg = Path("/tmp") / f"kvmnet-unpriv-{os.getpid()}"
    cfg.mkdir(mode=0o755)
    try:
        (cfg / "main.hcl").write_text('resource "vlan" "v" {\n  id   = 4095\n  link = "eth0"\n}\n')
        os.chmod(cfg / "main.hcl", 0o644)
        cp = _as_nobody("-C", str(cfg), "validate")
        assert cp.returncode == 1
        assert "main.hcl:2: vlan.v:" in cp.stderr and "4095" in cp.stderr
    finally:
        shutil.rmtree(cfg)
