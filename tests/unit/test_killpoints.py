"""sdk/killpoints.py: registry, counting mode and the SIGKILL on the N-th hit."""
from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from kvmnet.sdk import killpoints

SCRIPT = """
from kvmnet.sdk.killpoints import hit, register
register("demo", "demo.a", "demo.b")
for p in ("demo.a", "demo.b", "demo.a", "demo.b"):
    hit(p)
print("survived")
"""


def run(env: dict, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env={**env, "PATH": "/usr/bin:/bin"}, cwd=tmp_path)


def test_counting_mode_logs_every_hit_in_order(tmp_path):
    log = tmp_path / "hits"
    cp = run({killpoints.LOG_ENV: str(log)}, tmp_path)
    assert cp.stdout.strip() == "survived", cp.stderr
    assert log.read_text().split() == ["demo.a", "demo.b", "demo.a", "demo.b"]


@pytest.mark.parametrize("at, logged", [("3", ["demo.a", "demo.b", "demo.a"]),
                                        ("demo.b:2", ["demo.a", "demo.b", "demo.a", "demo.b"])])
def test_the_nth_hit_is_killed(tmp_path, at, logged):
    log = tmp_path / "hits"
    cp = run({killpoints.LOG_ENV: str(log), killpoints.AT_ENV: at}, tmp_path)
    assert cp.returncode == -signal.SIGKILL and "survived" not in cp.stdout
    assert log.read_text().split() == logged


def test_unset_means_inert_and_unknown_points_are_refused():
    killpoints.register("demo-unit", "demo-unit.x")
    killpoints.hit("demo-unit.x")
    assert "demo-unit.x" in killpoints.points("demo-unit")
    with pytest.raises(ValueError, match="unregistered kill point"):
        killpoints.hit("demo-unit.nope")
    with pytest.raises(ValueError, match="already registered"):
        killpoints.register("other", "demo-unit.x")
