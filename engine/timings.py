"""Phase timings for ``--timings`` (parse, validate, graph, refresh per provider, diff,
apply per provider)."""
from __future__ import annotations

import time
from contextlib import contextmanager


class Timings:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)

    def add(self, name: str, seconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    def report(self) -> str:
        width = max((len(k) for k in self.phases), default=0)
        return "\n".join(f"timing {k:<{width}} {v * 1000:9.1f} ms" for k, v in self.phases.items())



class _NullTimings(Timings):
    """Records nothing (the default when --timings is not given)."""

    def add(self, name: str, seconds: float) -> None:
        pass


NULL = _NullTimings()
