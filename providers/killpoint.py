"""Named kill points inside providers, for the crash-safety tests.

``kill_point("sysctl", "originals-recorded")`` SIGKILLs this process when the
environment variable ``KVMNET_TEST_KILL_AT`` is ``sysctl:originals-recorded`` (the
N-th time the point is reached with ``sysctl:originals-recorded#N``), and does
nothing otherwise. Each provider names the points between two side effects of one
change, so a test can kill an apply exactly there.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "KVMNET_TEST_KILL_AT"
_reached: Counter = Counter()


def kill_point(provider: str, point: str) -> None:
    want = os.environ.get(ENV)
    if not want:
        return
    name = f"{provider}:{point}"
    _reached[name] += 1
    if want == name or want == f"{name}#{_reached[name]}":
        os.kill(os.getpid(), signal.SIGKILL)
