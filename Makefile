# PatternWatch developer commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_VERBOSITY := -1
# Terraform always runs with the project's CLI config (local provider mirror when present).
export TF_CLI_CONFIG_FILE := $(CURDIR)/.cache/terraform.rc
export CHECKPOINT_DISABLE := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

PY := .venv/bin/python
ENV ?= dev
STACKS_DIR := cdktf.out/stacks
# Terraform workspace for deploy/diff/destroy/release: WORKSPACE=pr123 deploys the copy *-<env>-pr123.
WORKSPACE ?= default
# cdktf draws spinners that redraw dozens of times a second; in a log or CI they are noise. When stdout is not
# a terminal, CI=true makes cdktf-cli 0.21 (Ink) print each line once (an explicit CI=... is kept).
CDKTF := CI=$${CI:-$$([ -t 1 ] || echo true)} TF_WORKSPACE=$(WORKSPACE) npx cdktf

.PHONY: help setup demo load capacity dashboard down run test test-fast test-fast-handlers test-fast-infra test-fast-engine synth validate plan-local deploy diff release destroy deploy-tuner destroy-tuner emulator-start emulator-stop clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: ## Install everything (pipenv, npm) and check the toolchain; safe to re-run
	@scripts/setup.sh

demo: setup ## The platform on this machine: emulator, deploy `local`, stream real bars, summary + PNGs
	@$(PY) -m tooling.demo $(DEMO_ARGS)

load: setup ## Load test on `local`: generated 1-minute bars, latency/throughput/calls per bar into load-output/ [LOAD_ARGS="--symbols 20 --bars-per-symbol 110 --rate 8 --duration 400"]
	@$(PY) -m tooling.load_test $(LOAD_ARGS)

capacity: ## Monthly AWS cost and limits at 100/1,000/10,000 symbols (docs/capacity.md) [CAPACITY_ARGS="--measured load-output/load-report.json"]
	@$(PY) -m tooling.capacity_model $(CAPACITY_ARGS)

dashboard: ## Draw the deployed `local` dashboard from the emulator's metrics into demo-output/dashboard.png [DASHBOARD_ARGS="--hours 6"]
	@$(PY) -m tooling.dashboard_render $(DASHBOARD_ARGS)

down: ## Stop the emulator, which removes the `local` deployment of every workspace, and forget its state
	@$(PY) -m tooling.local_platform_down

run: setup ## Bring up the emulator, synthesize all stacks, validate them, and plan `local`
	@$(PY) -m tooling.emulator start
	@$(MAKE) --no-print-directory synth validate plan-local

test: setup ## Run every test (unit, infra, tooling, integration, checkov, Terraform) with the coverage bars; what CI runs
	@$(PY) -m tooling.toolchain >/dev/null
	$(PY) -m pytest --durations=15 --cov=patternwatch_infra --cov=lambda_src --cov-report=term-missing:skip-covered
	@$(PY) scripts/coverage_gate.py

test-fast: setup ## Infra and Lambda unit tests only (no checkov, Terraform, provider schema, statistics, integration): under a minute on 2 cores
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-fast-handlers test-fast-infra test-fast-engine

# Three pytest processes of about the same CPU time, two at a time on two cores: the handler tests (moto) on one
# core; the infra tests (jsii's start-up and one synth), then the engine, chart and tuner tests on the other.
test-fast-handlers:
	$(PY) -m pytest -q -m "not slow" tests/lambda/functions
test-fast-infra:
	$(PY) -m pytest -q -m "not slow" tests/infra
test-fast-engine:
	$(PY) -m pytest -q -m "not slow" tests/lambda --ignore=tests/lambda/functions

synth: ## cdktf synth: one stack per environment into cdktf.out/
	@$(PY) -m tooling.toolchain >/dev/null
	$(CDKTF) synth --hide-diagnostics

validate: ## terraform init -backend=false && terraform validate on every synthesized stack
	@for dir in $(STACKS_DIR)/*/; do \
	  printf '%-32s ' "$$(basename $$dir)"; \
	  terraform -chdir=$$dir init -backend=false -input=false -no-color >/dev/null && \
	  terraform -chdir=$$dir validate -no-color || exit 1; \
	done

plan-local: ## terraform plan of the `local` stack against the emulator
	terraform -chdir=$(STACKS_DIR)/patternwatch-local init -input=false -no-color >/dev/null
	terraform -chdir=$(STACKS_DIR)/patternwatch-local plan -input=false -no-color

deploy: setup ## Deploy one environment: make deploy ENV=dev [WORKSPACE=pr123] (a workspace is an isolated copy)
	PATTERNWATCH_ENVIRONMENTS=$(ENV) $(CDKTF) deploy patternwatch-$(ENV)

diff: setup ## Show what a deploy would change: make diff ENV=dev [WORKSPACE=pr123]
	PATTERNWATCH_ENVIRONMENTS=$(ENV) $(CDKTF) diff patternwatch-$(ENV)

# FUNCTION or API is checked before setup runs, so a mistyped command fails at once instead of after an install.
release: ## Roll out through a canary: make release ENV=dev [WORKSPACE=pr123] FUNCTION=pattern_detector | API=1 [RELEASE_ARGS=--no-wait]
	@test -n "$(FUNCTION)$(API)" -a -z "$(and $(FUNCTION),$(API))" || { echo "make release needs FUNCTION=<function package> (kinesis_consumer, pattern_detector, alert_processor, threshold_checker, approval_processor or approval_expiry) or API=1 (the API's definition), not both" >&2; exit 2; }
	@$(MAKE) --no-print-directory setup
	$(PY) -m tooling.release --env $(ENV) --workspace $(WORKSPACE) $(if $(API),api,$(FUNCTION)) $(RELEASE_ARGS)

destroy: setup ## Destroy one environment or one workspace of it: make destroy ENV=dev [WORKSPACE=pr123]
	PATTERNWATCH_ENVIRONMENTS=$(ENV) $(CDKTF) destroy patternwatch-$(ENV)

deploy-tuner: setup ## Deploy the power tuner's own stack (tooling; where envs/<ENV>.json enables it; after the platform): make deploy-tuner ENV=dev [WORKSPACE=pr123]
	PATTERNWATCH_ENVIRONMENTS=$(ENV) $(CDKTF) deploy patternwatch-$(ENV)-power-tuner

destroy-tuner: setup ## Destroy the power tuner's stack (before the platform's): make destroy-tuner ENV=dev [WORKSPACE=pr123]
	PATTERNWATCH_ENVIRONMENTS=$(ENV) $(CDKTF) destroy patternwatch-$(ENV)-power-tuner

emulator-start: ## Start (or reuse) the local AWS emulator
	@$(PY) -m tooling.emulator start

emulator-stop: ## Stop the local AWS emulator started by this project
	@$(PY) -m tooling.emulator stop

clean: ## Remove build output (not state)
	rm -rf cdktf.out .cache .pytest_cache
