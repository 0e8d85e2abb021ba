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
# nodejs and npm run the official Heroku CLI in tests/e2e/test_heroku_cli.py. NodeSource's
# nodejs ships npm itself and conflicts with Debian's npm, so npm is asked for only when missing.
TEST_PACKAGES := chromium mariadb-client mariadb-server rabbitmq-server nodejs $(if $(shell command -v npm),,npm)
# The official Heroku CLI, from npm into a git-ignored directory (tests/heroku-cli/package-lock.json).
HEROKU_CLI := tests/heroku-cli/node_modules/.bin/heroku

.PHONY: up test lint types layers pytest bench system-packages test-packages test-services heroku-cli clean

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

pytest: $(STAMP) $(HEROKU_CLI)
	$(BIN)/pytest

heroku-cli: $(HEROKU_CLI)

# Reinstalled when the lock file is newer than the installed CLI (touch follows the .bin symlink
# to the installed file, so the date is the install's whatever dates npm keeps). The CLI needs
# Node.js 20; where the system's is older (Debian 12 has 18), Node 20's own npm package goes
# beside it, and the test puts node_modules/.bin first on PATH.
$(HEROKU_CLI): tests/heroku-cli/package-lock.json
	npm ci --prefix tests/heroku-cli --no-audit --no-fund
	@node -e 'process.exit(parseInt(process.versions.node) < 20 ? 1 : 0)' || \
		npm install --prefix tests/heroku-cli --no-save --no-audit --no-fund \
			"node-linux-$$(node -p process.arch)@20.20.2"
	@touch $@

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
