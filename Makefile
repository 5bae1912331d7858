# slogate — common tasks. The README names two commands: `make demo` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: help install engine-sources test unit integration lint lint-tools crds docs dashboards bins prometheus lua cluster-up cluster-down demo demo-down kind-up kind-down e2e-kind image matrix podman clean

help:
	@grep -E '^[a-z-]+:.*?## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(BIN)/slogate: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(BIN)/slogate ## venv + editable install with pinned dependencies

bins: ## build (or reuse) the control-plane binaries and helm from the Go module proxy
	bash hack/build-bins.sh
	bash hack/build-helm.sh

matrix: ## build (or reuse) the oldest supported kube-apiserver for the version matrix (docs/compatibility.md)
	bash hack/build-matrix.sh

podman: ## install Debian's podman and runc when missing (the operator image and its test: docs/image.md)
	bash hack/ensure-podman.sh

prometheus: ## install Debian's Prometheus when missing
	bash hack/ensure-prometheus.sh

lua: ## install Debian's lua5.4 when missing and build the gopher-lua runner (test the Argo CD health check and actions)
	bash hack/ensure-lua.sh

engine-sources: install ## fetch the engines' released Python source from PyPI (provenance tests; cached)
	PY=$(BIN)/python bash hack/fetch-engine-sources.sh

test: install bins matrix podman prometheus lua engine-sources ## all tests: unit + integration against the local control plane (and the image in podman)
	$(BIN)/pytest -q

unit: install lua ## unit tests only (no cluster)
	$(BIN)/pytest -q -m "not integration"

lint: install lint-tools ## ruff, shellcheck; helm lint --strict, kubeconform, checkov on the chart and the operator's objects
	$(BIN)/ruff check operator tests bench hack
	$(BIN)/ruff format --check operator tests bench hack
	$(BIN)/shellcheck -x -P SCRIPTDIR hack/*.sh hack/kind/*.sh hack/lint/*.sh .ci/run
	PY=$(BIN)/python bash hack/lint/run.sh

lint-tools: ## build (or reuse) helm and kubeconform from the Go module proxy and checkov's venv from PyPI
	bash hack/build-helm.sh >/dev/null
	bash hack/build-kubeconform.sh >/dev/null
	bash hack/lint/ensure-checkov.sh >/dev/null

crds: install ## regenerate crds/ from the API models, and the chart's copy
	$(BIN)/slogate crd > crds/slogate.io_modeldeployments.yaml
	cp crds/slogate.io_modeldeployments.yaml charts/slogate/crds/slogate.io_modeldeployments.yaml

dashboards: install ## regenerate the chart's Grafana dashboard (charts/slogate/dashboards/slogate.json)
	$(BIN)/slogate dashboard > charts/slogate/dashboards/slogate.json

docs: install ## regenerate docs/api.md from the API models
	$(BIN)/slogate docs --intro docs/api.intro.md > docs/api.md

cluster-up: install bins prometheus ## start the local control plane in .slogate-dev/
	$(BIN)/slogate dev up --dir .slogate-dev

cluster-down: ## stop the local control plane
	$(BIN)/slogate dev down --dir .slogate-dev

demo: install bins prometheus ## the whole story live: first revision, a TTFT breach rolled back, a healthy promotion
	$(BIN)/python -m slogate.dev.demo --dir .slogate-demo

demo-down: ## stop an interrupted demo (cluster, Prometheus, simulators, operator)
	-$(BIN)/slogate dev down --dir .slogate-demo

image: podman ## the operator image, built by podman from the Dockerfile (docs/image.md; local Debian base, built once)
	bash hack/build-image.sh

# The kind path (docs/kind.md): needs a Docker engine; kind is built from the Go module proxy when missing.
kind-up: install bins prometheus ## kind cluster + image + chart, then the host side (GPU nodes, Prometheus, simulators)
	bash hack/kind/up.sh
	bash hack/kind/host.sh

kind-down: ## stop the kind path's host side and delete its kind cluster
	bash hack/kind/down.sh

e2e-kind: install bins prometheus ## the same integration tests against kind (kind-up's cluster, the chart's operator)
	bash hack/kind/up.sh
	bash hack/kind/e2e.sh

clean: cluster-down
	rm -rf .slogate-dev .slogate-demo .pytest_cache
