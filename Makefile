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
lock: ## Re-pin requirements*.txt from pyproject.toml, and the policy pack's (needs uv)
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements.txt
	uv pip compile pyproject.toml --group dev --python-version 3.11 --generate-hashes -q -o requirements-dev.txt
	uv pip compile policies/requirements.in -c requirements-dev.txt --python-version 3.11 --generate-hashes -q -o policies/requirements.txt

# Stops at once, saying what to install, when Docker is missing. (The deploy commands say so
# themselves when the Pulumi CLI is.)
.PHONY: deploy-tools
deploy-tools:
	@scripts/require-deploy-tools

# The deploy commands drive the Pulumi engine through its Automation API, running the program
# in .venv (deploy/): `pulumi` on PATH, else the pinned CLI `make pulumi-cli` builds. A stack
# with a prod profile runs the policy pack with every rule mandatory and asks before deploying.
DEPLOY = $(PY) -m deploy
DEPLOY_ARGS = --stack '$(STACK)' $(if $(YES),--yes)

.PHONY: up
up: deploy-tools install policy-env ## Deploy a stack (default dev) on the local file backend: make up [STACK=prod] [YES=1]
	@$(DEPLOY) up $(DEPLOY_ARGS)

.PHONY: preview
preview: deploy-tools install policy-env ## Show what `make up` would change: make preview [STACK=prod]
	@$(DEPLOY) preview $(DEPLOY_ARGS) --diff

.PHONY: refresh
refresh: deploy-tools install ## Record what the Docker engine really runs in the stack's state (asks first)
	@$(DEPLOY) refresh $(DEPLOY_ARGS)

.PHONY: destroy
destroy: deploy-tools install ## Remove a stack (refused while its data volumes are protected, as in prod)
	@$(DEPLOY) destroy $(DEPLOY_ARGS)

.PHONY: recover
recover: deploy-tools install policy-env ## After losing the stack's host: bring it back on the new one from the off-host repository: make recover STACK=prod [TO=latest] [YES=1]
	@$(DEPLOY) recover $(DEPLOY_ARGS) --to '$(or $(TO),latest)'

.PHONY: logs
logs: deploy-tools install ## Follow every container's logs, each line prefixed: make logs [STACK=prod] [SERVICE=order-db]
	@$(PY) -m deploy.logs --stack '$(STACK)' $(if $(SERVICE),--service '$(SERVICE)')

# The policy pack runs in a virtualenv of its own (policies/venv), from its hash-pinned
# requirements; `--policy-pack policies/analyzer` starts it (the CLI never makes that venv).
POLICY_VENV := policies/venv

.PHONY: policy-env
policy-env: $(POLICY_VENV)/.installed ## Install the policy pack's environment (policies/venv) from its hash-pinned lock

$(POLICY_VENV)/.installed: policies/requirements.txt
	@test -x $(POLICY_VENV)/bin/python || python3 -m venv $(POLICY_VENV)
	$(POLICY_VENV)/bin/python -m pip install --quiet --require-hashes -r policies/requirements.txt
	@touch $@

# The Pulumi CLI, built from its pinned Go module into .venv/bin for machines without one (CI):
# checked against Go's checksum database, nothing committed (scripts/pulumi-cli).
PULUMI_VERSION := v3.276.0

.PHONY: pulumi-cli
pulumi-cli: install ## Build the pinned Pulumi CLI into .venv/bin (needs Go; a few minutes once)
	@scripts/pulumi-cli $(PULUMI_VERSION) $(VENV)/bin

# Every test in sessions side by side (tests/parallel.py), each one's output in .test-logs/: the
# Docker ones each on a test host of its own (as root; else one after another on this machine's
# engine), two stacks alive at most, those that need no Docker beside them at the lowest CPU
# priority (docs/testing.md#where-the-time-goes). `.venv/bin/pytest` runs them all in one session.
.PHONY: test
test: install policy-env promtool ## Install everything and run all tests (unit, PostgreSQL and Docker integration)
	$(PY) -m tests.parallel

.PHONY: test-unit
test-unit: install promtool ## Run only the fast unit tests (Pulumi mocks)
	$(VENV)/bin/pytest tests/unit

# promtool runs the alert rules' unit tests (tests/unit/components/renderers/test_alert_rules.py). It is taken out
# of Debian's prometheus package into .venv/bin without installing the package (which would
# start a Prometheus server).
.PHONY: promtool
promtool: $(VENV)/bin/promtool ## Put promtool (alert rule tests) into .venv/bin, from Debian's prometheus package

$(VENV)/bin/promtool: | install
	@scripts/promtool $(VENV)/bin

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

# zizmor audits the workflows (secrets' reach, unpinned actions, injections) and Dependabot's
# settings, from the dev lock, offline (no GitHub API calls), on its default persona (`--persona
# auditor`, the pedantic rest, finds nothing either).
.PHONY: lint-workflows
lint-workflows: install ## actionlint and zizmor on the GitHub workflows (builds actionlint once; needs Go)
	@$(VENV)/bin/actionlint -version 2>/dev/null | head -n 1 | grep -qxF '$(ACTIONLINT_VERSION)' || { \
	  command -v go >/dev/null || { echo "error: building actionlint needs the Go toolchain; install Go, then run make lint-workflows again" >&2; exit 1; }; \
	  echo "go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)"; \
	  GOBIN="$(CURDIR)/$(VENV)/bin" go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION); \
	}
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --quiet .github

BASE ?= origin/main
FORMAT ?= markdown
.PHONY: diff
diff: install ## Offline plan of this change against BASE, no credentials: make diff BASE=origin/main [STACK=prod] [FORMAT=json]
	@$(PY) -m plan --base '$(BASE)' $(if $(filter command line environment,$(origin STACK)),--stack '$(STACK)') --format '$(FORMAT)'

.PHONY: schema
schema: install ## Regenerate the stack files' editor schema and docs/settings.md from the settings model
	$(VENV)/bin/python -m stacks.schema > stacks/stack.schema.json
	$(VENV)/bin/python -m stacks.reference > docs/settings.md

.PHONY: bench
bench: install ## Benchmark: resource-graph build time under mocks, per stack and catalogue size
	$(VENV)/bin/python -m benchmarks.graph_build

.PHONY: bench-plan
bench-plan: install ## Benchmark: the offline plan (make diff), one stack and every stack
	$(VENV)/bin/python -m benchmarks.plan_bench

.PHONY: bench-idle
bench-idle: install ## Benchmark: the CPU a standing stack takes, by health-check interval: make bench-idle [STACK=dev] [INTERVALS="10s 20s"]
	$(VENV)/bin/python -m benchmarks.idle_cost --stack $(or $(STACK),dev) --intervals $(INTERVALS)

.PHONY: bench-bringup
bench-bringup: install ## Benchmark: bring-up time of each stack on a running Docker engine
	$(VENV)/bin/python -m benchmarks.bringup

.PHONY: bench-program
bench-program: install ## Benchmark: the program's CPU (dev up and previews), the SDK's output wait and ours
	$(VENV)/bin/python -m benchmarks.program_cpu

.PHONY: bench-rpo
bench-rpo: install ## Benchmark: committed data lost to a lost volume with PITR (ARCHIVE_TIMEOUT=60)
	$(VENV)/bin/python -m benchmarks.pitr_rpo --archive-timeout $(or $(ARCHIVE_TIMEOUT),60)

.PHONY: bench-dr
bench-dr: install ## Benchmark: a lost host recovered from the off-host repository, RPO and RTO per database, beside a logical restore (ROWS=200000 OUTAGE=120)
	$(VENV)/bin/python -m benchmarks.disaster_recovery --rows $(or $(ROWS),200000) --outage $(or $(OUTAGE),120)

.PHONY: bench-swarm
bench-swarm: install ## Benchmark: a node of a three-node swarm lost under load: seconds to down, to whole, failed requests (RUNS=1)
	$(VENV)/bin/python -m benchmarks.swarm_node_loss --runs $(or $(RUNS),1)

.PHONY: bench-failover
bench-failover: install ## Benchmark: a replicated database's primary node lost under writes: seconds to writes back, failed writes, orders lost; a switchover (RUNS=1)
	$(VENV)/bin/python -m benchmarks.failover --runs $(or $(RUNS),1)

.PHONY: bench-rolling
bench-rolling: install ## Benchmark: deploys under load: side by side, delete-first, and two bad releases
	$(VENV)/bin/python -m benchmarks.rolling_deploy

.PHONY: bench-monitoring
bench-monitoring: install ## Benchmark: Prometheus's memory and disk per day at the stack's scrape interval
	$(VENV)/bin/python -m benchmarks.monitoring $(if $(filter command line environment,$(origin STACK)),--stack '$(STACK)')

.PHONY: bench-backup
bench-backup: install ## Benchmark: backup tool vs the original scripts (SIZE_GB=1.5; PITR=1: pgBackRest too)
	$(VENV)/bin/python benchmarks/backup_bench.py --size-gb $(or $(SIZE_GB),1.5) $(if $(PITR),--pitr)

.PHONY: bench-cpu
bench-cpu: install ## Benchmark: the machine's CPU by command while tests run (root, Debian's acct): make bench-cpu [TESTS=tests/integration]
	$(VENV)/bin/python -m benchmarks.cpu_by_command -- $(VENV)/bin/pytest -q $(or $(TESTS),tests)

.PHONY: format
format: install ## Format the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
