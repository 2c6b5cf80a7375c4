# make run   serve the registry locally on 127.0.0.1:$(PORT)
# make test  run every test (unit, handler, integration with real clients)
# make sam-check  sam validate --lint, sam build, and the built artifacts against every sample event
# make build  sam build, then compile the build's Python for the functions' runtime (see README, Deploy)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5000
export PORT

# The Python of the functions' runtime (the template's PythonRuntime) and where sam build writes.
RUNTIME_PYTHON ?= python3.13
BUILD_DIR ?= .aws-sam/build

.PHONY: run test unit integration lint generate bench clean sam-validate sam-check build compile

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

sam-validate: $(VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template-file template.yaml

sam-check: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit/test_deploy.py

build: $(VENV)/.installed
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build
	$(MAKE) compile

# sam build ships sources only, and /opt (the layer) is read-only on Lambda, so every cold
# start would compile Powertools, PyJWT and the registry again. Bytecode that is never
# checked against its source (unchecked-hash: zip files do not keep exact mtimes) is read
# as it is. It must come from the runtime's own Python version (cpython-313 files).
compile:
	$(RUNTIME_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD_DIR)

generate: $(VENV)/.installed
	$(PY) scripts/generate.py

bench: $(VENV)/.installed
	$(PY) scripts/bench.py

clean:
	rm -rf $(VENV)
