# sanalpos — make run (whole system locally, with demo traffic) and make test.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION ?= 0.13.8
UV := $(PYTHON) -m uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell $(PYTHON) -c "import sys; print(sys.executable)" 2>/dev/null)

# `make test` uses its own state folder and ports, so it never disturbs a running `make run`.
TEST_KAFKA_PORT ?= 29192
TEST_KAFKA_CONTROLLER_PORT ?= 29193
TEST_PG_PORT ?= 25532
# Stacks that tests start with scripts/stack.py run without Prometheus (SANALPOS_PROMETHEUS=off):
# the monitoring test starts its own, on a free port with its own data folder.
TEST_ENV := SANALPOS_STATE_DIR=$(CURDIR)/.state/test SANALPOS_KAFKA_PORT=$(TEST_KAFKA_PORT) \
	SANALPOS_KAFKA_CONTROLLER_PORT=$(TEST_KAFKA_CONTROLLER_PORT) SANALPOS_PG_PORT=$(TEST_PG_PORT) \
	SANALPOS_PROMETHEUS=off SANALPOS_ALLOW_DEV_SECRETS=1

.PHONY: help install monitoring-tools run up down status logs demo test test-unit test-integration lint schemas bench bench-intake profile bench-checkout infra-up infra-down clean fraud-eval chaos

help:
	@echo "make run      start everything locally with demo traffic (Ctrl-C stops all)"
	@echo "make test     unit + integration tests against real Kafka and PostgreSQL"
	@echo "make up|down|status|logs   the same system in the background, for scripts"
	@echo "make lint     ruff + mypy"
	@echo "make bench    throughput/latency numbers (not part of tests)"
	@echo "make bench-checkout   hosted payment page: click on Pay -> shop page, p50 (browser)"
	@echo "make bench-intake   intake req/s with and without Prefer: wait, vs /healthz"
	@echo "make profile SERVICE=intake [DURATION=20 RATE=50]   py-spy flamegraph under load"
	@echo "make fraud-eval [FRAUD_EVAL_DATA=file]   replay labeled payments, print fraud metrics"
	@echo "make chaos [CHAOS_ARGS=...]   load + kills/restarts on its own stack, then the invariants"

install: .state/.installed

.state/.installed: uv.lock pyproject.toml libs/common/pyproject.toml $(wildcard services/*/pyproject.toml)
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is required (python3 not found)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required"; exit 1; }
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen
	@mkdir -p .state && touch $@

run: install
	$(UV) run --no-sync python scripts/stack.py run

up: install
	$(UV) run --no-sync python scripts/stack.py up

down:
	@$(PYTHON) scripts/stack.py down

status:
	@$(PYTHON) scripts/stack.py status

logs:
	@$(PYTHON) scripts/stack.py logs

demo: install
	$(UV) run --no-sync python scripts/stack.py demo

infra-up:
	bash scripts/infra/infra.sh up

infra-down:
	bash scripts/infra/infra.sh down

# prometheus/promtool (rules, metrics checks) and chromium (ops-page screenshot), when missing.
monitoring-tools:
	@bash scripts/infra/prometheus.sh install
	@bash scripts/infra/chromium.sh install

test: install install-kustomize monitoring-tools
	@$(TEST_ENV) bash scripts/infra/infra.sh up
	@set +e; eval "$$($(TEST_ENV) bash scripts/infra/infra.sh env)"; \
	$(TEST_ENV) $(UV) run --no-sync pytest; status=$$?; \
	$(TEST_ENV) bash scripts/infra/infra.sh down >/dev/null 2>&1; exit $$status

test-unit: install monitoring-tools
	$(UV) run --no-sync pytest -m "not integration"

lint: install
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync mypy libs/common/src services/*/src

schemas: install
	$(UV) run --no-sync python -m sanalpos_common.schemas.export

# One run, every number (relay baseline, HTTP/Kafka saturation, latency, CPU and Kafka records
# per payment, chart) into .state/bench/<timestamp>/; see docs/performance.md. BENCH_ARGS=...
bench: install
	$(UV) run --no-sync python scripts/stack.py up
	$(UV) run --no-sync python scripts/bench.py $(BENCH_ARGS)

# The hosted payment page in a real browser on the whole system: click on Pay -> the shop's
# success_url loaded, five frictionless approvals; prints p50/max (saved to timings.json).
bench-checkout: install monitoring-tools
	@$(TEST_ENV) bash scripts/infra/infra.sh up
	@set +e; eval "$$($(TEST_ENV) bash scripts/infra/infra.sh env)"; \
	$(TEST_ENV) $(UV) run --no-sync pytest -m bench -s -q tests/integration/test_checkout_browser.py; \
	status=$$?; $(TEST_ENV) bash scripts/infra/infra.sh down >/dev/null 2>&1; exit $$status

bench-intake: install
	$(UV) run --no-sync python scripts/stack.py up
	$(UV) run --no-sync python scripts/bench_intake.py

# py-spy flamegraph of one running service while the open-loop generator offers RATE/s.
SERVICE ?= intake
DURATION ?= 20
RATE ?= 50
profile: install
	$(UV) run --no-sync python scripts/stack.py up
	$(UV) run --no-sync python scripts/bench.py profile --service $(SERVICE) --seconds $(DURATION) --rate $(RATE)

# Replays a labeled file through the running system (its own stack, ports and state unless
# SANALPOS_*/INTAKE_HTTP_PORT... are set) and prints the fraud metrics; see scripts/fraud_eval.py.
FRAUD_EVAL_DATA ?= ../shared/data/fraud/sparkov_dev.csv
fraud-eval: install
	$(UV) run --no-sync python scripts/fraud_eval.py --data "$(abspath $(FRAUD_EVAL_DATA))"

# Load and faults (SIGKILLs, broker/PostgreSQL restarts, SIGSTOP) on a stack of its own
# (.state/chaos, Kafka 29392/29393, PostgreSQL 25732, services 29402-29406), then the
# invariants, replay and poison checks; exits 1 when one breaks. docs/reliability.md.
chaos: install
	$(UV) run --no-sync python scripts/chaos.py $(CHAOS_ARGS)

# tests/deploy renders the Kubernetes overlays with `kubectl kustomize`; on a machine without
# kubectl this builds the standalone kustomize (Go module proxy) into .state/bin instead.
KUSTOMIZE_VERSION ?= v5.5.0
install-kustomize:
	@command -v kubectl >/dev/null || command -v kustomize >/dev/null || test -x .state/bin/kustomize || \
	  GOBIN=$(CURDIR)/.state/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# Regenerate deploy/k8s/overlays/production/kafka-{topics,users}.yaml from sanalpos_common.topics.
kafka-resources: install
	$(UV) run --no-sync python scripts/deploy/kafka_resources.py

clean: down
	rm -rf .state
