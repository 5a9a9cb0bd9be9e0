"""Connections to the PostgreSQL state, and one line for each thing that can go
wrong with them. Nothing depends on the session (no session advisory lock, no
prepared statement, no ``SET``), so a transaction-mode connection pooler between
kvmnet and the server changes nothing. libpq reads ``sslmode`` and the other
parameters of the connection string (and its PG* environment) itself."""
from __future__ import annotations

import time
from typing import Any

from kvmnet.state.backend import StateError

CONNECT_TIMEOUT = 10      # seconds libpq waits for the server (connect_timeout)
RETRY_FOR = 15.0          # seconds a transaction's start is retried after a lost connection


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


def connect(conninfo: str, *, autocommit: bool = False) -> Any:
    """A new connection (psycopg 3), or one StateError line naming the server."""
    import psycopg
    try:
        conn = psycopg.connect(conninfo, autocommit=autocommit, prepare_threshold=None,
                               connect_timeout=CONNECT_TIMEOUT)
    except psycopg.ProgrammingError as e:        # e.g. an invalid sslmode value
        raise StateError(f"the PostgreSQL state's connection string is not valid: "
                         f"{first_line(e)}; fix conn_str (or PG_CONN_STR)") from None
    except psycopg.Error as e:
        raise StateError(f"cannot connect to the state in {where(conninfo)}: "
                         f"{first_line(e)}") from None
    return conn


def connect_retrying(conninfo: str, retry_for: float = RETRY_FOR) -> Any:
    """:func:`connect`, retried for ``retry_for`` seconds while the server is
    unreachable (a restart); a bad connection string is not retried."""
    deadline = time.monotonic() + retry_for
    delay = 0.1
    while True:
        try:
            return connect(conninfo)
        except StateError as e:
            if "not valid" in str(e) or time.monotonic() + delay > deadline:
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
