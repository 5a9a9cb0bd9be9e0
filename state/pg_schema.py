"""The PostgreSQL state's tables: one schema (``kvmnet`` unless the backend block
names another) shared by every workspace (one workspace = one host's state), each
table keyed by ``workspace``. Per-resource rows, not one blob.

JSON columns are ``json`` (kept as written: exact round trip of what the SQLite
backend stores, validated by the server), not ``jsonb`` (which rewrites numbers and
refuses ``\\u0000``). :func:`ensure` creates what is missing in one transaction and
identifies the schema: a schema of another program, or one written by a newer
kvmnet, is refused before anything is read or written."""
from __future__ import annotations

import re

APP = "kvmnet-state"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

TABLES = ("kvmnet_schema", "workspaces", "instances", "history", "intents", "outputs",
          "backup_meta", "backup_instances", "locks")


def schema_name_problem(name: str) -> str:
    """Why ``name`` cannot be the state's schema, or ""."""
    if not _NAME.match(name):
        return (f"schema_name {name!r} must be a lower-case PostgreSQL identifier "
                "(letters, digits, _; at most 63)")
    return ""


def ddl(s: str) -> str:
    """The tables in schema ``s`` (already validated by :func:`schema_name_problem`)."""
    return f"""
CREATE SCHEMA IF NOT EXISTS "{s}";
CREATE TABLE IF NOT EXISTS "{s}".kvmnet_schema (
  app text PRIMARY KEY, format_version integer NOT NULL);
CREATE TABLE IF NOT EXISTS "{s}".workspaces (
  workspace text PRIMARY KEY, lineage text NOT NULL, serial bigint NOT NULL,
  format_version integer NOT NULL);
CREATE TABLE IF NOT EXISTS "{s}".instances (
  workspace text NOT NULL REFERENCES "{s}".workspaces ON DELETE CASCADE,
  address text NOT NULL, type text NOT NULL, name text NOT NULL, key json,
  provider text NOT NULL, id text, attrs json NOT NULL, private json NOT NULL,
  dependencies json NOT NULL, created_at text, updated_at text,
  PRIMARY KEY (workspace, address));
CREATE TABLE IF NOT EXISTS "{s}".history (
  workspace text NOT NULL REFERENCES "{s}".workspaces ON DELETE CASCADE,
  id bigint NOT NULL, command text, started text, finished text, status text,
  serial_before bigint, serial_after bigint, changes json, snapshot json, host text,
  pid bigint, summary text, boot_id text, pid_start bigint,
  PRIMARY KEY (workspace, id));
CREATE TABLE IF NOT EXISTS "{s}".intents (
  workspace text NOT NULL REFERENCES "{s}".workspaces ON DELETE CASCADE,
  id bigint NOT NULL, address text NOT NULL, action text NOT NULL, type text NOT NULL,
  provider text NOT NULL, identity json NOT NULL, created text NOT NULL,
  PRIMARY KEY (workspace, id));
CREATE TABLE IF NOT EXISTS "{s}".outputs (
  workspace text NOT NULL REFERENCES "{s}".workspaces ON DELETE CASCADE,
  name text NOT NULL, value json NOT NULL, sensitive boolean NOT NULL,
  PRIMARY KEY (workspace, name));
CREATE TABLE IF NOT EXISTS "{s}".backup_meta (
  workspace text NOT NULL, kind text NOT NULL CHECK (kind IN ('backup', 'before-restore')),
  lineage text NOT NULL, serial bigint NOT NULL, outputs json NOT NULL,
  taken_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workspace, kind));
CREATE TABLE IF NOT EXISTS "{s}".backup_instances (
  workspace text NOT NULL, kind text NOT NULL, address text NOT NULL,
  type text NOT NULL, name text NOT NULL, key json, provider text NOT NULL, id text,
  attrs json NOT NULL, private json NOT NULL, dependencies json NOT NULL,
  created_at text, updated_at text, PRIMARY KEY (workspace, kind, address),
  FOREIGN KEY (workspace, kind) REFERENCES "{s}".backup_meta ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS "{s}".locks (
  id text PRIMARY KEY, workspace text NOT NULL, mode text NOT NULL,
  host text NOT NULL, pid bigint NOT NULL, started text NOT NULL, command text NOT NULL,
  boot_id text NOT NULL, pid_start bigint NOT NULL, token bigint NOT NULL,
  expires timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS locks_workspace ON "{s}".locks (workspace);
CREATE SEQUENCE IF NOT EXISTS "{s}".lock_tokens;
INSERT INTO "{s}".kvmnet_schema (app, format_version) VALUES ('{APP}', {FORMAT_VERSION})
  ON CONFLICT (app) DO NOTHING;
"""


def identity_problem(tables: set[str], identity: list[tuple[str, int]], schema: str) -> str:
    """Why the schema (its ``tables`` and the rows of its kvmnet_schema table) is
    not one this kvmnet may use, or "" (also for a schema with no tables yet)."""
    if not tables:
        return ""
    if "kvmnet_schema" not in tables or not identity or identity[0][0] != APP:
        return (f"schema {schema!r} holds tables of another program "
                f"({', '.join(sorted(tables)[:5])}), not a kvmnet state; it was not read or "
                "changed: name another schema_name in the backend block")
    if identity[0][1] > FORMAT_VERSION:
        return (f"schema {schema!r} was written by a newer kvmnet (PostgreSQL state format "
                f"{identity[0][1]}; this kvmnet understands up to {FORMAT_VERSION}): upgrade "
                "kvmnet to use it; nothing was changed")
    return ""
