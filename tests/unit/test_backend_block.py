"""The kvmnet { backend ... } block: which state a root directory uses, and one
diagnostic (file, line) for each thing wrong with the block."""
from __future__ import annotations

from pathlib import Path

import pytest

from kvmnet.engine.backend_block import backend_settings


def settings(tmp_path: Path, text: str, env: dict | None = None):
    d = tmp_path / "kvm07"
    d.mkdir(exist_ok=True)
    (d / "main.hcl").write_text(text)
    got, diags = backend_settings(d, env=env or {})
    return got, [(x.message, x.line) for x in diags.items]


def test_without_a_block_the_state_is_the_sqlite_file(tmp_path):
    got, diags = settings(tmp_path, 'resource "bridge" "b" {\n  name = "b"\n}\n')
    assert got.kind == "sqlite" and diags == []


def test_a_pg_block_takes_the_connection_from_the_environment_and_the_directory_name(tmp_path):
    got, diags = settings(tmp_path, 'kvmnet {\n  backend "pg" {}\n}\n',
                          env={"PG_CONN_STR": "host=/run/pg dbname=kvm"})
    assert diags == []
    assert (got.kind, got.conn_str, got.workspace, got.schema_name) == (
        "pg", "host=/run/pg dbname=kvm", "kvm07", "kvmnet")


def test_the_block_names_conn_str_schema_workspace_and_lease(tmp_path):
    got, diags = settings(tmp_path, 'kvmnet {\n  backend "pg" {\n    conn_str = "dbname=a"\n'
                          '    schema_name = "net"\n    workspace = "kvm01"\n'
                          '    lease_seconds = 10\n  }\n}\n', env={"PG_CONN_STR": "dbname=b"})
    assert diags == []
    assert (got.conn_str, got.schema_name, got.workspace, got.lease_seconds) == (
        "dbname=a", "net", "kvm01", 10.0)


def test_a_pg_block_without_conn_str_or_pg_conn_str_is_an_error(tmp_path):
    _, diags = settings(tmp_path, 'kvmnet {\n  backend "pg" {}\n}\n')
    assert diags == [('backend "pg" needs conn_str, or the environment variable PG_CONN_STR '
                      "(keep passwords out of the repository)", 2)]


@pytest.mark.parametrize("body, message, line", [
    ('  backend "pg" {\n    conn_str = "${var.c}"\n  }\n', "conn_str must be a literal string", 3),
    ('  backend "pg" {\n    conn = "x"\n  }\n', 'unknown attribute "conn" in backend "pg"', 3),
    ('  backend "pg" {\n    conn_str = "x"\n    lease_seconds = 1\n  }\n',
     "lease_seconds must be a number from 3 to 3600", 4),
    ('  backend "s3" {}\n', "one of sqlite, pg", 2),
    ('  backend "sqlite" {}\n  backend "sqlite" {}\n', "only one backend block", 3),
    ('  path = "x"\n', 'unknown attribute "path" in the kvmnet block', 2),
    ('  required_providers {}\n', 'unexpected block "required_providers"', 2),
])
def test_each_problem_is_one_diagnostic_at_its_line(tmp_path, body, message, line):
    _, diags = settings(tmp_path, "kvmnet {\n" + body + "}\n", env={"PG_CONN_STR": "x"})
    assert len(diags) == 1 and message in diags[0][0] and diags[0][1] == line, diags


def test_the_config_loader_accepts_the_block_and_reports_its_problems(tmp_path):
    from kvmnet.engine.config.loader import load_config
    d = tmp_path / "h"
    d.mkdir()
    (d / "main.hcl").write_text('kvmnet {\n  backend "pg" {\n    conn_str = "x"\n  }\n}\n')
    assert not load_config(d, use_cache=False).diagnostics
    (d / "main.hcl").write_text('kvmnet {\n  backend "nfs" {}\n}\n')
    assert "one of sqlite, pg" in str(load_config(d, use_cache=False).diagnostics.items[0].message)


def test_only_files_that_spell_kvmnet_are_parsed_for_the_block(tmp_path, monkeypatch):
    import kvmnet.engine.backend_block as bb
    d = tmp_path / "kvm07"
    d.mkdir()
    (d / "a.hcl").write_text('resource "bridge" "b" {\n  name = "b"\n}\n')
    (d / "b.hcl").write_text('kvmnet {\n  backend "pg" {}\n}\n')
    (d / "c.hcl").write_text('resource "bridge" "kvmnet_br" {\n  name = "c"\n}\n')
    seen = []
    real = bb.parse_files
    monkeypatch.setattr(bb, "parse_files", lambda paths: seen.extend(p.name for p, _ in paths) or real(paths))
    got, diags = backend_settings(d, env={"PG_CONN_STR": "dbname=x"})
    assert (got.kind, list(diags.items)) == ("pg", [])
    assert seen == ["b.hcl", "c.hcl"]
