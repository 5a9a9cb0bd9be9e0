# kvmnet — see README.md. Every target installs what it needs first (Debian 12, root).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install lint test demo bench clean

install:
	@bash scripts/install.sh

# ruff and mypy on the package (config in pyproject.toml; mypy follows package-dir
# through scripts/typecheck.py), and the import layers (import-linter contracts in
# pyproject.toml, through scripts/lint_imports.py).
lint: install
	$(VENV)/bin/ruff check .
	$(PY) scripts/typecheck.py
	$(PY) scripts/lint_imports.py

test: install lint
	$(PY) -m pytest -q tests

demo: install
	$(PY) -m kvmnet.demo

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache
