# The README's commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK ?= dev
# The local file backend keeps state in this folder (git-ignored); no Pulumi Cloud account needed.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state

.PHONY: help
help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: install
install: ## Install the Python environment (.venv) from the lock file
	@scripts/ensure-uv
	uv sync --locked

.PHONY: up
up: install ## Deploy a stack (default dev) on the local file backend: make up [STACK=prod]
	@scripts/require-deploy-tools
	@mkdir -p .pulumi-state
	pulumi stack select --create $(STACK)
	pulumi up --stack $(STACK)

.PHONY: preview
preview: install ## Show what `make up` would change: make preview [STACK=prod]
	@scripts/require-deploy-tools
	@mkdir -p .pulumi-state
	pulumi stack select --create $(STACK)
	pulumi preview --diff --stack $(STACK)

.PHONY: destroy
destroy: ## Remove a stack's containers, networks and volumes: make destroy [STACK=dev]
	@scripts/require-deploy-tools
	pulumi destroy --stack $(STACK)

.PHONY: test
test: install ## Install everything and run all tests (unit, PostgreSQL and Docker integration)
	uv run --locked pytest

.PHONY: test-unit
test-unit: install ## Run only the fast unit tests (Pulumi mocks)
	uv run --locked pytest tests/unit

.PHONY: lint
lint: install ## Ruff lint and format check, mypy strict
	uv run --locked ruff check .
	uv run --locked ruff format --check .
	uv run --locked mypy

.PHONY: format
format: install ## Format the code with ruff
	uv run --locked ruff format .
	uv run --locked ruff check --fix .
