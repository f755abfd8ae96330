# clicktrail — `make run` starts the demo, `make test` runs the whole suite.
# Every target creates .venv and installs what it needs; nothing is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium

.PHONY: run test chromium check lint fmt typecheck layering docs bench clean help

help:
	@echo "make run        start clicktrail on 127.0.0.1:8787 with a demo workspace (SQLite in ./var)"
	@echo "make test       install dev dependencies and run the whole test suite"
	@echo "make check      ruff, mypy, the layering contract, then the tests"
	@echo "make fmt        format the code"
	@echo "make docs       regenerate docs/cli.md from the CLI"
	@echo "make screenshots  refresh docs/screenshots/ from the dashboard browser test"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/clicktrail serve --demo

test: $(VENV)/.installed-dev chromium
	$(BIN)/pytest $(PYTEST_ARGS)

# The dashboard's browser test drives Debian's Chromium through Playwright (a dev dependency);
# browser builds are never downloaded (no `playwright install`). Without root or apt the test
# is skipped locally and fails in CI.
chromium:
	@test -x $(CHROMIUM) || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
		|| { DEBIAN_FRONTEND=noninteractive apt-get update -q \
		     && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
		|| echo "warning: could not install chromium; the dashboard browser test will not run"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests bench

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

layering: $(VENV)/.installed-dev
	$(BIN)/lint-imports

check: lint typecheck layering test

screenshots: $(VENV)/.installed-dev
	CLICKTRAIL_SCREENSHOTS=1 $(BIN)/pytest tests/e2e/test_dashboard.py -k sqlite

docs: $(VENV)/.installed-dev
	$(BIN)/python -m clicktrail.cli.reference > docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
