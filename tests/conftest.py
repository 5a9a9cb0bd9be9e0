"""Shared pytest set-up. Real-component tests need root; they skip with a reason otherwise."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


requires_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")


def pytest_configure(config):
    """SIGTERM stops the session as Ctrl-C does, so the fixtures' teardowns still
    stop the throwaway servers and delete the namespaces (by default it ends the
    process at once, leaking them)."""
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm(KeyboardInterrupt)


@pytest.fixture
def ns():
    """A fresh network namespace for one test, always deleted."""
    from kvmnet.sandbox.netns import netns
    with netns() as name:
        yield name


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster per test session (Debian's postgresql, a
    temporary directory, a Unix socket only), always destroyed."""
    if os.geteuid() != 0:
        pytest.skip("needs root (a throwaway PostgreSQL cluster run as postgres)")
    from kvmnet.sandbox.pgcluster import PgCluster
    cluster = PgCluster().start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_db(pg_cluster, request):
    """A fresh database in the session's cluster for one test: its connection string."""
    import re
    import uuid
    name = "t_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    return pg_cluster.create_database(name)


@pytest.fixture(scope="session")
def pg_bouncer(pg_cluster):
    """One throwaway PgBouncer (Debian's pgbouncer, transaction pooling, a Unix
    socket in a temporary directory) in front of the session's cluster, always
    stopped."""
    from kvmnet.sandbox.pgbouncer import PgBouncer
    bouncer = PgBouncer(pg_cluster).start()
    try:
        yield bouncer
    finally:
        bouncer.destroy()


@pytest.fixture
def pg_pooled_db(pg_bouncer, pg_db):
    """A fresh database reached through the pooler: its connection string (the
    superuser's pool already holds two server connections, taken in turn)."""
    return pg_bouncer.warm(pg_bouncer.pooled(pg_db))
