"""A benchmark or a test session killed with SIGTERM still stops its throwaway
PostgreSQL cluster and PgBouncer and removes their directories (and its namespaces:
the same ``finally:`` blocks)."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import ROOT, requires_root

pytestmark = [requires_root]


def _processes_naming(path: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if path.encode() in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def _killed_after(argv: list[str], ready: re.Pattern[str], roots: re.Pattern[str]) -> tuple[int, list[str]]:
    """Run ``argv``, send it SIGTERM once a line matches ``ready``; its exit code and
    the directories (the groups of ``roots``) it named."""
    p = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    named: list[str] = []
    try:
        for line in p.stdout:
            m = roots.search(line)
            if m:
                named.extend(m.groups())
            if ready.search(line):
                break
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, named


def _gone(dirs: list[str]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_processes_naming(d) for d in dirs):
        time.sleep(0.1)
    for d in dirs:
        assert not Path(d).exists(), d
        assert _processes_naming(d) == [], d


def test_bench_pg_state_killed_with_sigterm_stops_its_cluster_and_pooler():
    rc, dirs = _killed_after([sys.executable, "benchmarks/bench_pg_state.py", "--bridges", "2", "--pooled"],
                             re.compile(r"^round 1"), re.compile(r" in (/\S+)$"))
    assert rc == 143 and len(dirs) == 2
    _gone(dirs)


SESSION = textwrap.dedent("""
    def test_held(pg_bouncer):
        print("ROOTS", pg_bouncer.cluster.root, pg_bouncer.root, flush=True)
        import time
        time.sleep(60)
""")


def test_a_test_session_killed_with_sigterm_tears_its_cluster_and_pooler_down(tmp_path):
    (tmp_path / "test_held.py").write_text(SESSION)
    rc, dirs = _killed_after(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path), str(tmp_path / "test_held.py")],
        re.compile(r"ROOTS"), re.compile(r"ROOTS (\S+) (\S+)"))
    assert rc == 2 and len(dirs) == 2          # pytest's exit code for an interrupted session
    _gone(dirs)
