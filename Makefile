# AgentOS: `make run` and `make test` do all set-up on a fresh machine, then run.
# `make setup` is the set-up alone (system packages when root on Debian, .venv, frontend).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The interpreter for the venv. Debian's /usr/bin/python3 comes first: it lives under
# /usr, which the unprivileged web tier can read when `agentos up` drops root, and which
# app containers see read-only. Any Python >= 3.11 works for a single-user setup.
PYTHON ?= $(shell for p in /usr/bin/python3 python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { command -v $$p; break; }; done)

# System packages installed with apt-get when running as root on Debian.
RUN_PACKAGES := python3-venv runc tini
TEST_PACKAGES := docker.io crun openssl
BENCH_PACKAGES := docker.io bubblewrap
# The unprivileged user the web tier runs as when `agentos up` starts as root.
SERVICE_USER := agentos

ARGS ?=
PYTEST_ARGS ?=

define apt_install
	missing=(); for pkg in $(1); do dpkg -s "$$pkg" >/dev/null 2>&1 || missing+=("$$pkg"); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing system packages: $${missing[*]}"; \
	    apt-get update -q >/dev/null; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$${missing[@]}" >/dev/null; \
	  else \
	    echo "==> note: missing system packages (install them as root): $${missing[*]}" >&2; \
	  fi; \
	fi
endef

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: setup
setup: system-packages $(STAMP) service-user frontend ## Install everything needed to run (into .venv)

.PHONY: system-packages
system-packages:
	@$(call apt_install,$(RUN_PACKAGES))

.PHONY: service-user
service-user:
	@if [ "$$(id -u)" = 0 ] && ! id -u $(SERVICE_USER) >/dev/null 2>&1; then \
	  echo "==> creating system user $(SERVICE_USER) for the web tier"; \
	  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin $(SERVICE_USER); \
	fi

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.11 not found (set PYTHON=...)" >&2; exit 1; }
	@test -x $(BIN)/python || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing agentos and its dependencies into $(VENV)"
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 \
	  | { grep -v "^WARNING: Location 'file:///opt/pypi" || true; }
	@cd / && $(abspath $(BIN))/python -c 'import orchestrator.cli, kernel.service, quart_trio, hypercorn' \
	  || { echo "error: the install into $(VENV) is broken" >&2; exit 1; }
	@touch $@

# The web desktop, built into frontend/dist when its sources exist.
FRONTEND_SOURCES := $(shell test -d frontend && find frontend -path frontend/node_modules -prune \
	-o -path frontend/dist -prune -o -type f -print)

.PHONY: frontend
frontend:
	@if [ -f frontend/package.json ]; then $(MAKE) --no-print-directory frontend/dist/index.html; fi

frontend/dist/index.html: $(FRONTEND_SOURCES)
	@echo "==> building the desktop (frontend/dist)"
	@cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build
	@touch $@

.PHONY: run
run: setup ## Set up, then start AgentOS (kernel + web tier); ARGS="--port 9000" passes flags
	$(BIN)/agentos up $(ARGS)

.PHONY: test-setup
test-setup: setup
	@$(call apt_install,$(TEST_PACKAGES))

.PHONY: lint
lint: setup ## ruff (lint + format check), mypy --strict, import layering
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: fmt
fmt: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.PHONY: test
test: test-setup lint ## Set up, lint, and run the whole test suite (and the cgroup v2 VM run)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-v2

# This host mounts cgroups hybrid (v1 controllers); production hosts are pure v2. The
# tests marked v2vm run again inside a throwaway VM whose only hierarchy is v2.
# The v2vm tool lives beside the checkout in shared/tools, or at this workplace's path.
V2VM ?= $(firstword $(wildcard $(abspath ../shared/tools/v2vm) /work/shared/tools/v2vm) \
	$(abspath ../shared/tools/v2vm))

.PHONY: test-v2
test-v2: test-setup ## Run the v2vm-marked tests inside a pure cgroup v2 VM (root)
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "==> WARNING: skipped the cgroup v2 VM run: it needs root"; \
	elif [ ! -x "$(V2VM)" ]; then \
	  echo "==> WARNING: skipped the cgroup v2 VM run: no v2vm tool at $(V2VM)"; \
	else \
	  echo "==> cgroup v2: running the v2vm tests inside a pure-v2 VM ($(V2VM))"; \
	  $(V2VM) /usr/bin/env AGENTOS_TEST_RUNTIMES=runc,crun \
	    $(abspath $(BIN))/python -m pytest -m v2vm -p no:cacheprovider -q $(PYTEST_ARGS); \
	fi

.PHONY: bench
bench: setup ## Run every benchmark in bench/ and print its table (root)
	@$(call apt_install,$(BENCH_PACKAGES))
	@for script in bench/*.py; do echo "==> $$script"; $(BIN)/python -P $$script || exit 1; done

.PHONY: clean
clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info build
