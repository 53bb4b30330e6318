# tritonfleet: `make demo` deploys the local default, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COLLECTION_LINK := .collections/ansible_collections/tritonfleet/serving
export PATH := $(abspath $(BIN)):$(PATH)
export ANSIBLE_CONFIG := $(abspath ansible.cfg)

.PHONY: venv demo converge teardown test unit integration molecule lint sanity bench bench-fleet clean

venv: $(STAMP) $(COLLECTION_LINK)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
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

test: venv lint sanity
	$(BIN)/pytest -q

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv
	$(BIN)/pytest -q -m integration

# Multi-host scenarios on Docker (root, docker.io, debootstrap, dpkg-dev).
molecule: venv
	$(BIN)/pytest -q -m molecule

lint: venv
	$(BIN)/ansible-lint --profile production

sanity: venv
	./tests/sanity.sh

bench: venv
	$(BIN)/python benchmarks/local_pipeline.py

bench-fleet: venv
	$(BIN)/python benchmarks/fleet.py

clean:
	rm -rf $(VENV) .collections
