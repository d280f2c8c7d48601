# The README's commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK ?= dev
# The local file backend keeps state in this folder (git-ignored); no Pulumi Cloud account needed.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state

.PHONY: help
help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install
install: $(VENV)/.installed ## Install the Python environment (.venv) from the hash-pinned lock files

$(VENV)/.installed: requirements-dev.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip >/dev/null
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .
	@touch $@

.PHONY: lock
lock: ## Re-pin requirements*.txt from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.txt
	uv pip compile pyproject.toml --group dev --python-version 3.11 --generate-hashes -q -o requirements-dev.txt

# Stops at once, saying what to install, when the Pulumi CLI or Docker is missing.
.PHONY: deploy-tools
deploy-tools:
	@scripts/require-deploy-tools

.PHONY: up
up: deploy-tools install ## Deploy a stack (default dev) on the local file backend: make up [STACK=prod]
	@mkdir -p .pulumi-state
	pulumi stack select --create $(STACK)
	pulumi up --stack $(STACK)

.PHONY: preview
preview: deploy-tools install ## Show what `make up` would change: make preview [STACK=prod]
	@mkdir -p .pulumi-state
	pulumi stack select --create $(STACK)
	pulumi preview --diff --stack $(STACK)

.PHONY: destroy
destroy: deploy-tools ## Remove a stack (refused while its data volumes are protected, as in prod)
	pulumi destroy --stack $(STACK)

.PHONY: test
test: install ## Install everything and run all tests (unit, PostgreSQL and Docker integration)
	$(VENV)/bin/pytest

.PHONY: test-unit
test-unit: install ## Run only the fast unit tests (Pulumi mocks)
	$(VENV)/bin/pytest tests/unit

.PHONY: lint
lint: install ## Ruff lint and format check, mypy strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: schema
schema: install ## Regenerate the editor schema of the stack files (stacks/stack.schema.json)
	$(VENV)/bin/python -m stacks.schema > stacks/stack.schema.json

.PHONY: bench
bench: install ## Benchmark: resource-graph build time under mocks, per stack and catalogue size
	$(VENV)/bin/python -m benchmarks.graph_build

.PHONY: bench-bringup
bench-bringup: install ## Benchmark: bring-up time of each stack on a running Docker engine
	$(VENV)/bin/python -m benchmarks.bringup

.PHONY: bench-backup
bench-backup: install ## Benchmark: backup tool vs the original scripts (SIZE_GB=1.5)
	$(VENV)/bin/python benchmarks/backup_bench.py --size-gb $(or $(SIZE_GB),1.5)

.PHONY: format
format: install ## Format the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
