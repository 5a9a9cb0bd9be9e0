"""The confirm-or-revert protocol of ``apply --confirm-timeout`` as a library: the
files next to the state, who may decide a pending apply, and the history
transitions. The process side (the forked waiter, the terminal prompt) is
:mod:`kvmnet.commands.confirming`; the revert itself is
:func:`kvmnet.engine.operations.revert` (the apply's inverse plan, run by the walk).

Files next to the state ``S``:

``S.confirm.pending``
    written by the waiter once it is ready: the pending apply's history ID, a random
    token, the waiter's pid, the deadline and the log path. Removed when the wait
    ends (before a rollback starts, so a late ``kvmnet confirm`` is told it is too
    late).
``S.confirm``
    the request (``kvmnet confirm``, or ``yes`` typed on the apply's terminal):
    ``{"history_id", "token", "action": "confirm" | "revert"}``. The waiter accepts
    it only when both the history ID and the token are those of its own pending
    record, so a request left over from an earlier apply never confirms a later one.
``S.confirm.log``
    the waiter's output (appended), including the rollback's lines.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

from kvmnet.sdk.files import atomic_write

AWAITING = "awaiting-confirmation"     # history status while the waiter waits
REVERTING = "reverting"                # history status while it rolls back
CONFIRM, REVERT = "confirm", "revert"
POLL_INTERVAL = 0.1                    # seconds between checks of the request file


@dataclass
class Pending:
    """The record of the apply waiting for confirmation (``S.confirm.pending``)."""
    history_id: int
    token: str
    pid: int
    deadline: float          # Unix time
    timeout: float
    log: str

    @classmethod
    def from_dict(cls, d: dict) -> Pending:
        return cls(int(d["history_id"]), str(d["token"]), int(d["pid"]), float(d["deadline"]),
                   float(d["timeout"]), str(d["log"]))


# -- paths and files --------------------------------------------------------------------
def pending_path(state_path: str) -> str:
    return state_path + ".confirm.pending"


def request_path(state_path: str) -> str:
    return state_path + ".confirm"


def log_path(state_path: str) -> str:
    return state_path + ".confirm.log"


def _write_json(path: str, data: dict) -> None:
    """Atomically (temp file + rename), mode 0600."""
    atomic_write(path, json.dumps(data), 0o600)


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_pending(state_path: str) -> Pending | None:
    data = _read_json(pending_path(state_path))
    try:
        return Pending.from_dict(data) if data else None
    except (KeyError, TypeError, ValueError):
        return None


def forget_pending(state_path: str, pending: Pending) -> None:
    """Remove the pending record of a waiter that died (only if it is still that one)."""
    current = read_pending(state_path)
    if current is not None and current.token == pending.token:
        _unlink(pending_path(state_path))


def write_request(state_path: str, pending: Pending, action: str) -> None:
    _write_json(request_path(state_path),
                {"history_id": pending.history_id, "token": pending.token, "action": action})


def requested_action(request: dict | None, pending: Pending) -> str | None:
    """The action a request asks of ``pending``; None unless it names exactly that
    apply (history ID and token) with a known action."""
    if not request or request.get("history_id") != pending.history_id \
            or request.get("token") != pending.token:
        return None
    action = request.get("action")
    return action if action in (CONFIRM, REVERT) else None


# -- the state side -----------------------------------------------------------------------
def history_status(be, history_id: int) -> str | None:
    for limit in (5, None):
        for h in be.history(limit):
            if h.id == history_id:
                return h.status
    return None


def waiter_alive(be, pending: Pending) -> bool:
    """The waiter is alive and still holds the state's exclusive lock."""
    return any(h.pid == pending.pid and h.alive for h in be.locks())


def await_outcome(be, pending: Pending, limit: float) -> str | None:
    """Poll the history until the pending apply is decided (``applied``,
    ``rolled back``, ``failed``, …) or the waiter died; its status then."""
    end = time.monotonic() + limit
    while True:
        status = history_status(be, pending.history_id)
        if status not in (AWAITING, REVERTING):
            return status
        if time.monotonic() >= end or not waiter_alive(be, pending):
            # one last look: it may have finished just now
            status = history_status(be, pending.history_id)
            return None if status in (AWAITING, REVERTING) else status
        time.sleep(POLL_INTERVAL)


def wait_for_request(state_path: str, pending: Pending,
                     terminated: Callable[[], bool] = lambda: False) -> str | None:
    """CONFIRM or REVERT when requested in time (REVERT also once ``terminated()``);
    None at the deadline."""
    path = request_path(state_path)
    while True:
        if terminated():
            return REVERT
        action = requested_action(_read_json(path), pending)
        if action is not None:
            return action
        if time.time() >= pending.deadline:
            return None
        time.sleep(min(POLL_INTERVAL, max(0.0, pending.deadline - time.time())))


def awaiting(be, history_id: int) -> None:
    """The apply succeeded and now waits for a decision."""
    with be.transaction() as w:
        w.update_history(history_id, status=AWAITING)


def publish(state_path: str, pending: Pending) -> None:
    """The waiter is ready: clear any leftover request (never ours), write the record."""
    _unlink(request_path(state_path))
    _write_json(pending_path(state_path), asdict(pending))


def confirmed(be, state_path: str, pending: Pending) -> None:
    """Keep the changes: the entry ends ``success``; nothing is pending any more."""
    from kvmnet.engine.operations import SUCCESS
    from kvmnet.state.records import now_iso
    with be.transaction() as w:
        w.update_history(pending.history_id, status=SUCCESS, finished=now_iso())
    _unlink(pending_path(state_path))
    _unlink(request_path(state_path))


def reverting(be, state_path: str, history_id: int) -> None:
    """A revert starts: from here on a confirm is too late."""
    _unlink(pending_path(state_path))
    with be.transaction() as w:
        w.update_history(history_id, status=REVERTING)


def reverted(state_path: str) -> None:
    _unlink(request_path(state_path))
