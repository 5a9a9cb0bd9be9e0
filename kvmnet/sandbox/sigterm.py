"""SIGTERM as an exception. Python's default for SIGTERM ends the process at once,
skipping the ``finally:`` blocks and context exits that stop throwaway servers
(PostgreSQL, PgBouncer, libvirtd) and delete network namespaces; a benchmark or a
test session killed politely would leak them. With :func:`raise_on_sigterm` the
signal raises instead, so they run."""
from __future__ import annotations

import os
import signal
from typing import Any


def _raiser(exc: type[BaseException]) -> Any:
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:
            # a forked child (pyroute2 makes namespaced sockets in one, and ends it
            # with SIGTERM) must die, not unwind its parent's stack and run the
            # parent's clean-ups on the objects it shares with it
            os._exit(128 + signum)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a second SIGTERM ends it for good
        if exc is SystemExit:
            raise SystemExit(128 + signum)
        raise exc()
    return handler


def raise_on_sigterm(exc: type[BaseException] = SystemExit) -> Any:
    """From now on SIGTERM raises ``exc`` in the main thread (SystemExit(143) by
    default; KeyboardInterrupt makes pytest stop and tear its fixtures down).
    Returns the previous handler."""
    return signal.signal(signal.SIGTERM, _raiser(exc))
