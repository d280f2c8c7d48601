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

PROD_PROFILE = $(filter prod,$(shell $(PY) scripts/stack.py profile $(STACK)))
# A prod profile runs the policy pack (policies/) with every rule mandatory: a violation stops
# the preview or the deploy (Pulumi makes the pack's virtualenv). And it asks before deploying;
# other stacks deploy without a question.
POLICY_ARGS = $(if $(PROD_PROFILE),--policy-pack policies --policy-pack-config policies/prod.json)
UP_ARGS = $(if $(PROD_PROFILE),,--yes)
# The stack's passphrase: the one you set, else (never for prod) a random one made on first use.
WITH_PASSPHRASE = file=$$($(PY) scripts/stack.py passphrase $(STACK)) && \
	if [ -n "$$file" ]; then export PULUMI_CONFIG_PASSPHRASE_FILE="$$file"; fi

.PHONY: up
up: deploy-tools install ## Deploy a stack (default dev) on the local file backend: make up [STACK=prod]
	@mkdir -p .pulumi-state
	@$(WITH_PASSPHRASE) && \
	pulumi stack select --create $(STACK) && \
	pulumi up --stack $(STACK) $(UP_ARGS) $(POLICY_ARGS) && \
	pulumi stack output --json --stack $(STACK) | $(PY) scripts/up_banner.py $(STACK)

.PHONY: preview
preview: deploy-tools install ## Show what `make up` would change: make preview [STACK=prod]
	@mkdir -p .pulumi-state
	@$(WITH_PASSPHRASE) && \
	pulumi stack select --create $(STACK) && \
	pulumi preview --diff --stack $(STACK) $(POLICY_ARGS)

.PHONY: destroy
destroy: deploy-tools install ## Remove a stack (refused while its data volumes are protected, as in prod)
	@$(WITH_PASSPHRASE) && pulumi destroy --stack $(STACK)

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

# actionlint checks the GitHub workflows (syntax, expressions, action inputs; their shell scripts
# too where shellcheck is installed). Its PyPI wrapper ships no wheel: it downloads the binary
# while it builds, which fails where only package registries are reachable, so this builds the
# pinned upstream Go module (checked against Go's checksum database) into .venv/bin.
ACTIONLINT_VERSION := v1.7.12

.PHONY: lint-workflows
lint-workflows: install ## actionlint on the GitHub workflows (builds it once; needs Go)
	@$(VENV)/bin/actionlint -version 2>/dev/null | head -n 1 | grep -qxF '$(ACTIONLINT_VERSION)' || { \
	  command -v go >/dev/null || { echo "error: building actionlint needs the Go toolchain; install Go, then run make lint-workflows again" >&2; exit 1; }; \
	  echo "go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)"; \
	  GOBIN="$(CURDIR)/$(VENV)/bin" go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION); \
	}
	$(VENV)/bin/actionlint .github/workflows/*.yml

BASE ?= origin/main
FORMAT ?= markdown
.PHONY: diff
diff: install ## Offline plan of this change against BASE, no credentials: make diff BASE=origin/main [STACK=prod] [FORMAT=json]
	@$(PY) -m plan --base '$(BASE)' $(if $(filter command line environment,$(origin STACK)),--stack '$(STACK)') --format '$(FORMAT)'

.PHONY: schema
schema: install ## Regenerate the editor schema of the stack files (stacks/stack.schema.json)
	$(VENV)/bin/python -m stacks.schema > stacks/stack.schema.json

.PHONY: bench
bench: install ## Benchmark: resource-graph build time under mocks, per stack and catalogue size
	$(VENV)/bin/python -m benchmarks.graph_build

.PHONY: bench-plan
bench-plan: install ## Benchmark: the offline plan (make diff), one stack and every stack
	$(VENV)/bin/python -m benchmarks.plan_bench

.PHONY: bench-bringup
bench-bringup: install ## Benchmark: bring-up time of each stack on a running Docker engine
	$(VENV)/bin/python -m benchmarks.bringup

.PHONY: bench-rpo
bench-rpo: install ## Benchmark: committed data lost to a lost volume with PITR (ARCHIVE_TIMEOUT=60)
	$(VENV)/bin/python -m benchmarks.pitr_rpo --archive-timeout $(or $(ARCHIVE_TIMEOUT),60)

.PHONY: bench-rolling
bench-rolling: install ## Benchmark: a deploy under load, side by side against delete-first (engine)
	$(VENV)/bin/python -m benchmarks.rolling_deploy

.PHONY: bench-backup
bench-backup: install ## Benchmark: backup tool vs the original scripts (SIZE_GB=1.5; PITR=1: pgBackRest too)
	$(VENV)/bin/python benchmarks/backup_bench.py --size-gb $(or $(SIZE_GB),1.5) $(if $(PITR),--pitr)

.PHONY: format
format: install ## Format the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
