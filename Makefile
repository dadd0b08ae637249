# Quick start: `make demo` (gateway + bundled barkd simulator) and `make test`.
SHELL := /bin/bash
export UV_SYSTEM_CERTS := 1
export UV_PYTHON_DOWNLOADS := never
# Compile bytecode once at install and let Python cache ours: every gateway process started by the
# tests and the demo would otherwise recompile every library (seconds each).
export UV_COMPILE_BYTECODE := 1
unexport PYTHONDONTWRITEBYTECODE
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: install demo test lint bench clean

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

install: $(UV)
	$(UV) sync --frozen

demo: install
	$(UV) run arkgate demo

test: install
	$(UV) run ruff check arkgate tests bench
	$(UV) run pytest -q -p no:cacheprovider

lint: install
	$(UV) run ruff check arkgate tests bench
	$(UV) run ruff format --check arkgate tests bench

bench: install
	$(UV) run python bench/paid_call.py
	$(UV) run python bench/activation.py

clean:
	rm -rf .arkgate .venv .pytest_cache
