"""Freezing the garbage collector's generations only in a one-shot `kvmnet` process.

A frozen object is never collected by the cycle collector: in a long-lived process
(the agent's loop, this test session) every state read would keep that moment's
cyclic garbage, its SQLite connections included, for good."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap

from kvmnet import gcpause
from kvmnet.state import open_state
from tests.conftest import ROOT


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_long_lived_process_reading_state_again_and_again_keeps_no_connection(tmp_path):
    path = tmp_path / "s.db"
    st = open_state(str(path))
    with st.lock("exclusive", "test"), st.transaction():
        pass
    assert not gcpause.freezing_allowed()       # a test session is no one-shot command
    gc.collect()
    before = open_fds()
    for _ in range(200):
        open_state(str(path)).read()           # never closed: the collector must get them
    gc.collect()
    assert open_fds() - before < 10


def test_a_freeze_keeps_cyclic_garbage_and_its_open_files_for_good(tmp_path):
    """The hazard itself, so the tests here can fail: what is alive at a freeze and
    later becomes cyclic garbage is never collected (run in a fresh process: a
    freeze cannot be undone)."""
    code = textwrap.dedent(f"""
        import gc, os, sys
        from kvmnet import gcpause
        gcpause.allow_freezing(sys.argv[1] == "on")

        class Holder:
            pass

        def open_fds():
            return len(os.listdir("/proc/self/fd"))

        before = open_fds()
        for _ in range(20):
            h = Holder()
            h.me, h.file = h, open({str(tmp_path / "f")!r}, "w")   # a cycle holding a file
            gcpause.freeze()
            del h
        gc.collect()
        print(open_fds() - before)
    """)
    def leaked(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", code, mode], cwd=ROOT, capture_output=True, text=True,
                             check=True)
        return int(out.stdout)
    assert leaked("on") == 20
    assert leaked("off") == 0


def _flag_after(argv: list[str], tmp_path) -> str:
    code = textwrap.dedent(f"""
        import sys
        from kvmnet import gcpause
        from kvmnet.cli import main
        sys.argv = ["kvmnet", *{argv!r}]
        main()
        print("freezing" if gcpause.freezing_allowed() else "not freezing")
    """)
    env = dict(os.environ, KVMNET_PG_RETRY_SECONDS="0")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=60)
    return out.stdout.strip().splitlines()[-1]


def test_the_command_line_freezes_but_the_agents_loop_does_not(tmp_path):
    assert _flag_after(["validate"], tmp_path) == "freezing"
    assert _flag_after(["agent", "run", "--loop", "--repo", str(tmp_path), "--host", "kvm01",
                        "--workdir", str(tmp_path / "w"), "--conn-str", f"host={tmp_path} dbname=none"],
                       tmp_path) == "not freezing"


def test_main_called_with_arguments_is_not_the_process_and_does_not_freeze(tmp_path):
    from kvmnet.cli import main
    os.chdir(tmp_path)
    assert main(["validate"]) == 0
    assert not gcpause.freezing_allowed()
