# aic.gateway developer commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
COLLECTIONS := $(CURDIR)/.build/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)

# Molecule scenarios, in the order that reuses images and warms caches; `make molecule SCENARIOS=common`.
SCENARIOS ?= $(shell scripts/scenarios)
LAB_HOSTS ?= 7
LAB_DEBIAN ?= 12

.PHONY: help
help: ## List the commands
	@grep -hE '^[a-z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: venv
venv: $(BIN)/.installed collection-link ## Create the Python environment (.venv) with the pinned tools

.PHONY: collection-link
collection-link:
	@mkdir -p .build/collections/ansible_collections/aic
	@ln -sfn ../../../.. .build/collections/ansible_collections/aic/gateway

.PHONY: host-setup
host-setup: ## Install podman, runc, debootstrap (root; safe to rerun)
	scripts/host-setup

.PHONY: images
images: ## Build the Debian 12 and 13 systemd images (cached)
	scripts/images build 12 13

.PHONY: examples
examples: venv ## Build the example services (core-api, ai-service wheels, Ghost tarball) into .build/examples
	examples/build

.PHONY: lab-up lab-down lab-status
lab-up: venv images ## Start the lab hosts and write inventories/lab/
	scripts/lab up --hosts $(LAB_HOSTS) --debian $(LAB_DEBIAN)
lab-down: ## Remove the lab hosts
	scripts/lab down
lab-status: ## Show the lab hosts
	scripts/lab status

.PHONY: demo
demo: host-setup venv images ## Bring up the lab and deploy playbooks/site.yml on it
	scripts/lab up --hosts $(LAB_HOSTS) --debian $(LAB_DEBIAN)
	ansible-playbook -i inventories/lab playbooks/site.yml
	scripts/lab summary

.PHONY: lint
lint: venv ## yamllint, ansible-lint (production), argument_specs vs defaults, changelog
	yamllint -s .
	@# molecule leaves a copy of this collection in ~/.ansible/collections, which ansible-lint would
	@# prefer over the working tree (and report roles added since as missing): drop that stale copy.
	rm -rf $(HOME)/.ansible/collections/ansible_collections/aic/gateway
	ansible-lint
	scripts/check-argument-specs
	antsibull-changelog lint

.PHONY: units
units: venv ## Unit tests of plugins and module_utils
	PYTHONPATH=$(COLLECTIONS) $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

.PHONY: integration
integration: venv ## The Kong modules in real ansible-playbook runs against the Kong stand-in API
	scripts/integration

.PHONY: sanity
sanity: venv ## ansible-test sanity on a copy placed under ansible_collections/aic/gateway
	scripts/ansible-test sanity

.PHONY: build
build: venv ## Build the collection tarball, install it into a clean path, list its content
	scripts/build-check

.PHONY: molecule
molecule: venv images ## Every molecule scenario on Debian 12 and 13, with a timing summary
	scripts/molecule-all $(SCENARIOS)

.PHONY: test
test: venv ## Everything CI runs: lint, sanity, units, build, integration, molecule (timing table at the end)
	scripts/stages lint sanity units build integration molecule

.PHONY: clean
clean: ## Remove build output (not the venv or the image cache)
	rm -rf .build/sanity .build/dist .build/install tests/output
