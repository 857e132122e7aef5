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

.PHONY: help install docs lock lock-check test lint format api dev worker clean livekit-server playground
.PHONY: template-check sam-venv deploy worker-image config-push browser-deps

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Every install comes from a hashed lock (locks/, written by `make lock` from pyproject.toml):
# dev.txt here, worker.txt in the image, lambda.txt in the Lambda package (functions/Makefile).
$(STAMP): pyproject.toml locks/dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r locks/dev.txt
	# The project itself by path (what an editable install does), with no build backend to fetch.
	$(BIN)/pip uninstall -q -y voice-agents 2>/dev/null || true
	echo $(CURDIR) > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/voice_agents.pth"
	touch $@

install: $(STAMP) ## create .venv and install the development lock (every dependency set)

lock: install ## re-resolve locks/*.txt from pyproject.toml, keeping current pins (UPGRADE=1: newest)
	$(BIN)/python -m infra.build.locks write $(if $(UPGRADE),--upgrade)

docs: install ## regenerate docs/reference/ (API and config references) from the code
	$(BIN)/python -m infra.build.reference write

lock-check: install ## fail when pyproject.toml and the locks disagree
	$(BIN)/python -m infra.build.locks check

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

test: lint lock-check livekit-server livekit-sip jaeger sip-deps playground browser-deps e2e-deps template-check image ## lint, template checks, the worker image, then the whole test suite
	$(BIN)/pytest -q

# ---------------------------------------------------------------- the worker image
.PHONY: image image-deps
image-deps: ## podman, runc and mmdebstrap, unless a Docker daemon answers (apt, only when missing)
	docker info >/dev/null 2>&1 || { command -v podman && command -v runc && command -v mmdebstrap; } >/dev/null \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
			podman runc mmdebstrap)

image: install image-deps ## build localhost/voice-worker:local (Docker, else podman) and build/voice-worker.tar
	$(BIN)/python -m infra.build.image
.PHONY: bench-load bench-levers bench-profile
BENCH_CALLS ?= 1,2,4,6
BENCH_WORKER_CPUS ?= 1
BENCH_REPEAT ?= 2
BENCH_DELAYS = --stt-ms 200 --llm-ttft-ms 300 --tts-ttfb-ms 200
BENCH_LOAD = $(BIN)/python bench/load.py --calls $(BENCH_CALLS) --keep-going --worker-cpus $(BENCH_WORKER_CPUS) --repeat $(BENCH_REPEAT)
bench-load: install livekit-server e2e-deps ## both load sweeps (instant models, provider delays), worker pinned; docs/performance.md
	$(BENCH_LOAD) --label "instant models, defaults"
	$(BENCH_LOAD) $(BENCH_DELAYS) --label "provider delays, defaults" --out bench/results/load-delays.json --png bench/results/load-delays.png

bench-levers: install livekit-server e2e-deps ## each latency lever beside its own baseline, provider delays
	$(BIN)/python bench/levers.py

bench-profile: install livekit-server e2e-deps ## where one call's CPU goes: per-thread CPU, py-spy flame graph
	$(BIN)/pip install -q py-spy==0.4.3
	$(BIN)/python bench/profile_call.py --name defaults

.PHONY: e2e-deps
e2e-deps: ## espeak-ng and sox for the end-to-end tests' real speech (apt, only when missing)
	command -v espeak-ng >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox)

.PHONY: eval
EVAL_MODE ?= text
eval: install livekit-server e2e-deps ## the example agent-evaluation suite against a local stack of its own (EVAL_MODE=audio: in real rooms); docs/evals.md
	$(BIN)/python -m evals.local --mode $(EVAL_MODE)

.PHONY: chaos audit api-load
chaos: install livekit-server e2e-deps ## the chaos suite alone (faults during live calls); figures in bench/results/chaos.json (CHAOS_ARGS='-k …' picks scenarios)
	CHAOS_RESULTS=$(CURDIR)/bench/results/chaos.json CHAOS_RUNS=$${CHAOS_RUNS:-5} $(BIN)/pytest -q -s tests/chaos $(CHAOS_ARGS)

audit: install ## the invariant check against $$AWS_ENDPOINT_URL / $$LIVEKIT_URL (exit 1 when violated)
	$(BIN)/python -m functions.audit

api-load: install livekit-server ## 1,000 mixed API requests from 50 clients; figures in bench/results/api_load.json
	$(BIN)/python bench/api_load.py

api: install ## the control plane alone on http://127.0.0.1:8000, with an embedded AWS emulator
	$(BIN)/python -m infra.local.api

dev: install livekit-server livekit-sip jaeger sip-deps playground ## the whole system locally: LiveKit, AWS emulator, API, worker, playground
	$(BIN)/python -m infra.local.dev

playground/node_modules/.package-lock.json: playground/package.json playground/package-lock.json
	npm ci --prefix playground --no-audit --no-fund
	touch $@

playground: playground/node_modules/.package-lock.json ## the playground page's npm dependencies (livekit-client)

browser-deps: ## Debian's chromium for the browser test (headless, fake microphone)
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

worker: install ## the agent worker in dev mode against $$LIVEKIT_URL
	$(BIN)/python -m worker dev

clean: ## remove build output (the podman base tarball included) and the caches
	rm -rf .aws-sam .pytest_cache .ruff_cache build

# ---------------------------------------------------------------- AWS (template, build, deploy)
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-stamp
# validate and build run offline: a region and placeholder credentials satisfy the SAM CLI.
SAM_OFFLINE_ENV := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	AWS_ACCESS_KEY_ID=$${AWS_ACCESS_KEY_ID:-offline} AWS_SECRET_ACCESS_KEY=$${AWS_SECRET_ACCESS_KEY:-offline}
export SAM_CLI_TELEMETRY := 0

$(SAM_STAMP):
	test -x $(SAM_VENV)/bin/python || $(PY) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli==1.170.0
	touch $@

sam-venv: $(SAM_STAMP) ## the SAM CLI in its own venv (it pins boto3 and pydantic)

template-check: install sam-venv ## cfn-lint, sam validate (+ --lint), sam build, template tests
	$(BIN)/cfn-lint template.yaml
	$(SAM_OFFLINE_ENV) $(SAM) validate
	$(SAM_OFFLINE_ENV) $(SAM) validate --lint
	$(SAM_OFFLINE_ENV) $(SAM) build
	$(BIN)/pytest -q tests/infra

deploy: sam-venv ## sam build + sam deploy (guided the first time, then samconfig.toml)
	$(SAM) build
	if [ -f samconfig.toml ]; then $(SAM) deploy; else $(SAM) deploy --guided; fi

worker-image: install image-deps ## build the worker image as `make image` does, push it to the stack's ECR repository, record its tag
	$(BIN)/python -m infra.deploy.worker_image

config-push: install ## validate, then upload config/voice_config.yaml to the stack's bucket or SSM parameter
	$(BIN)/python -m infra.deploy.config_push config/voice_config.yaml

# ---------------------------------------------------------------- telephony (LiveKit SIP service)
LIVEKIT_SIP_VERSION := v1.8.0
LIVEKIT_SIP := $(CURDIR)/.bin/livekit-sip
export LIVEKIT_SIP_BIN := $(LIVEKIT_SIP)
.PHONY: livekit-sip sip-deps sip-build-deps
# Other installs may hold dpkg's lock for a while: wait for it rather than fail.
APT := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600

sip-build-deps: ## cgo's libraries for the SIP service: opus, opusfile, soxr (apt, only when missing)
	pkg-config --exists opus opusfile soxr 2>/dev/null || ($(APT) update -qq && \
		$(APT) install -y -qq libopus-dev libopusfile-dev libsoxr-dev pkg-config)

# `go install …@version` fails here (the module proxy refuses version lists): download the pinned
# module and build its command inside the module cache instead. Nothing of it lands in the repo.
$(LIVEKIT_SIP):
	$(MAKE) sip-build-deps
	mkdir -p $(@D)
	go mod download github.com/livekit/sip@$(LIVEKIT_SIP_VERSION)
	cd "$$(go env GOMODCACHE)/github.com/livekit/sip@$(LIVEKIT_SIP_VERSION)" && \
		CGO_ENABLED=1 go build -trimpath -o $@ ./cmd/livekit-sip

livekit-sip: $(LIVEKIT_SIP) ## LiveKit's SIP service, the pinned release built with Go into .bin/

# ---------------------------------------------------------------- the local trace viewer
JAEGER_VERSION := v1.75.0
JAEGER := $(CURDIR)/.bin/jaeger
export JAEGER_BIN := $(JAEGER)
.PHONY: jaeger

# `go install …@version` refuses this module (its go.mod has replace directives): build its
# command inside the module cache, with the module's own go.mod, as for the SIP service.
$(JAEGER):
	mkdir -p $(@D)
	go mod download github.com/jaegertracing/jaeger@$(JAEGER_VERSION)
	cd "$$(go env GOMODCACHE)/github.com/jaegertracing/jaeger@$(JAEGER_VERSION)" && \
		CGO_ENABLED=0 go build -trimpath -o $@ ./cmd/jaeger

jaeger: $(JAEGER) ## Jaeger v2 (OTLP in, memory store, query API), the pinned release built with Go into .bin/

sip-deps: ## Debian's redis-server, which SIP needs next to LiveKit (apt, only when missing)
	command -v redis-server >/dev/null || ($(APT) update -qq && $(APT) install -y -qq redis-server)
