# Two entry points, both self-contained on a fresh machine with Python 3.11+ and make:
#   make demo   set up, create a demo shop (SQLite, demo data, console gateway) and run the daemon
#   make test   set up and run the whole test suite (lint, types, tests)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
DEMO_DIR ?= demo-shop

.PHONY: demo test lint setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	@test -f $(DEMO_DIR)/config.toml || $(BIN)/campaigner init $(DEMO_DIR) --demo
	@echo "web console: http://127.0.0.1:8025/console/ - demo login: demo / demo-console"
	cd $(DEMO_DIR) && ../$(BIN)/campaigner run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
