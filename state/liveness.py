"""Is a recorded process still running? (host, pid, boot ID, process start time.)

Lock holder records and history entries both name the process that wrote them;
these helpers decide whether it is alive without trusting a bare pid: a pid from
before the last reboot, or one the kernel has since given to another process, is
dead.
"""
from __future__ import annotations

import socket
from pathlib import Path


def boot_id() -> str:
    """This boot's ID (empty when the kernel does not say)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None when there is no such
    live process (a zombie has exited and released its locks: it counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rfind(")") + 2:].split()   # fields after "pid (comm)"
    if not rest or rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def process_alive(host: str, pid: int, recorded_boot: str = "", recorded_start: int = 0,
                  *, this_host: str | None = None, this_boot: str | None = None) -> bool | None:
    """True: a live process on this host; False: gone; None: another host (unknown).

    ``recorded_boot`` / ``recorded_start`` are checked when they were recorded
    (older records lack them; then the pid alone decides).
    """
    if host != (this_host or socket.gethostname()):
        return None
    boot = boot_id() if this_boot is None else this_boot
    if recorded_boot and boot and recorded_boot != boot:
        return False                      # recorded before the last reboot
    start = process_start(pid)
    if start is None:
        return False
    if recorded_start and start != recorded_start:
        return False                      # the pid was reused by another process
    return True
