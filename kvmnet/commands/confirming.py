"""Confirm or revert: ``kvmnet apply --confirm-timeout SECONDS`` (like ``netplan try``).

After a successful apply, a *waiter* process is forked. It survives the terminal
or SSH session that ran the apply (``setsid``, SIGHUP ignored, stdio to a log
file), holds the state's exclusive lock (handed over with ``Lock.adopt``/
``detach``, so nothing else applies meanwhile), and waits for a confirmation.
Without one before the deadline it rolls back this apply's changes
(:func:`kvmnet.engine.operations.revert`: the apply's inverse plan, run by the engine
walk like any plan) and the history says so.

The protocol (the files next to the state, who may decide, the history
transitions) is :mod:`kvmnet.engine.confirmation`; this module is the process side.

The foreground process prompts for ``yes`` when stdin is a terminal; otherwise it
prints how to confirm and returns while the waiter keeps waiting. Nothing live
crosses the fork (libvirt connections and SQLite handles do not survive one): the
apply closes its providers and state handles first, and the waiter opens the state
again and builds its own providers from the prepared configuration.
"""
from __future__ import annotations

import json
import os
import secrets
import select
import signal
import sys
import time
import traceback
from dataclasses import asdict
from typing import NoReturn

from kvmnet.cli import Ctx, KvmnetFailure, fail
from kvmnet.engine.confirmation import (
    AWAITING, CONFIRM, POLL_INTERVAL, REVERT, REVERTING, Pending, await_outcome, awaiting,
    confirmed, history_status, log_path, publish, reverted, reverting, wait_for_request,
    write_request,
)

READY_TIMEOUT = 15.0                   # how long the apply waits for the waiter to start


def confirm_hint(ctx: Ctx) -> str:
    return f"kvmnet -C {ctx.chdir} --state {ctx.state_path} confirm"


# -- the foreground side ----------------------------------------------------------------------
def wait_for_confirmation(ctx: Ctx, be, ps, prepared, report, timeout: float, lock=None) -> None:
    """Hand the wait to a forked waiter; prompt on a terminal, or explain and return.

    Returns when the changes stay (confirmed, or the waiter keeps waiting); raises
    KvmnetFailure when they were rolled back while this process was still there.
    """
    from kvmnet.state import SUCCESS
    hid = report.history_id
    if lock is None or not hasattr(lock, "adopt"):
        raise RuntimeError("--confirm-timeout needs the run's state lock to hand to the waiter")
    awaiting(be, hid)
    deadline = time.time() + max(0.0, timeout)
    log = log_path(ctx.state_path)
    log_start = os.path.getsize(log) if os.path.exists(log) else 0
    # Nothing live crosses the fork: the apply's provider connections and state
    # handles are closed first (both reopen lazily if this process needs them again).
    # A libvirt connection, or SQLite's per-process lock bookkeeping, copied into a
    # child is not safe to use there, nor to close.
    ps.close()
    ps.instances.clear()
    be.close()
    sys.stdout.flush()
    sys.stderr.flush()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the waiter
        os.close(ready_r)
        code = 1
        try:
            code = _waiter(ctx, prepared, report, lock, deadline, timeout, ready_w)
        except BaseException:                       # noqa: BLE001 - logged, then exit
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(ready_w)
    pending = _wait_ready(ready_r, pid)
    if pending is None:
        # the waiter never got going: the lock is still ours, so undo right here
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _reap(pid, block=True)
        ctx.err(f"Error: the confirmation waiter did not start (see {log}); "
                "rolling back this apply's changes now.")
        from kvmnet.commands.rollback import RollbackPrinter
        from kvmnet.engine.operations import revert
        reverting(be, ctx.state_path, hid)
        revert(be, prepared, ps, report, why="the confirmation waiter did not start",
               events=RollbackPrinter(ctx))
        raise KvmnetFailure()
    lock.detach()           # the waiter holds it now; our release becomes a no-op
    secs = _secs(timeout)
    if not sys.stdin.isatty():
        ctx.console.print(
            f"\nApplied; waiting up to {secs} s for confirmation in the background "
            f"(pid {pid}, log {log}). The state stays locked until then.\n"
            f"Keep these changes with:  {confirm_hint(ctx)}\n"
            f"Roll them back now with:  {confirm_hint(ctx)} --revert\n"
            f"Without a confirmation they are rolled back at "
            f"{time.strftime('%H:%M:%S', time.localtime(deadline))}.", markup=False)
        return
    outcome, said_no = _prompt(ctx, be, pending, secs)
    _reap(pid, block=outcome is not None)
    if outcome == SUCCESS:
        ctx.out("Confirmed: the changes stay.")
        return
    if outcome is None:     # stdin closed: the waiter carries on
        ctx.err(f"\nNo more input: the waiter (pid {pid}) keeps waiting; confirm with "
                f"{confirm_hint(ctx)} before the deadline, or the changes are rolled back.")
        return
    _print_log_since(log, log_start)
    why = ("Rolled back as asked" if said_no else
           "Rolled back on request" if time.time() < pending.deadline else
           f"Not confirmed within {secs} s")
    ctx.err(f"\n{why}: this apply's changes were rolled back (history #{hid}: {outcome}).")
    raise KvmnetFailure()


def _secs(timeout: float) -> str:
    return f"{timeout:g}"


def _wait_ready(fd: int, pid: int) -> Pending | None:
    """The waiter writes its pending record to the pipe once it holds the lock."""
    data = b""
    end = time.monotonic() + READY_TIMEOUT
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    try:
        pending = Pending.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError):
        return None
    return pending if pending.pid == pid else None


def _prompt(ctx: Ctx, be, pending: Pending, secs: str) -> tuple[str | None, bool]:
    """Ask for ``yes`` on the terminal until the apply is decided. Returns the
    history status once decided (None when stdin closed first), and whether the
    answer was ``no``."""
    ctx.console.print(f"\nType yes within {secs} s to keep these changes "
                      f"(or run {confirm_hint(ctx)} from another shell);\n"
                      "without it they are rolled back. no rolls them back now.", markup=False)
    sys.stdout.write("  Keep the changes? ")
    sys.stdout.flush()
    line = b""
    while True:
        status = history_status(be, pending.history_id)
        if status not in (AWAITING, REVERTING):
            return status, False
        if status == REVERTING or time.time() >= pending.deadline:
            return await_outcome(be, pending, limit=600), False
        r, _, _ = select.select([sys.stdin], [], [], POLL_INTERVAL * 2)
        if not r:
            continue
        chunk = os.read(sys.stdin.fileno(), 1024)
        if not chunk:
            return None, False
        line += chunk
        if b"\n" not in line:
            continue
        answer, line = line.split(b"\n", 1)[0].strip().decode(errors="replace"), b""
        if answer in ("yes", "no"):
            write_request(ctx.state_path, pending, CONFIRM if answer == "yes" else REVERT)
            return await_outcome(be, pending, limit=600), answer == "no"
        sys.stdout.write("  Only yes keeps the changes (no rolls them back now): ")
        sys.stdout.flush()


def _reap(pid: int, block: bool) -> None:
    try:
        if block:
            os.waitpid(pid, 0)
        else:
            os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _print_log_since(path: str, offset: int) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            sys.stdout.write(f.read())
            sys.stdout.flush()
    except OSError:
        pass


# -- the waiter ----------------------------------------------------------------------------------
def _detach_from_terminal(log: str) -> None:
    """Own session, SIGHUP ignored, stdin from /dev/null, stdout/stderr appended to
    ``log``: nothing of the terminal or SSH session is left to take it down."""
    os.setsid()
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTTOU, signal.SIGTTIN):
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)      # kill <waiter>: roll back now
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def _keep_backup(be) -> None:
    """The confirmed state is the last good one (``<state>.backup``)."""
    from kvmnet.state import StateError
    try:
        be.backup()
    except StateError as e:
        _say(f"warning: the state's backup copy was not written: {e}")


def _say(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"[{stamp}] {text}", flush=True)


def _waiter(ctx: Ctx, prepared, report, lock, deadline: float, timeout: float, ready_fd: int) -> int:
    from kvmnet.commands.common import open_backend

    log = log_path(ctx.state_path)
    _detach_from_terminal(log)
    ctx.no_color, ctx._console = True, None          # the log is no terminal
    lock.holder.command = f"{lock.holder.command} (waiting for confirmation)"
    # a lease lost during the wait (PostgreSQL) is logged; the decision's first state
    # write then raises, before anything live is touched
    if hasattr(lock, "on_lost"):
        lock.on_lost = lambda why: _say(f"error: the state lock was lost: {why}")
    lock.adopt()
    be = open_backend(ctx)                           # never the parent's connection
    hid = report.history_id
    pending = Pending(hid, secrets.token_hex(16), os.getpid(), deadline, timeout, log)
    publish(ctx.state_path, pending)
    _say(f"apply #{hid} ({ctx.command_line()}): waiting until "
         f"{time.strftime('%H:%M:%S', time.localtime(deadline))} for confirmation (pid {os.getpid()})")
    try:
        os.write(ready_fd, json.dumps(asdict(pending)).encode())
    except OSError:
        pass                                         # the apply is gone: keep waiting anyway
    finally:
        os.close(ready_fd)

    action = wait_for_request(ctx.state_path, pending, terminated=lambda: _terminated)
    from kvmnet.state import LockError
    try:
        return _decide(ctx, be, prepared, report, lock, pending, action, timeout)
    except LockError as e:
        _say(f"error: apply #{hid}: the waiter stopped: {e}")
        return 1


def _decide(ctx: Ctx, be, prepared, report, lock, pending: Pending, action: str | None,
            timeout: float) -> int:
    """Keep or roll back the apply as decided; the waiter's exit code."""
    hid = report.history_id
    if action == CONFIRM:
        confirmed(be, ctx.state_path, pending)
        _say(f"apply #{hid}: confirmed; the changes stay")
        _keep_backup(be)
        lock.release()
        return 0

    why = ("terminated (SIGTERM)" if _terminated else "rollback requested" if action == REVERT
           else f"not confirmed within {_secs(timeout)} s")
    reverting(be, ctx.state_path, hid)
    _say(f"apply #{hid}: {why}; rolling back")
    rb = _roll_back(ctx, be, prepared, report, why)
    reverted(ctx.state_path)
    _say(f"apply #{hid}: {'rollback complete' if rb is not None and rb.complete else 'rollback incomplete'}")
    lock.release()
    return 0 if rb is not None and rb.complete else 1


_terminated = False


def _on_sigterm(signum, frame) -> None:
    global _terminated
    _terminated = True


def _roll_back(ctx: Ctx, be, prepared, report, why: str):
    """Undo the apply with providers built afresh in this process."""
    from kvmnet.commands.common import provider_set
    from kvmnet.commands.rollback import RollbackPrinter
    from kvmnet.engine.operations import FAILED, end_history, revert
    try:
        ps = provider_set(ctx, prepared)
    except (KvmnetFailure, Exception) as e:     # noqa: BLE001 - reported in the history
        _say(f"cannot start providers for the rollback: {e!r}")
        end_history(be, report.history_id, FAILED,
                    f"{why}, but the rollback could not start: {e!r}")
        return None
    try:
        return revert(be, prepared, ps, report, why=why, events=RollbackPrinter(ctx))
    finally:
        ps.close()


def no_pending_apply(ctx: Ctx) -> NoReturn:
    fail(ctx, f"nothing is waiting for confirmation for state {ctx.state_path} "
              "(no kvmnet apply --confirm-timeout is pending)")
