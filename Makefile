# kvmnet — see README.md. Every target installs what it needs first (Debian 12, root).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install test demo bench clean

install:
	@bash scripts/install.sh

test: install
	$(PY) -m pytest -q tests

demo: install
	$(PY) -m kvmnet.demo

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache
