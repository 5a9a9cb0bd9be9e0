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
