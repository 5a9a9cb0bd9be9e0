"""Which state backend a root directory uses: its ``kvmnet { backend "…" { … } }``
block, as Terraform's ``terraform { backend "pg" { … } }``.

The block is read before anything is evaluated (it says where the state is), so its
values are literals; the secret part of a connection string comes from the
environment (``PG_CONN_STR``) rather than the repository. Without a block the state
is the SQLite file (``--state``, default ``kvmnet.state.db`` in the directory)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kvmnet.engine import limits
from kvmnet.engine.config.hcl import Block, parse_files
from kvmnet.engine.diagnostics import Diagnostics

BACKENDS = ("sqlite", "pg")
PG_ATTRS = ("conn_str", "schema_name", "workspace", "lease_seconds")
CONN_ENV = "PG_CONN_STR"
SETTINGS_ATTRS = ("required_version",)     # read by engine/config/settings.py


@dataclass(frozen=True)
class BackendSettings:
    kind: str                      # "sqlite" | "pg"
    conn_str: str = ""             # pg: from the block, else $PG_CONN_STR
    schema_name: str = "kvmnet"
    workspace: str = ""            # pg: this host's workspace (default: the directory name)
    lease_seconds: float | None = None


def _literal_str(block: Block, name: str, d: Diagnostics) -> str | None:
    a = block.attrs.get(name)
    if a is None:
        return None
    if not isinstance(a.value, str) or "${" in a.value:
        d.add(f'backend "{block.labels[0]}": {name} must be a literal string (the backend is '
              "read before anything is evaluated)", file=block.file, line=a.line)
        return None
    return a.value


def read_kvmnet_block(block: Block, directory: str, d: Diagnostics,
                      env: Mapping[str, str] | None = None) -> BackendSettings | None:
    """The settings of one ``kvmnet`` block (None without a backend block); every
    problem is a diagnostic at its line."""
    environ: Mapping[str, str] = os.environ if env is None else env
    for a in block.attrs.values():
        if a.name not in SETTINGS_ATTRS:
            d.add(f'unknown attribute "{a.name}" in the kvmnet block', file=block.file, line=a.line)
    found: BackendSettings | None = None
    for b in block.blocks:
        if b.type != "backend":
            d.add(f'unexpected block "{b.type}" in the kvmnet block; expected backend',
                  file=block.file, line=b.line)
            continue
        if len(b.labels) != 1 or b.labels[0] not in BACKENDS:
            d.add(f'a backend block needs one label, one of {", ".join(BACKENDS)}',
                  file=b.file, line=b.line)
            continue
        if found is not None:
            d.add("only one backend block is allowed", file=b.file, line=b.line)
            continue
        found = _backend(b, directory, d, environ)
    return found


def _backend(b: Block, directory: str, d: Diagnostics, env: Mapping[str, str]) -> BackendSettings:
    allowed = PG_ATTRS if b.labels[0] == "pg" else ()
    for name, a in b.attrs.items():
        if name not in allowed:
            d.add(f'unknown attribute "{name}" in backend "{b.labels[0]}"'
                  + (f"; expected {', '.join(allowed)}" if allowed else ""),
                  file=b.file, line=a.line)
    for sub in b.blocks:
        d.add(f'unexpected block "{sub.type}" in backend "{b.labels[0]}"', file=b.file, line=sub.line)
    if b.labels[0] == "sqlite":
        return BackendSettings("sqlite")
    conn = _literal_str(b, "conn_str", d) or env.get(CONN_ENV, "")
    if not conn and "conn_str" not in b.attrs:
        d.add(f'backend "pg" needs conn_str, or the environment variable {CONN_ENV} '
              "(keep passwords out of the repository)", file=b.file, line=b.line)
    schema = _literal_str(b, "schema_name", d) or "kvmnet"
    workspace = _literal_str(b, "workspace", d) or Path(directory).resolve().name
    lease = b.attrs.get("lease_seconds")
    seconds = None
    if lease is not None:
        if isinstance(lease.value, (int, float)) and not isinstance(lease.value, bool) \
                and 3 <= lease.value <= 3600:
            seconds = float(lease.value)
        else:
            d.add('backend "pg": lease_seconds must be a number from 3 to 3600',
                  file=b.file, line=lease.line)
    return BackendSettings("pg", conn, schema, workspace, seconds)


def _may_hold_block(path: Path) -> bool:
    """Whether a file can hold a ``kvmnet`` block: one whose bytes never spell the
    word cannot, and is not parsed again just to find none (a warm plan of 10,000
    resources paid ≈0.1 s for it). An unreadable or oversized file is left to the
    parse, which refuses it without reading it."""
    try:
        return path.stat().st_size > limits.MAX_FILE_BYTES or b"kvmnet" in path.read_bytes()
    except OSError:
        return True


def backend_settings(directory: str | Path, env: Mapping[str, str] | None = None
                     ) -> tuple[BackendSettings, Diagnostics]:
    """The backend of the root in ``directory`` (SQLite when no block names one)."""
    from kvmnet.engine.config.loader import config_files, display_name
    d = Diagnostics()
    directory = Path(directory)
    found: BackendSettings | None = None
    if not directory.is_dir():
        return BackendSettings("sqlite"), d
    parsed = parse_files([(p, display_name(p)) for p in config_files(directory) if _may_hold_block(p)])
    for pf in parsed:
        for block in pf.blocks:
            if block.type != "kvmnet":
                continue
            got = read_kvmnet_block(block, str(directory), d, env)
            if got is not None and found is not None:
                d.add("only one backend block is allowed", file=block.file, line=block.line)
            elif got is not None:
                found = got
    return found or BackendSettings("sqlite"), d
