"""The throwaway PostgreSQL cluster the fleet and state tests use is a real server."""
from __future__ import annotations

import psycopg


def test_a_fresh_database_answers_and_survives_a_restart(pg_cluster, pg_db):
    with psycopg.connect(pg_db, autocommit=True) as c:
        c.execute("CREATE TABLE t (v int)")
        c.execute("INSERT INTO t VALUES (7)")
        assert c.execute("SHOW server_version_num").fetchone()[0] >= "150000"
    pg_cluster.restart()
    with psycopg.connect(pg_db) as c:
        assert c.execute("SELECT v FROM t").fetchone() == (7,)
