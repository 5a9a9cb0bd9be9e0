"""SIGTERM as an exception only in the process that asked for it: a forked child
(pyroute2 makes namespaced sockets in one and ends it with SIGTERM) dies at once
instead of unwinding its parent's stack and running the parent's clean-ups."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

CODE = textwrap.dedent("""
    import os, signal, sys, time
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm(KeyboardInterrupt)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, b"ready")
            time.sleep(30)
        finally:
            print("child ran the parent's clean-up", flush=True)
        os._exit(0)
    os.close(w)
    os.read(r, 5)
    os.kill(pid, signal.SIGTERM)
    _, status = os.waitpid(pid, 0)
    print("exit", os.waitstatus_to_exitcode(status), flush=True)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except KeyboardInterrupt:
        print("parent interrupted", flush=True)
""")


def test_a_forked_child_dies_on_sigterm_and_the_parent_still_raises():
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.splitlines() == ["exit 143", "parent interrupted"], out.stdout + out.stderr
