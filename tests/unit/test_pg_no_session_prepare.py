"""kvmnet's PostgreSQL connections work behind a transaction-mode pooler: none lets
psycopg prepare statements server-side (tests/real/test_pgbouncer.py shows them
breaking behind the sandbox's PgBouncer)."""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


def _connect_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "connect" and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "psycopg":
            yield node


def test_every_psycopg_connection_of_kvmnet_disables_server_side_prepare():
    """Behind a transaction-mode pooler (PgBouncer < 1.21) a prepared statement lives
    in one server session and the next transaction may run in another."""
    missing = []
    for sub in ("kvmnet", "engine", "state", "providers"):
        for path in sorted((ROOT / sub).rglob("*.py")):
            for call in _connect_calls(ast.parse(path.read_text(), str(path))):
                kw = {k.arg: k.value for k in call.keywords}
                v = kw.get("prepare_threshold")
                if not (isinstance(v, ast.Constant) and v.value is None):
                    missing.append(f"{Path(path).relative_to(ROOT)}:{call.lineno}")
    assert missing == []
