"""The throwaway PgBouncer the pooled-state and fleet tests use is a real pooler in
transaction mode: one client's consecutive transactions run in different server
sessions, so session state (psycopg's automatic server-side prepared statements,
on PgBouncer before 1.21) breaks there, and kvmnet's connections do not use it."""
from __future__ import annotations

import psycopg
import pytest

from kvmnet.sandbox.pgbouncer import PgBouncer, auth_line
from kvmnet.state.pg_conn import connect
from tests.conftest import requires_root


@requires_root
def test_consecutive_transactions_of_one_client_run_in_different_sessions(pg_pooled_db):
    with psycopg.connect(pg_pooled_db, autocommit=True, prepare_threshold=None) as c:
        pids = [c.execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(4)]
        with c.transaction():                        # one transaction: one server session
            inside = {c.execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(3)}
    assert len(set(pids)) == 2 and len(inside) == 1


@requires_root
def test_server_side_prepare_breaks_behind_it_and_kvmnets_connections_do_not_prepare(pg_pooled_db):
    with psycopg.connect(pg_pooled_db, autocommit=True) as c:     # psycopg's default threshold
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            for i in range(10):
                c.execute("SELECT %s::int", (i,))
    conn = connect(pg_pooled_db, autocommit=True)
    try:
        assert [conn.execute("SELECT %s::int", (i,)).fetchone()[0] for i in range(10)] == list(range(10))
    finally:
        conn.close()


@requires_root
def test_a_user_missing_from_its_auth_file_is_refused_until_added(pg_bouncer, pg_pooled_db):
    with psycopg.connect(pg_pooled_db, autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS pooled_agent; CREATE ROLE pooled_agent LOGIN")
    agent = pg_pooled_db.replace("user=postgres", "user=pooled_agent")
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(agent).close()
    pg_bouncer.add_user("pooled_agent")
    with psycopg.connect(agent) as c:
        assert c.execute("SELECT current_user").fetchone()[0] == "pooled_agent"


def test_a_user_name_with_a_quote_cannot_enter_the_auth_file():
    assert auth_line("kvm01") == '"kvm01" ""\n'
    with pytest.raises(ValueError, match="double quote"):
        auth_line('a"b')


@requires_root
def test_a_pooler_that_cannot_start_says_why_and_leaves_nothing_running(pg_cluster):
    first = PgBouncer(pg_cluster).start()
    try:
        second = PgBouncer(pg_cluster, root=first.root)     # the same socket: refused
        with pytest.raises(RuntimeError, match="pgbouncer exited at start: .*socket is in use"):
            second.start(timeout=5)
        assert second.proc is None
        with psycopg.connect(first.conninfo(), prepare_threshold=None) as c:   # the first one serves on
            assert c.execute("SELECT 1").fetchone() == (1,)
    finally:
        first.destroy()
    assert not first.root.exists()
