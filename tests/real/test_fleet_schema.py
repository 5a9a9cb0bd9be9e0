"""The fleet's DDL applies to a real PostgreSQL, twice, and its checks refuse bad rows."""
from __future__ import annotations

import psycopg
import pytest

from kvmnet.state import fleet_schema


def test_the_schema_is_created_once_and_refuses_a_second_active_rollout(pg_db):
    with psycopg.connect(pg_db) as c:
        fleet_schema.ensure(c)
        fleet_schema.ensure(c)
        c.execute("INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, "
                  "max_failures, state) VALUES ('abc', 'ops', '10%', 2, 1, 'running')")
        c.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, "
                      "max_failures, state) VALUES ('def', 'ops2', '10%', 2, 1, 'running')")
        c.rollback()
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute("INSERT INTO fleet_hosts (host, condition) VALUES ('kvm01', 'Happy')")


def test_a_current_schema_is_only_read_so_commands_never_wait_on_agents_row_locks(pg_db):
    """ensure() on a current database takes no table lock: it returns while another
    transaction holds a row of fleet_rollouts FOR UPDATE (an agent granting a slot)."""
    with psycopg.connect(pg_db) as c:
        fleet_schema.ensure(c)
        assert fleet_schema.installed_version(c) == fleet_schema.SCHEMA_VERSION
        c.execute("INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, "
                  "max_failures, state) VALUES ('abc', 'ops', '10%', 2, 1, 'running')")
        c.commit()
        c.execute("SELECT * FROM fleet_rollouts FOR UPDATE")          # held open
        with psycopg.connect(pg_db, autocommit=True) as other:
            other.execute("SET lock_timeout = '2s'")
            fleet_schema.ensure(other)            # would wait and fail if it ran ALTER TABLE
        c.rollback()


def test_an_older_schema_is_upgraded(pg_db):
    with psycopg.connect(pg_db) as c:
        fleet_schema.ensure(c)
        c.execute("UPDATE fleet_meta SET value = '1' WHERE key = 'schema_version'")
        c.execute("ALTER TABLE fleet_rollouts DROP COLUMN lost_after")
        c.commit()
        fleet_schema.ensure(c)
        assert fleet_schema.installed_version(c) == fleet_schema.SCHEMA_VERSION
        assert c.execute("SELECT count(*) FROM information_schema.columns WHERE "
                         "table_name = 'fleet_rollouts' AND column_name = 'lost_after'").fetchone()[0] == 1
