"""What the fleet commands share: the fleet's PostgreSQL database (``--conn-str``
or ``PG_CONN_STR``; the secret never in the repo), its one wording for every
database error, the ``--hosts`` option, and who is acting."""
from __future__ import annotations

import getpass
import os
import socket
from contextlib import contextmanager

import click

from kvmnet.cli import KvmnetFailure

NO_DATABASE = "no fleet database: pass --conn-str or set PG_CONN_STR (a libpq connection string)"

conn_option = click.option("--conn-str", "conninfo", envvar="PG_CONN_STR", default=None, metavar="CONNINFO",
                           show_envvar=True,
                           help="The fleet's PostgreSQL database (libpq connection string; default: $PG_CONN_STR)")

hosts_option = click.option("--hosts", "patterns", multiple=True, metavar="GLOB[,GLOB]",
                            help="Only hosts whose name matches a GLOB, e.g. 'kvm0[1-9]' "
                                 "(repeatable; each value may list several, comma-separated)")


def host_patterns(values) -> list[str]:
    """The globs of every ``--hosts`` value: each is split at its commas, blanks dropped."""
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def actor() -> str:
    """Who runs the command, for the audit: ``$KVMNET_ACTOR``, else user@host."""
    return os.environ.get("KVMNET_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def error(text: str):
    click.echo(f"Error: {text}", err=True)
    raise KvmnetFailure()


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


@contextmanager
def fleet_db(conninfo: str | None, *, required: bool = True):
    """An autocommit connection to the fleet database (each statement its own
    transaction), or None when none is configured and it is not ``required``. The
    fleet's tables are made where missing; a role that may not (a read-only
    monitoring role) reads them as they are. Every database error, connecting or
    inside the block, is one ``Error: fleet database: …`` line."""
    if not conninfo:
        if required:
            error(NO_DATABASE)
        yield None
        return
    import psycopg

    from kvmnet.state.fleet_schema import ensure
    try:
        conn = psycopg.connect(str(conninfo), autocommit=True, connect_timeout=10, prepare_threshold=None)
    except psycopg.Error as e:
        error(f"fleet database: cannot connect: {_first_line(e)}")
    try:
        try:
            ensure(conn)
        except psycopg.errors.InsufficientPrivilege:
            pass
        yield conn
    except psycopg.Error as e:
        error(f"fleet database: {_first_line(e)}")
    finally:
        conn.close()
