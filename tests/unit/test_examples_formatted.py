"""Every example is valid and in `kvmnet fmt` layout (what an infra repo's CI checks)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2] / "examples"
FLEET = TOP / "fleet-repo"
# every root: each example directory, and each host of the fleet repo (its modules
# are checked through the hosts that call them, and for layout on their own)
ROOTS = sorted([p for p in TOP.iterdir() if p.is_dir() and p != FLEET]
               + [p for p in (FLEET / "hosts").iterdir() if p.is_dir()])
MODULES = sorted(p for p in (FLEET / "modules").iterdir() if p.is_dir())


def _run(directory: Path, command: list[str], tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmnet", "-C", str(directory), *command],
                          capture_output=True, text=True,
                          env={"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("example", ROOTS, ids=lambda p: str(p.relative_to(TOP)))
@pytest.mark.parametrize("command", [["validate"], ["fmt", "--check"]], ids=" ".join)
def test_example(example, command, tmp_path):
    cp = _run(example, command, tmp_path)
    assert cp.returncode == 0, cp.stdout + cp.stderr


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_fleet_module_formatted(module, tmp_path):
    cp = _run(module, ["fmt", "--check"], tmp_path)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_fleet_layout_uses_modules_in_every_host(tmp_path):
    """The documented layout: hosts call the role modules (count/for_each, an alias)."""
    for host in (FLEET / "hosts").iterdir():
        text = "".join(p.read_text() for p in host.glob("*.hcl"))
        assert 'source' in text and "../../modules/" in text, host
        assert "netns" in text, host
    cp = _run(FLEET / "hosts" / "kvm01", ["graph"], tmp_path)
    assert cp.returncode == 0 and 'module.nat[\\"lab\\"].port_forward.to_guest' in cp.stdout, cp.stdout + cp.stderr
