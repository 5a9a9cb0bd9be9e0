"""The one place that tunes Python's cyclic garbage collector.

Loading a big configuration or state builds hundreds of thousands of small,
long-lived, acyclic objects; the collector would walk them again and again (≈0.6 s
of CPU at 10,000 resources; PERF-FACTS.md). So it is paused while they are built,
and in a one-shot ``kvmnet`` process what lives as long as the run is then frozen
out of its generations.

Freezing is only for a process that ends with its command: a frozen object is
never collected by the cycle collector, so in a long-lived process (``kvmnet agent
run``'s loop, a test session, a library user) every freeze would keep that moment's
cyclic garbage, open database connections included, for good. It is off until the
command-line entry point turns it on (:func:`allow_freezing`).
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator

_freezing = False


def allow_freezing(allowed: bool = True) -> None:
    """Whether :func:`freeze` may freeze: on for a one-shot command process, off
    for anything that lives on after its work (the agent's loop)."""
    global _freezing
    _freezing = allowed


def freezing_allowed() -> bool:
    return _freezing


@contextlib.contextmanager
def gc_paused(freeze: bool = False) -> Iterator[None]:
    """Collector off inside; ``freeze``: afterwards :func:`freeze` what is alive
    (what was built lives as long as the run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            _freeze()
        if was_enabled:
            gc.enable()


def _freeze() -> None:
    if _freezing:
        gc.freeze()


def freeze() -> None:
    """Move every object alive into the permanent generation, in a one-shot process
    only (see the module's docstring)."""
    _freeze()
