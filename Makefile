# pdgen: the single entry point. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PDGEN := $(VENV)/bin/pdgen
PIP := $(PY) -m pip --disable-pip-version-check --quiet

include tools/versions.env

.PHONY: help setup test demo bench verify fixtures clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pdgen needs Python >= 3.11")'
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=23"
	$(PIP) install -e '.[dev]'
	@touch $@

.tools/.installed: tools/versions.env scripts/install-tools.sh | $(VENV)/.installed
	PYTHON=$(PY) bash scripts/install-tools.sh
	@touch $@

.tools/crd-schemas/.built: .tools/.installed scripts/build_crd_schemas.py $(wildcard schemas/crds/*/*.json)
	$(PY) scripts/build_crd_schemas.py
	@touch $@

setup: $(VENV)/.installed .tools/.installed .tools/crd-schemas/.built ## Create .venv, install pdgen with dev deps and the pinned tools (.tools/)

test: setup ## Set up, then run the whole test suite
	$(PY) -m pytest

demo: setup ## Set up, then validate every shipped example (and show what a finding looks like)
	@echo "== tools"
	@$(PDGEN) tools
	@echo "== pdgen validate examples/*.yaml"
	@$(PDGEN) validate --format text examples/*.yaml
	@echo "== a topology with mistakes (expected to fail):"
	@$(PDGEN) validate --format text tests/fixtures/invalid/unknown-key-typo.yaml \
	    tests/fixtures/invalid/inline-secret-env.yaml tests/fixtures/invalid/negative-replicas.yaml || [ $$? -eq 1 ]

bench: setup ## Validation throughput benchmark (target >= 1,000 topologies/s)
	$(PY) bench/validate_rate.py 1000

fixtures: setup ## Regenerate tests/fixtures/invalid/*.expected (review the diff!)
	@cd tests/fixtures/invalid && for f in *.yaml; do \
	    ../../../$(PDGEN) validate --format text "$$f" > "$${f%.yaml}.expected" || [ $$? -eq 1 ]; done

verify: fixtures ## Fail when generated files differ from what is committed
	@git diff --exit-code -- tests/fixtures schemas || { echo "generated files drifted: commit them or fix the change" >&2; exit 1; }

clean: ## Remove .venv, .tools and build output
	rm -rf $(VENV) .tools out build *.egg-info .pytest_cache
