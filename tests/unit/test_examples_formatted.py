"""Every example is valid and in `kvmnet fmt` layout (what an infra repo's CI checks)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "examples").iterdir() if p.is_dir())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("command", [["validate"], ["fmt", "--check"]], ids=" ".join)
def test_example(example, command, tmp_path):
    cp = subprocess.run([sys.executable, "-m", "kvmnet", "-C", str(example), *command],
                        capture_output=True, text=True, env={"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert cp.returncode == 0, cp.stdout + cp.stderr
