"""The per-host agent: heartbeat, fetch the pinned commit, plan locally, apply only
with a rollout slot, report.

One :meth:`Agent.cycle` is one pass: heartbeat the host's ``fleet_hosts`` row (last
seen, agent version, labels); with a rollout active that selects the host and has no
result for it yet: check out the commit (git), refuse it if this kvmnet is older than
its ``kvmnet { required_version }``, plan the host's directory (``hosts/<name>/``)
against the live system and report the plan summary (Pending), then ask for a slot.
Granted, it plans again under the local lock and applies, renewing the lease from a
second connection while the walk runs and stopping the walk if the lease cannot be
renewed before it ends; then the result is written to a local file first and
reported (result, condition, applied commit) until PostgreSQL takes it, so a lost
connection neither loses it nor applies twice.

Every database call retries through a reconnect (a restarted server) for
``retry_for`` seconds. Nothing here prints; ``log`` gets one line per event."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import psycopg
from psycopg.types.json import Jsonb

from kvmnet.engine.fleet import drift, local, slots
from kvmnet.engine.fleet.checkout import CheckoutError, checkout
from kvmnet.engine.fleet.pacing import selected
from kvmnet.engine.operations import INTERRUPTED, ROLLED_BACK, SUCCESS, Outcome
from kvmnet.state.pg_conn import first_line, is_bad_conninfo


# a server that refuses the login says so at once: retrying does not change its mind
_REFUSED = ("password authentication failed", "no pg_hba.conf entry", "does not exist")


class AgentError(Exception):
    """The agent cannot go on (the database stayed unreachable); the message says why."""


class AgentTooOld(local.LocalError):
    """This agent's kvmnet is older than the commit requires; the message says where."""


class ApplyChecks(Protocol):
    """Where the probes (engine.fleet.probes) plug into the agent: ``before`` runs
    with the plan made, before the apply (what passes now is what counts later);
    ``after`` runs once the apply succeeded, and returns None when the host is fine,
    else why it reverted the host (operations.revert, with ``hp`` and ``outcome``)."""

    def before(self, hp: local.HostPlan) -> object: ...

    def after(self, hp: local.HostPlan, outcome: Outcome, baseline: object) -> str | None: ...


@dataclass
class AgentConfig:
    conninfo: str
    repo: str
    host: str
    workdir: Path                 # the checkout, the local state and the pending report
    version: str
    labels: tuple[str, ...] = ()
    lease_seconds: float = slots.DEFAULT_LEASE
    retry_for: float = 120.0
    checks: ApplyChecks | None = None
    log: Callable[[str], None] = field(default=lambda line: None)

    @property
    def state_path(self) -> str:
        return str(self.workdir / "state.db")


class Agent:
    def __init__(self, cfg: AgentConfig):
        self.cfg = cfg
        self.conn: psycopg.Connection | None = None
        self.planned: int | None = None          # the rollout whose plan summary was reported
        self.unchanged = False                   # that plan was empty: planned again before asking
        self.loaded: tuple[str, Any, local.StateOpener] | None = None    # (commit, its config, its state)
        cfg.workdir.mkdir(parents=True, exist_ok=True)

    # -- the database, through reconnects --------------------------------------------

    def _db(self, fn):
        deadline = time.monotonic() + self.cfg.retry_for
        delay = 0.2
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.cfg.conninfo, autocommit=True, connect_timeout=5,
                                                 prepare_threshold=None)
                return fn(self.conn)
            except psycopg.OperationalError as e:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if is_bad_conninfo(e):
                    raise AgentError(f"the PostgreSQL connection string is not valid: {first_line(e)}; "
                                     "fix --conn-str or PG_CONN_STR") from None
                if any(w in str(e) for w in _REFUSED):
                    raise AgentError(f"PostgreSQL refused the agent's login: {first_line(e)}") from None
                if time.monotonic() > deadline:
                    raise AgentError(f"PostgreSQL unreachable for {self.cfg.retry_for:g} s: {first_line(e)}") from None
                self.cfg.log(f"database unavailable ({str(e).strip().splitlines()[0] if str(e) else e}); retrying")
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def _write_status(self, c, condition: str, message: str, **cols) -> None:
        """The host's status row, on connection ``c`` (in the caller's transaction)."""
        cols = {"condition": condition, "message": message, **cols}
        names = list(cols)
        values = [Jsonb(v) if k in ("plan_summary",) else v for k, v in cols.items()]
        q = ("UPDATE fleet_hosts SET " + ", ".join(f"{n} = %s" for n in names)
             + ", last_seen = now() WHERE host = %s")
        c.execute(q, (*values, self.cfg.host))   # names are ours, not input

    def _status(self, condition: str, message: str, **cols) -> None:
        self._db(lambda c: self._write_status(c, condition, message, **cols))
        self.cfg.log(f"{condition}: {message}")

    def heartbeat(self) -> None:
        self._db(lambda c: c.execute(
            "INSERT INTO fleet_hosts (host, labels, agent_version, last_seen) VALUES (%s, %s, %s, now()) "
            "ON CONFLICT (host) DO UPDATE SET labels = EXCLUDED.labels, "
            "agent_version = EXCLUDED.agent_version, last_seen = now()",
            (self.cfg.host, list(self.cfg.labels), self.cfg.version)))

    # -- the pending report: written before it is sent --------------------------------

    @property
    def _pending(self) -> Path:
        return self.cfg.workdir / "pending-report.json"

    def _send_pending(self) -> None:
        if not self._pending.exists():
            return
        p = json.loads(self._pending.read_text())
        cols = {"applied_commit": p["commit"]} if p["result"] == "applied" else {}

        def send(c) -> str:
            """The result and the status row in one transaction: no moment where the
            slot is free and the row still says Progressing."""
            with c.transaction():
                accepted = slots.report(c, p["rollout"], self.cfg.host, p["result"], p["message"],
                                        token=p["token"])
                message = p["message"] if accepted else \
                    f"{p['message']} (not recorded in rollout #{p['rollout']}: its slot was granted again)"
                self._write_status(c, p["condition"], message, **cols)
            return message

        message = self._db(send)
        self.cfg.log(f"{p['condition']}: {message}")
        self._pending.unlink()

    def _finish(self, rollout_id: int, token: int | None, commit: str, result: str, condition: str,
                message: str) -> str:
        tmp = self._pending.with_suffix(".tmp")
        tmp.write_text(json.dumps({"rollout": rollout_id, "token": token, "commit": commit, "result": result,
                                   "condition": condition, "message": message}))
        os.replace(tmp, self._pending)
        self._send_pending()
        return condition

    # -- one pass ----------------------------------------------------------------------

    def cycle(self) -> str:
        """One pass; the host's condition after it (None-free: "Idle" when no rollout
        concerns the host)."""
        self.heartbeat()
        self._send_pending()
        self._answer_drift()
        found = self._db(self._what_to_do)
        if found is None:
            self._db(self._give_up_desire)
            return "Idle"
        rollout, has_result = found
        if has_result:
            return "Idle"
        commit = rollout.commit
        if self.loaded is None or self.loaded[0] != commit:
            try:
                self.loaded = (commit, *self._load(commit))
            except AgentTooOld as e:
                return self._finish(rollout.id, None, commit, "skipped", "Failing", str(e))
            except (CheckoutError, local.LocalError) as e:
                return self._finish(rollout.id, None, commit, "failed", "Failing", str(e))
        _, prepared, state = self.loaded
        command = f"kvmnet agent (rollout #{rollout.id}, commit {commit[:12]})"
        if self.planned != rollout.id or self.unchanged:
            try:
                hp = local.plan_host(prepared, state, command)
            except local.LocalError as e:
                return self._finish(rollout.id, None, commit, "failed", "Failing", f"plan failed: {e}")
            hp.close()
            self.unchanged = not hp.has_changes
            self._status("Pending", "planned; waiting for a slot", desired_commit=commit,
                         plan_summary=hp.summary)
            self.planned = rollout.id
        unchanged = self.unchanged
        slot, d = self._db(lambda c: slots.request_slot(c, self.cfg.host, self.cfg.lease_seconds,
                                                        unchanged=unchanged))
        if d.verdict == "unchanged":
            self._status("Available", d.why, applied_commit=commit)
            return "Available"
        if slot is None:
            if d.verdict == "skip":
                return self._finish(rollout.id, None, commit, "skipped", "Failing", d.why)
            self._status("Pending", d.why)
            return "Pending"
        return self._apply(slot, prepared, state, command)

    def _in_repo(self, where: str) -> str:
        """``FILE:LINE`` of the checkout, as a path in the repo (``hosts/kvm01/main.hcl:2``)."""
        return os.path.relpath(where, self.cfg.workdir / "checkout") if os.path.isabs(where) else where

    def _answer_drift(self) -> None:
        """Answer a ``kvmnet fleet drift`` request: a refresh-only plan of the applied
        commit's config, stored with engine.fleet.drift.report_drift."""
        row = self._db(lambda c: c.execute("SELECT drift_requested, applied_commit FROM fleet_hosts "
                                           "WHERE host = %s", (self.cfg.host,)).fetchone())
        if row is None or row[0] is None:
            return
        asked, commit = row
        report: dict
        if commit is None:
            report = {"resources": None, "addresses": [], "error": "no commit applied on this host yet"}
        else:
            try:
                if self.loaded is None or self.loaded[0] != commit:
                    self.loaded = (commit, *self._load(commit))
                report = local.check_drift(self.loaded[1], self.loaded[2], "kvmnet agent (drift check)")
            except (CheckoutError, local.LocalError) as e:
                report = {"resources": None, "addresses": [], "error": str(e)}
        self._db(lambda c: drift.report_drift(c, self.cfg.host, report, asked))
        self.cfg.log(f"drift check: {report.get('error') or str(report['resources']) + ' resource(s) drifted'}")

    def _load(self, commit: str) -> tuple[Any, local.StateOpener]:
        """The host's prepared config at ``commit`` (checked out first), and how to
        open the state its directory names."""
        try:
            repo = checkout(self.cfg.repo, commit, self.cfg.workdir / "checkout")
        except CheckoutError as e:
            raise CheckoutError(f"cannot fetch commit: {e}") from None
        host_dir = repo / "hosts" / self.cfg.host
        if not host_dir.is_dir():
            raise CheckoutError(f"commit {commit[:12]} has no directory hosts/{self.cfg.host}")
        try:        # before loading: a configuration for a newer kvmnet may not load here
            local.check_version(str(host_dir), self.cfg.version)
        except local.TooOld as e:
            raise AgentTooOld(f"kvmnet {e.version} is older than commit {commit[:12]} requires "
                              f"(required_version \"{e.need}\" at {self._in_repo(e.where)}); "
                              "upgrade this host's kvmnet") from None
        return (local.load(str(host_dir)),
                local.state_opener(str(host_dir), self.cfg.state_path, self.cfg.conninfo))

    def _what_to_do(self, c):
        r = slots.active_rollout(c)
        if r is not None and (r.state == "aborting" or slots.lost_pending(c)):
            r = slots.settle(c, self.cfg.host)     # drained, or a lost host to record
        if r is not None and r.state not in ("running", "paused"):
            return None
        if r is None:
            return None
        hosts = slots.host_labels(c)
        if self.cfg.host not in selected(r, hosts):
            return None
        done = c.execute("SELECT 1 FROM fleet_results WHERE rollout_id = %s AND host = %s",
                         (r.id, self.cfg.host)).fetchone()
        return r, done is not None

    def _give_up_desire(self, c) -> None:
        """No rollout will apply the commit the host's row desires (its rollout is
        aborting, stopped or done and has no result for the host): while it aborts
        the row says so (Pending: the rollout still runs); once it has ended the row
        says what the host holds, Available, naming that rollout."""
        row = c.execute(_UNMET_DESIRE, (self.cfg.host,)).fetchone()
        if row is None:
            return
        rid, commit, state, held, said = row
        condition, message = unmet_status(rid, commit, state, held)
        if message == said:
            return
        cols = {} if condition == "Pending" else {"desired_commit": held}
        self._write_status(c, condition, message, **cols)
        self.cfg.log(f"{condition}: {message}")

    def _apply(self, slot: slots.Slot, prepared, state: local.StateOpener, command: str) -> str:
        self._status("Progressing", f"applying commit {slot.commit[:12]} (slot token {slot.token})")
        keeper = LeaseKeeper(self.cfg, slot)
        keeper.start()
        try:
            try:
                hp = local.plan_host(prepared, state, command)
            except local.LocalError as e:
                return self._finish(slot.rollout_id, slot.token, slot.commit, "failed", "Failing",
                                    f"plan failed: {e}")
            try:
                checks = self.cfg.checks
                baseline = checks.before(hp) if checks is not None else None
                with open(self.cfg.workdir / "applies.log", "a") as j:   # one line per apply begun
                    j.write(f"{slot.rollout_id} {slot.commit} {slot.token}\n")
                outcome = local.apply_host(hp, command, stop=keeper.stop_signal)
                why = None
                if outcome.status == SUCCESS and checks is not None:
                    why = checks.after(hp, outcome, baseline)   # probes: a failed one reverted the host
            finally:
                hp.close()
        finally:
            keeper.stop()
        if outcome.status == SUCCESS and why is None:
            return self._finish(slot.rollout_id, slot.token, slot.commit, "applied", "Available",
                                f"applied commit {slot.commit[:12]}: {outcome.summary}")
        if why is not None:
            return self._finish(slot.rollout_id, slot.token, slot.commit, "reverted", "Reverted", why)
        if outcome.status == INTERRUPTED:
            return self._finish(slot.rollout_id, slot.token, slot.commit, "failed", "Failing",
                                f"stopped: the slot's lease could not be renewed ({outcome.summary})")
        word = "rolled back" if outcome.status == ROLLED_BACK else "failed"
        report = outcome.report
        detail = f"{report.failed[0]}: {report.failed[1]} failed: {report.failed[2]}" if report.failed else ""
        return self._finish(slot.rollout_id, slot.token, slot.commit, "failed", "Failing",
                            f"apply {word}: {detail or outcome.summary}")

    def run(self, *, once: bool, interval: float, should_stop: Callable[[], bool] = lambda: False) -> str:
        """``once``: one pass. Else passes every ``interval`` seconds until ``should_stop``."""
        condition = self.cycle()
        while not once and not should_stop():
            end = time.monotonic() + interval
            while time.monotonic() < end and not should_stop():
                time.sleep(min(0.1, interval))
            if not should_stop():
                condition = self.cycle()
        return condition


# the host's desired commit, when the latest rollout of it can no longer apply it here
_UNMET_DESIRE = """
SELECT o.id, o.commit, o.state, h.applied_commit, h.message FROM fleet_hosts h
  JOIN LATERAL (SELECT r.id, r.commit, r.state FROM fleet_rollouts r WHERE r.commit = h.desired_commit
                 ORDER BY r.id DESC LIMIT 1) o ON true
 WHERE h.host = %s AND h.desired_commit IS DISTINCT FROM h.applied_commit
   AND o.state NOT IN ('running', 'paused')
   AND NOT EXISTS (SELECT 1 FROM fleet_results x WHERE x.rollout_id = o.id AND x.host = h.host)
"""


def unmet_status(rollout_id: int, commit: str, state: str, held: str | None) -> tuple[str, str]:
    """The condition and message of a host whose rollout is aborting or ended before
    applying its commit here."""
    head = f"rollout #{rollout_id} of commit {commit[:12]}"
    if state == "aborting":
        return "Pending", f"{head} is aborting: it grants no new slots"
    holds = f"this host holds commit {held[:12]}" if held else "no rollout has applied a commit on this host"
    ended = "was stopped" if state == "stopped" else "ended"
    return "Available", f"{head} {ended} without applying it here; {holds}"


class LeaseKeeper(threading.Thread):
    """Renews the slot's lease every third of it, from its own connection. When the
    lease cannot be renewed (refused, or not reached) and less than a third of it is
    left, :meth:`stop_signal` asks the walk to stop after the step in progress."""

    def __init__(self, cfg: AgentConfig, slot: slots.Slot):
        super().__init__(daemon=True, name=f"lease-{slot.host}")
        self.cfg, self.slot = cfg, slot
        self.renewed = time.monotonic()
        self.lost = False
        self._done = threading.Event()

    def run(self) -> None:
        conn = None
        every = self.slot.lease_seconds / 3
        while not self._done.wait(every):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.cfg.conninfo, autocommit=True, connect_timeout=2,
                                            prepare_threshold=None)
                if slots.renew(conn, self.slot):
                    self.renewed = time.monotonic()
                else:
                    self.lost = True
                    self.cfg.log("lease lost: the slot was not renewed")
            except psycopg.OperationalError:
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop_signal(self) -> int | None:
        left = self.slot.lease_seconds - (time.monotonic() - self.renewed)
        if self.lost or left < self.slot.lease_seconds / 3:
            return int(signal.SIGTERM)
        return None

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)
