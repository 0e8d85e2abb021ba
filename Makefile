# Kapal: `make up` runs the platform here, `make test` checks everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages: what the platform needs, and what the test suite adds. MariaDB for
# kapal-mysql: the -core packages have mariadbd and mariadb-install-db (which needs the
# client's my_print_defaults) but no service, so the machine gets no MariaDB of its own.
RUN_PACKAGES := git python3 python3-venv postgresql postgresql-client redis-server ca-certificates patchelf bubblewrap tini mariadb-server-core mariadb-client-core
TEST_PACKAGES := chromium mariadb-client mariadb-server rabbitmq-server

.PHONY: up test lint types layers pytest bench system-packages test-packages test-services clean

up: system-packages $(STAMP)
	$(BIN)/kapal up

test: system-packages test-packages test-services $(STAMP) lint types layers pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

types: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/deploy.py
	$(BIN)/python bench/runtime.py
	$(BIN)/python bench/router.py
	$(BIN)/python bench/logs.py
	$(BIN)/python bench/wake.py
	$(BIN)/python bench/zero_downtime.py
	$(BIN)/python bench/addons.py

system-packages:
	@./scripts/debian-packages $(RUN_PACKAGES)

test-services:
	@./scripts/test-services

test-packages:
	@./scripts/debian-packages $(TEST_PACKAGES)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

requirements.lock: pyproject.toml
	$(BIN)/uv pip compile --quiet --extra dev --python-version 3.11 pyproject.toml -o requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
