"""What the fleet commands share: the PostgreSQL connection (``--conn-str`` or
``PG_CONN_STR``; the secret never in the repo) and who is acting."""
from __future__ import annotations

import getpass
import os
import socket
from contextlib import contextmanager

import click

from kvmnet.cli import KvmnetFailure

conn_option = click.option("--conn-str", "conninfo", envvar="PG_CONN_STR", metavar="CONNINFO",
                           help="PostgreSQL connection string (env PG_CONN_STR)")


def actor() -> str:
    """Who runs the command, for the audit: ``$KVMNET_ACTOR``, else user@host."""
    return os.environ.get("KVMNET_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def error(text: str):
    click.echo(f"Error: {text}", err=True)
    raise KvmnetFailure()


@contextmanager
def connected(conninfo: str | None, *, ensure_schema: bool = True):
    """An autocommit connection to the fleet's database; every database error is one
    ``Error:`` line."""
    import psycopg

    from kvmnet.state import fleet_schema
    if not conninfo:
        error("no PostgreSQL connection: give --conn-str or set PG_CONN_STR")
    try:
        conn = psycopg.connect(str(conninfo), autocommit=True, connect_timeout=10,
                               prepare_threshold=None)
    except psycopg.Error as e:
        error(f"cannot connect to PostgreSQL: {str(e).strip().splitlines()[0] if str(e).strip() else e}")
    try:
        if ensure_schema:
            fleet_schema.ensure(conn)
        yield conn
    except psycopg.Error as e:
        error(f"PostgreSQL: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")
    finally:
        conn.close()
