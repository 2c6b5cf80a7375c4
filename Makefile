# make run   serve the registry locally on 127.0.0.1:$(PORT)
# make test  run every test (unit, handler, integration with real clients)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000
export PORT

.PHONY: run test unit integration lint generate clean

$(VENV)/.installed: requirements-dev.txt layers/registry/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e .
	touch $@

run: $(VENV)/.installed
	$(PY) -m local_stack

test: $(VENV)/.installed
	$(PY) -m pytest -q -rs

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest -q -rs tests/integration

lint: $(VENV)/.installed
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) scripts/generate.py --check

generate: $(VENV)/.installed
	$(PY) scripts/generate.py

clean:
	rm -rf $(VENV)
