# Two entry points on a fresh machine: `make run` (the main job on built-in defaults) and
# `make test` (the test suite). Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned: on these machines 2.13.0 is a local CPU build; any other version downloads GBs.
TORCH := torch==2.13.0

.PHONY: run test test-all lint bench install clean clean-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/mamrl reproduce --preset quick --output runs/reproduce-quick

test: install
	$(BIN)/python -m pytest -q -n 2

test-all: install
	$(BIN)/python -m pytest -q -n 2 -m ""

# ruff (from the test extra) with the rules in pyproject.toml; CI runs it before the tests.
lint: install
	$(BIN)/ruff check src tests examples scripts

bench: install
	$(BIN)/mamrl bench --output BENCHMARKS.md

# numba caches compiled code per source file and does not notice when an inlined helper in
# another file changed: after editing src/mamrl/sim/kernel.py, clear the cache.
clean-cache:
	find src -name '*.nbi' -delete -o -name '*.nbc' -delete

clean: clean-cache
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
