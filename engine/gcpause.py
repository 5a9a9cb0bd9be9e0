"""The one place that tunes Python's cyclic garbage collector.

Loading a big configuration builds hundreds of thousands of small, long-lived,
acyclic objects; the collector would walk them again and again (≈0.6 s of CPU at
10,000 resources; PERF-FACTS.md). So it is paused while they are built, and what
lives as long as the run is then frozen out of its generations.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def gc_paused(freeze: bool = False) -> Iterator[None]:
    """Collector off inside; ``freeze``: afterwards move every object alive into
    the permanent generation (what was built lives as long as the run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


def freeze() -> None:
    """Move every object alive into the permanent generation (see :func:`gc_paused`)."""
    gc.freeze()
