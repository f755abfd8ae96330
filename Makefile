# clicktrail — `make run` starts the demo, `make test` runs the whole suite.
# Every target creates .venv and installs what it needs; nothing is installed by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium
# Every dependency, dev tools included, pinned for every platform; `make lock` rewrites it
# from pyproject.toml (docs/operations.md, "Installing").
LOCK := constraints.txt
# uv installs the pinned set in a few seconds where pip takes 20-60 (docs/operations.md);
# `make run INSTALLER=pip` uses pip alone (uv reads its own index settings, not pip.conf).
INSTALLER ?= uv
UV_VERSION := 0.13.9
ifeq ($(INSTALLER),uv)
INSTALLER_BIN := $(BIN)/uv
INSTALL := $(BIN)/uv pip install --python $(BIN)/python -c $(LOCK)
else
INSTALLER_BIN := $(BIN)/python
INSTALL := $(BIN)/python -m pip install -c $(LOCK)
endif
# Compile what the server imports, once: uv compiles nothing (pip compiles everything, 3,000
# files: 10-20 s), and with PYTHONDONTWRITEBYTECODE set nothing would be kept between starts.
PRECOMPILE := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -c 'import clicktrail.cli.serve'

.PHONY: run test chromium check lint fmt typecheck layering docs bench bench-quick clean help lock

help:
	@echo "make run        start clicktrail on 127.0.0.1:8787 with a demo workspace (SQLite in ./var)"
	@echo "make test       install dev dependencies and run the whole test suite"
	@echo "make check      ruff, mypy, the layering contract, then the tests"
	@echo "make fmt        format the code"
	@echo "make docs       regenerate docs/cli.md from the CLI"
	@echo "make lock       re-pin the dependencies in constraints.txt after editing pyproject.toml"
	@echo "make screenshots  refresh docs/screenshots/ from the dashboard browser test"
	@echo "make bench-quick  every measured path at a small size (~5 min), as ratios to in-run"
	@echo "                 anchors, against bench/baseline.json; BASELINE=1 records it"

$(BIN)/python:
	@echo "==> Creating $(VENV) (first run only; later runs start at once)"
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	@echo "==> Installing the installer, uv $(UV_VERSION), into $(VENV)"
	$(BIN)/python -m pip install --disable-pip-version-check uv==$(UV_VERSION) \
		|| { echo "uv could not be installed: run with INSTALLER=pip"; exit 1; }

$(VENV)/.installed: pyproject.toml $(LOCK) | $(INSTALLER_BIN)
	@echo "==> Installing clicktrail and its dependencies, pinned in $(LOCK)"
	$(INSTALL) -e .
	$(PRECOMPILE)
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(INSTALLER_BIN)
	@echo "==> Installing clicktrail with its dev tools, pinned in $(LOCK)"
	$(INSTALL) -e '.[dev]'
	$(PRECOMPILE)
	@touch $@ $(VENV)/.installed

# Re-pin after a change of dependencies in pyproject.toml: pins already in the file are kept
# where they still fit; `make lock LOCK_ARGS=--upgrade` moves every pin to its newest release.
LOCK_ARGS ?=
lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--custom-compile-command "make lock" --quiet $(LOCK_ARGS) -o $(LOCK)

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

# Quick benchmarks (bench/quick.py): exits non-zero naming each figure that slipped beyond the
# noise it measured; `make bench-quick BASELINE=1` records bench/baseline.json instead.
bench-quick: $(VENV)/.installed-dev
	$(BIN)/python bench/quick.py $(if $(BASELINE),--record)

docs: $(VENV)/.installed-dev
	$(BIN)/python -m clicktrail.cli.reference > docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
