# Voice agents platform: one entry point for developers and CI.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE :=
export LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE ?= 0

LIVEKIT_VERSION := v1.13.5
# A livekit-server on PATH wins; otherwise the pinned release is built into .bin/.
LIVEKIT_SERVER := $(or $(shell command -v livekit-server 2>/dev/null),$(CURDIR)/.bin/livekit-server)
export LIVEKIT_SERVER_BIN := $(LIVEKIT_SERVER)

.PHONY: help install test lint format api dev worker clean livekit-server

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[api,worker,dev]'
	touch $@

install: $(STAMP) ## create .venv and install every dependency set

$(CURDIR)/.bin/livekit-server:
	mkdir -p .bin
	GOBIN=$(CURDIR)/.bin go install github.com/livekit/livekit-server/cmd/server@$(LIVEKIT_VERSION)
	mv .bin/server $@

livekit-server: $(LIVEKIT_SERVER) ## the LiveKit server binary (PATH, or the pinned release built with Go)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint livekit-server ## lint, then the whole test suite
	$(BIN)/pytest -q

api: install ## the control plane alone on http://127.0.0.1:8000, with an embedded AWS emulator
	$(BIN)/python -m infra.local.api

dev: api ## the whole system locally (for now: the control plane)

worker: install ## the agent worker in dev mode against $$LIVEKIT_URL
	$(BIN)/python -m worker dev

clean: ## remove build output and the virtual environments
	rm -rf .aws-sam .pytest_cache .ruff_cache
