# Every target sets up what it needs: a virtualenv in .venv with the package and its dev tools.
.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install run test test-fast test-e2e stress bench lint format mypy check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install arangotasks with its dev tools

run: $(STAMP)  ## start the server on 127.0.0.1:8529 with SQLite in ./data
	$(BIN)/arangotasks serve

test: $(STAMP)  ## the whole test suite: unit, in-process API and end-to-end (starts its own servers)
	$(BIN)/python -m pytest -m 'not stress' $(PYTEST_ARGS)

test-fast: $(STAMP)  ## unit and in-process API tests only
	$(BIN)/python -m pytest -m 'not stress and not e2e' $(PYTEST_ARGS)

test-e2e: $(STAMP)  ## end-to-end tests only (real server processes)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

stress: $(STAMP)  ## long load, fault and fuzz runs (STRESS_SECONDS sets their length)
	$(BIN)/python -m pytest -m stress $(PYTEST_ARGS)

bench: $(STAMP)  ## benchmarks against a real server; writes bench/results.json
	$(BIN)/python -m bench.run

lint: $(STAMP)  ## ruff check and format check
	$(BIN)/ruff check arangotasks tests bench
	$(BIN)/ruff format --check arangotasks tests bench

format: $(STAMP)  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix arangotasks tests bench
	$(BIN)/ruff format arangotasks tests bench

mypy: $(STAMP)  ## strict type check
	$(BIN)/mypy arangotasks

check: lint mypy test  ## everything CI cares about

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
