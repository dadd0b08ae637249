# Quick start: `make demo` (gateway + bundled barkd simulator) and `make test`.
# Needs only python3 (3.11+), python3-venv and make: uv is taken from PATH, or installed once into a
# private venv under .arkgate/tools (never into the system Python, which PEP 668 forbids on Debian/Ubuntu).
SHELL := /bin/bash
export UV_SYSTEM_CERTS := 1
export UV_PYTHON_DOWNLOADS := never
# Compile bytecode once at install and let Python cache ours: every gateway process started by the
# tests and the demo would otherwise recompile every library (seconds each).
export UV_COMPILE_BYTECODE := 1
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
UV_VENV := .arkgate/tools/uv-venv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_VENV)/bin/uv)
RUN := $(UV) run --frozen
# make demo PORT=9000 SIM_PORT=3001 (ARKGATE_PORT / ARKGATE_SIM_PORT work too).
PORT ?= $(or $(ARKGATE_PORT),8080)
SIM_PORT ?= $(or $(ARKGATE_SIM_PORT),3000)

.PHONY: install demo test lint bench clean

$(UV_VENV)/bin/uv:
	@echo "uv is not on PATH: installing it into $(UV_VENV) (a private venv)"
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv

install: | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)

demo: install
	$(RUN) arkgate demo --port $(PORT) --simulator-port $(SIM_PORT)

# The checks first (lint), then the suite; pytest's strict markers and warnings-as-errors are in pyproject.toml.
test: lint
	$(RUN) pytest -q -p no:cacheprovider
	# The payments, admin and simulator suites again against the simulator speaking barkd 0.6 (0.8 is the default).
	ARKGATE_TEST_BARKD_COMPAT=0.6.0 $(RUN) pytest -q -p no:cacheprovider tests/payments tests/admin tests/simulator

# mypy reads its settings (strict, the files to check) from pyproject.toml.
lint: install
	$(RUN) ruff check arkgate tests bench
	$(RUN) ruff format --check arkgate tests bench
	$(RUN) mypy

bench: install
	$(RUN) python bench/paid_call.py
	$(RUN) python bench/activation.py

clean:
	rm -rf .arkgate .venv .pytest_cache
