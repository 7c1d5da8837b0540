# openstack-on-aws: every target installs what it needs (make setup is idempotent and cheap when done).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
OUT := build/cdk.out
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1
CONTEXT ?=
# The rig's compute nodes for rig, rig-up, local and local-rebuild (tests/rig/config.py reads it; empty: 1).
export COMPUTE_COUNT
# The rig's Debian release (bookworm, the default, or trixie: issue 14; tests/rig/config.py reads it).
export OS_RELEASE

.PHONY: help setup synth test lint deploy diff destroy rig rig-up rig-down rig-kill-test local local-rebuild local-down boot-proof bench diagram clean
.DEFAULT_GOAL := help

help:
	@echo "make local     the whole product offline (the README's main job; make synth until it lands)"
	@echo "make test      the fast suite: ruff, shellcheck, unit tests, synth + cfn-lint + cdk-nag, moto runs"
	@echo "make synth | deploy | diff | destroy    CDK (pass config with CONTEXT='-c key=value ...')"
	@echo "make rig | rig-up | rig-down            the local nspawn rig (root; see tests/rig/README.md)"
	@echo "make rig-kill-test [RIG_STEPS=a,b] [SEED=N]   kill each step half-way on an installed rig, re-run it"
	@echo "  COMPUTE_COUNT=N make rig|rig-up|local|local-rebuild   N compute nodes (1 to 10, default 1)"
	@echo "make local [FROM_STEP=x] | local-down  the real state machine and Lambdas install the rig (offline)"
	@echo "make local-rebuild                     the nightly rebuild machine on the rig: reset, wipe, install"
	@echo "make boot-proof                        the real userdata on a real kernel in QEMU (root; tests/boot/)"

# Stamps make set-up idempotent: re-run only when the pinned files change.
$(VENV)/.stamp: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(CHECKOV_VENV)/.stamp: requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

node_modules/.stamp: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

build/.host-tools.stamp:
	mkdir -p build
	command -v shellcheck >/dev/null && command -v dot >/dev/null && command -v nft >/dev/null && \
	  command -v ebtables-nft >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck graphviz nftables ebtables >/dev/null)
	touch $@

setup: $(VENV)/.stamp $(CHECKOV_VENV)/.stamp node_modules/.stamp build/.host-tools.stamp

synth: setup
	$(CDK) synth -q -o $(OUT) $(CONTEXT)
	@echo "templates in $(OUT)/"

lint: setup
	$(VENV)/bin/ruff check .
	find . \( -path ./node_modules -o -path './.venv*' -o -path ./build -o -path ./.git \) -prune -o -name '*.sh' -print0 \
	  | xargs -0 -r shellcheck -x -S warning

test: setup lint
	$(PY) -m pytest -n 2 -m "not rig" tests

bench: setup
	$(PY) -m tests.bench

# Records what the cloud cannot change without losing nodes (stacks/deployed_identity.py); destroy forgets it.
deploy: setup
	OPENSTACK_AWS_RECORD_IDENTITY=1 $(CDK) deploy --all --require-approval never -o $(OUT) $(CONTEXT)

diff: setup
	$(CDK) diff --all -o $(OUT) $(CONTEXT)

destroy: setup
	$(CDK) destroy --all --force -o $(OUT) $(CONTEXT)
	$(PY) -m stacks.deployed_identity forget

diagram: setup
	$(PY) docs/architecture.py

rig: setup
	$(PY) -m tests.rig.cli run $(if $(RIG_KEEP),--keep) $(if $(RIG_STEPS),--steps $(RIG_STEPS)) $(if $(RIG_FROM_STEP),--from-step $(RIG_FROM_STEP))

rig-up: setup
	$(PY) -m tests.rig.cli up

rig-down:
	python3 -m tests.rig.cli down

# On a kept, installed rig (RIG_KEEP=1 make rig, or make local): tests/rig/README.md "Killed steps".
rig-kill-test: setup
	$(PY) -m tests.rig.kill_harness $(if $(RIG_STEPS),--steps $(RIG_STEPS)) $(if $(SEED),--seed $(SEED))

local: setup
	$(PY) -m tests.local.cli run $(if $(FROM_STEP),--from-step $(FROM_STEP)) $(if $(ONLY),--only $(ONLY))

local-rebuild: setup
	$(PY) -m tests.local.cli rebuild

boot-proof: setup
	$(PY) -m tests.boot $(if $(REBUILD_IMAGE),--rebuild-image)

local-down:
	$(if $(wildcard $(PY)),$(PY),python3) -m tests.local.cli down

clean:
	rm -rf build $(OUT)
