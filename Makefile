# tritonfleet: `make demo` deploys the local default, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PIP_VERSION := 26.3
COLLECTION_LINK := .collections/ansible_collections/tritonfleet/serving
export PATH := $(abspath $(BIN)):$(PATH)
export ANSIBLE_CONFIG := $(abspath ansible.cfg)

.PHONY: venv dev-venv demo converge teardown test units integration molecule lint sanity bench bench-fleet bench-scale bench-distribution bench-gateway bench-report clean

# `make demo` needs only the runtime requirements; the test targets add the
# development tools (pytest, linters, molecule).
venv: $(STAMP) $(COLLECTION_LINK)
dev-venv: $(DEV_STAMP) $(COLLECTION_LINK)

$(STAMP): requirements.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Ansible finds this collection in place through .collections (see ansible.cfg).
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

demo: venv converge

converge: venv
	$(BIN)/ansible-playbook site.yml

teardown: venv
	$(BIN)/ansible-playbook playbooks/teardown.yml

# ansible-test units runs tests/unit (modules and module_utils without the
# controller, as on a managed host); pytest runs the rest once, not tests/unit again.
test: dev-venv lint sanity units
	BIN=$(BIN) ./tests/lanes.sh

# The quick loop while editing is `.venv/bin/pytest -q tests/unit`: the same tests, in place.
units: dev-venv
	./tests/ansible-test.sh units

integration: dev-venv
	$(BIN)/pytest -q -m integration

# Multi-host scenarios on Docker (root, docker.io, debootstrap, dpkg-dev).
molecule: dev-venv
	$(BIN)/pytest -q -m molecule

# The fragments must parse, and CHANGELOG.md must be what changelogs/ generates.
lint: dev-venv
	$(BIN)/ansible-lint --profile production
	$(BIN)/antsibull-changelog lint
	$(BIN)/antsibull-changelog generate --output $(VENV)/CHANGELOG.md --output-format md
	@cmp -s $(VENV)/CHANGELOG.md CHANGELOG.md || { echo "CHANGELOG.md is not what changelogs/ generates: run antsibull-changelog generate"; exit 1; }

sanity: dev-venv
	./tests/ansible-test.sh sanity

bench: dev-venv
	$(BIN)/python benchmarks/local_pipeline.py

bench-fleet: dev-venv
	$(BIN)/python benchmarks/fleet.py

# Fleets of 1, 3 and 8 pseudo-hosts on this machine (process runtime, own roots and ports under /tmp);
# with the local default deployed (make demo) it also times its no-op beside `ansible -m setup`.
bench-scale: dev-venv
	$(BIN)/python benchmarks/fleet_scale.py --sizes 1 3 8

# A 1 GiB synthetic engine from one fleet host to two others: through the controller, host to host, plain rsync.
bench-distribution: dev-venv
	$(BIN)/python benchmarks/engine_distribution.py --mib 1024

# Needs the local default deployed (make demo) with its gateway.
bench-gateway: dev-venv
	$(BIN)/python benchmarks/gateway_overhead.py

# Needs the local default deployed (make demo): aiperf and the gRPC client against its gateway.
bench-report: dev-venv
	$(BIN)/ansible-playbook playbooks/benchmark.yml -e benchmark_target=gateway

clean:
	rm -rf $(VENV) .collections
