"""The checks ``make lint`` runs cannot be switched off quietly: mypy has no
``ignore_errors`` (only ``ignore_missing_imports`` for named untyped libraries, never
for kvmnet), the import-linter contracts carry no ``ignore_imports``, ruff refuses
``except Exception: pass`` (S110) and blanket ``noqa``/``type: ignore`` (PGH), no
module opts out with a file-level comment, and ``make test`` runs ``lint``."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("kvmnet", "engine", "sdk", "state", "providers", "scripts")


def pyproject() -> dict:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def test_mypy_ignores_no_errors_and_only_named_untyped_libraries():
    mypy = pyproject()["tool"]["mypy"]
    assert "ignore_errors" not in mypy and "ignore_missing_imports" not in mypy
    for override in mypy.get("overrides", []):
        assert set(override) <= {"module", "ignore_missing_imports"}, override
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        assert modules and not any(m == "*" or m.startswith("kvmnet") for m in modules), modules


def test_the_import_contracts_ignore_no_import_and_cover_every_layer():
    contracts = pyproject()["tool"]["importlinter"]["contracts"]
    assert all("ignore_imports" not in c for c in contracts), contracts
    sources = {m for c in contracts for m in c["source_modules"]}
    assert {"kvmnet.sdk", "kvmnet.engine", "kvmnet.providers", "kvmnet.state"} <= sources


def test_ruff_refuses_except_exception_pass_and_blanket_ignores():
    select = pyproject()["tool"]["ruff"]["lint"]["select"]
    assert {"S110", "PGH"} <= set(select)


def test_no_module_opts_out_of_a_checker():
    opt_out = re.compile(r"^\s*#\s*(mypy:\s*ignore-errors|type:\s*ignore\s*$|ruff:\s*noqa|flake8:\s*noqa)",
                         re.MULTILINE)
    found = [str(p.relative_to(ROOT)) for d in PACKAGE_DIRS for p in (ROOT / d).rglob("*.py")
             if opt_out.search(p.read_text(encoding="utf-8"))]
    assert found == []


def test_make_test_runs_lint():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\blint\b", makefile, re.MULTILINE), makefile
