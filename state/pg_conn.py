"""Connections to the PostgreSQL state, and one line for each thing that can go
wrong with them. Nothing depends on the session (no session advisory lock, no
prepared statement, no ``SET``), so a transaction-mode connection pooler between
kvmnet and the server changes nothing. libpq reads ``sslmode`` and the other
parameters of the connection string (and its PG* environment) itself."""
from __future__ import annotations

import os
import time
from typing import Any

from kvmnet.state.backend import StateError

CONNECT_TIMEOUT = 10      # seconds libpq waits for the server (connect_timeout)
RETRY_FOR = 15.0          # seconds a transaction's start is retried after a lost connection
RETRY_ENV = "KVMNET_PG_RETRY_SECONDS"   # overrides RETRY_FOR (0: no retry)
# libpq's words for a server that is (re)starting or not there yet: worth retrying
_TRANSIENT = ("No such file or directory", "Connection refused", "starting up",
              "shutting down", "server closed the connection", "terminating connection",
              "timeout expired", "in recovery mode")


def where(conninfo: str) -> str:
    """The server and database of ``conninfo``, never its password."""
    from psycopg.conninfo import conninfo_to_dict
    try:
        d = conninfo_to_dict(conninfo)
    except Exception:      # noqa: BLE001 - a malformed string is reported by connect()
        return "the configured PostgreSQL server"
    host = str(d.get("host") or "the default socket")
    port = f":{d['port']}" if d.get("port") else ""
    db = d.get("dbname") or d.get("user") or ""
    return f"PostgreSQL {host}{port}" + (f" database {db}" if db else "")


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(text.splitlines()[0].split())


def is_bad_conninfo(err: BaseException) -> bool:
    """A connection string libpq refuses before connecting (an unknown option,
    ``sslmode=sometimes``): retrying cannot help."""
    import psycopg
    text = str(err)
    return isinstance(err, psycopg.ProgrammingError) or "invalid " in text and ("value" in text or "option" in text)


def connect(conninfo: str, *, autocommit: bool = False) -> Any:
    """A new connection (psycopg 3), or one StateError line naming the server."""
    import psycopg
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, prepare_threshold=None,
                               connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as e:
        if is_bad_conninfo(e):   # e.g. sslmode=sometimes
            raise StateError(f"the PostgreSQL state's connection string is not valid: "
                             f"{first_line(e).removeprefix('connection is bad: ')}; fix "
                             "conn_str (or PG_CONN_STR)") from None
        raise StateError(f"cannot connect to the state in {where(conninfo)}: "
                         f"{first_line(e)}") from None
    return conn


def connect_retrying(conninfo: str, retry_for: float | None = None) -> Any:
    """:func:`connect`, retried for ``retry_for`` seconds (default RETRY_FOR, or
    $KVMNET_PG_RETRY_SECONDS) while the server is unreachable or (re)starting;
    anything else (a bad connection string, a refused login, no SSL) at once."""
    if retry_for is None:
        retry_for = float(os.environ.get(RETRY_ENV) or RETRY_FOR)
    deadline = time.monotonic() + retry_for
    delay = 0.1
    while True:
        try:
            return connect(conninfo)
        except StateError as e:
            if not any(t in str(e) for t in _TRANSIENT) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def is_connection_lost(err: BaseException) -> bool:
    import psycopg
    return isinstance(err, psycopg.OperationalError)


def pg_error(doing: str, conninfo: str, err: BaseException) -> StateError:
    """One line for a server error while ``doing``."""
    if is_connection_lost(err):
        return StateError(f"lost the connection to the state in {where(conninfo)} while "
                          f"trying to {doing} ({first_line(err)}); the transaction was rolled "
                          "back, nothing of it was written: run the command again")
    return StateError(f"cannot {doing} in {where(conninfo)}: {first_line(err)}")
