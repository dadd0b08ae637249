# Quick start: `make demo` (gateway + bundled barkd simulator) and `make test`.
SHELL := /bin/bash
export UV_SYSTEM_CERTS := 1
export UV_PYTHON_DOWNLOADS := never
# Compile bytecode once at install and let Python cache ours: every gateway process started by the
# tests and the demo would otherwise recompile every library (seconds each).
export UV_COMPILE_BYTECODE := 1
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: install demo test lint bench clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen

demo: install
	$(UV) run --frozen arkgate demo

test: install
	$(UV) run --frozen ruff check arkgate tests bench
	$(UV) run --frozen pytest -q -p no:cacheprovider
	# The payments and admin suites again against the simulator speaking barkd 0.6 (0.8 is the default).
	ARKGATE_TEST_BARKD_COMPAT=0.6.0 $(UV) run --frozen pytest -q -p no:cacheprovider tests/payments tests/admin

lint: install
	$(UV) run --frozen ruff check arkgate tests bench
	$(UV) run --frozen ruff format --check arkgate tests bench

bench: install
	$(UV) run --frozen python bench/paid_call.py
	$(UV) run --frozen python bench/activation.py

clean:
	rm -rf .arkgate .venv .pytest_cache
