# azure-jit-operator developer entry points. `make demo` and `make test` work on a fresh
# clone: they bootstrap uv, the virtualenv and the Go-built control plane themselves.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON      ?= python3
UV_VERSION  := 0.13.9
CACHE_DIR   := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/azure-jit-operator
UV_HOME     := $(CACHE_DIR)/uv-$(UV_VERSION)
UV          := $(UV_HOME)/bin/uv
VENV        := .venv
VENV_STAMP  := $(VENV)/.synced
PY          := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: help install lint test unit integration e2e run demo envtest emulator bench clean \
	image image-test

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV_STAMP): $(UV) pyproject.toml emulator/pyproject.toml devtools/pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV_STAMP) ## create .venv with the locked dependencies

lint: $(VENV_STAMP) ## ruff, mypy --strict and the import-layer contracts
	$(VENV)/bin/ruff check operator emulator devtools tests benchmarks
	$(VENV)/bin/ruff format --check operator emulator devtools tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --cache-dir .mypy_cache/image-tests --follow-imports=silent \
		tests/image tests/support/image.py tests/unit/test_dockerfile_follows_the_rules.py
	$(VENV)/bin/lint-imports
	hack/helm/lint.sh        # helm lint of the chart: default values and each ci/*.yaml
	hack/actionlint/lint.sh  # .github/workflows/

unit: $(VENV_STAMP) ## pure tests, no processes
	$(PY) -m pytest tests/unit -q

# Two workers (each with its own control plane, emulator and Prometheus): most tests wait on
# real processes rather than the CPU, so two halve the wall time even on a 2-core machine.
TEST_WORKERS ?= 2

test: lint $(VENV_STAMP) ## lint + types + every test (builds the control plane when needed)
	$(PY) -m pytest tests -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

run: $(VENV_STAMP) ## run the operator against the current kubeconfig
	$(VENV)/bin/azure-jit-operator run

demo: $(VENV_STAMP) ## the whole thing locally: control plane + emulator + operator + examples
	@bin_dir=$$(hack/envtest/build.sh | tail -n 1) && \
	$(VENV)/bin/azure-jit-dev demo --bin-dir "$$bin_dir" --repo . $(ARGS)

clean: ## remove the virtualenv and caches inside the checkout
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

envtest: ## build (or reuse) kube-apiserver, etcd and kubectl; prints their directory
	@hack/envtest/build.sh

emulator: $(VENV_STAMP) ## serve the Azure emulator on 127.0.0.1 with the default world
	$(VENV)/bin/azure-arm-emulator $(ARGS)

bench: $(VENV_STAMP) ## run the benchmarks (not part of make test)
	$(PY) -m benchmarks $(ARGS)

image: ## the operator's and the emulator's images as OCI archives in build/images (no daemon)
	hack/image/build.sh

image-test: image $(VENV_STAMP) ## run the built images against the test control plane and emulator
	hack/image/tools.sh podman runc
	$(PY) -m pytest tests/image -q -m image
