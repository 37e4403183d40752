# grokvideo: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.13: use it for the tests when the machine has it (pyenv keeps it off PATH).
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null) python3)
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV ?= .venvs/checkov
PIP_INSTALL = -m pip install -qq --disable-pip-version-check
PYTEST_ARGS ?=

COMETAPI_BASE_URL ?=
ALLOWED_VIDEO_HOSTS ?=

.PHONY: help venv checkov lock test test-fast lint demo local-up local-down local-status bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Every virtualenv installs a lock, each file checked against its hash (`make lock` writes them).
$(VENV)/.installed: requirements-dev.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) --require-hashes -r requirements-dev.lock
	# The package itself, editable: .venv/bin/grokvideo runs this checkout's code (make demo uses it).
	# Built by the locked setuptools, not one an isolated build would fetch unchecked.
	$(PY) $(PIP_INSTALL) --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed ## create the test virtualenv from scratch (requirements-dev.lock)

# checkov has a virtualenv of its own: its hundred dependencies would pin the tests' otherwise.
$(CHECKOV_VENV)/.installed: requirements-checkov.lock
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python $(PIP_INSTALL) --require-hashes -r requirements-checkov.lock
	touch $@

checkov: $(CHECKOV_VENV)/.installed ## checkov's virtualenv (tests/unit/test_template_security.py scans template.yaml)

# Resolved for every platform; the layer's for Lambda's python3.13 (pure Python: one lock serves
# arm64 and x86_64), the others from the oldest Python the package supports.
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --universal --custom-compile-command "make lock"

lock: venv ## write the hashed locks again after a pin changed (requirements*.txt, layers/shared/requirements.txt)
	$(LOCK) --python-version 3.13 -o layers/shared/requirements.lock layers/shared/requirements.txt
	$(LOCK) --python-version 3.11 -o requirements-dev.lock requirements-dev.txt
	$(LOCK) --python-version 3.11 -o requirements-checkov.lock requirements-checkov.txt

test: venv lint checkov ## every test: unit, integration (moto + fake CometAPI), system (deployed local stack)
	$(PY) local/stack.py venvs
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv checkov ## unit and integration tests only
	$(PY) -m pytest tests/unit tests/integration $(PYTEST_ARGS)

lint: venv ## ruff, and mypy --strict on the package and the handlers
	$(VENV)/bin/ruff check layers functions local tests benchmarks schemas
	$(VENV)/bin/mypy layers/shared/grokvideo functions

demo: venv ## run the product end to end on the local emulator
	$(PY) local/demo.py

local-up: venv ## deploy the stack onto the local emulator (COMETAPI_BASE_URL=..., ALLOWED_VIDEO_HOSTS=...)
	$(PY) local/stack.py up $(if $(COMETAPI_BASE_URL),--cometapi-base-url $(COMETAPI_BASE_URL)) $(if $(ALLOWED_VIDEO_HOSTS),--allowed-video-hosts $(ALLOWED_VIDEO_HOSTS))

local-down: venv ## stop the local emulator and everything it started
	$(PY) local/stack.py down

local-status: venv ## stack outputs and jobs by state
	$(PY) local/stack.py status

bench: venv ## the benchmarks (README "Benchmarks"), each also runnable alone
	$(PY) benchmarks/poll_sweep.py
	$(PY) benchmarks/copy_video.py
	$(PY) benchmarks/cold_start.py
	$(PY) benchmarks/submit_burst.py
	$(PY) benchmarks/cost.py

chaos: venv ## the chaos run on the local stack (benchmarks/chaos.py: 500 jobs, faults, killed workers; ~10 min)
	$(PY) local/stack.py venvs
	$(PY) benchmarks/chaos.py

clean: local-down ## remove virtualenvs, build output and local state
	rm -rf $(VENV) .venvs .aws-sam .local out
