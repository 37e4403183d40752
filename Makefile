# grokvideo: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Lambda runs python3.13: use it for the tests when the machine has it (pyenv keeps it off PATH).
PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null) python3)
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

COMETAPI_BASE_URL ?=
ALLOWED_VIDEO_HOSTS ?=

.PHONY: help venv test test-fast lint demo local-up local-down local-status bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements-dev.txt
	# The package itself, editable: .venv/bin/grokvideo runs this checkout's code (make demo uses it).
	$(PY) -m pip install -qq --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(VENV)/.installed ## create the test virtualenv from scratch (pinned)

test: venv lint ## every test: unit, integration (moto + fake CometAPI), system (deployed local stack)
	$(PY) local/stack.py venvs
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv ## unit and integration tests only
	$(PY) -m pytest tests/unit tests/integration $(PYTEST_ARGS)

lint: venv ## ruff, and mypy --strict on the package and the handlers
	$(VENV)/bin/ruff check layers functions local tests benchmarks
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
