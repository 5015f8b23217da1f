# mawb — two commands on a fresh machine (Python 3.11 + the package registries):
#   make run    installs, seeds the demo workspace, starts the workbench and the service on localhost
#   make test   installs everything (system packages too) and runs every test
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
SERVICE_PORT ?= 8600
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test setup setup-test system-deps demo notebooks notebooks-execute bench lint clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

# One environment for everything (workbench, notebooks, Airflow, tests), straight from uv.lock.
setup: $(UV)
	$(UV) sync --frozen --all-extras

setup-test: setup system-deps

# Debian chromium drives the browser tests (never a downloaded browser); npm rebuilds the canvas.
system-deps:
	@if ! command -v chromium >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi
	@if ! command -v npm >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	fi

demo: setup
	$(BIN)/mawb demo --home .mawb

# The workbench in the foreground and the service (intake API + tick loop of every live flow) in
# the background, on the same demo workspace; Ctrl-C stops both.
run: demo
	@$(BIN)/mawb serve --home .mawb --port $(SERVICE_PORT) & service=$$!; \
	trap 'kill $$service 2>/dev/null; wait $$service 2>/dev/null' EXIT INT TERM; \
	$(BIN)/streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true

test: setup-test
	$(BIN)/python -m pytest

notebooks: setup
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks

# Re-execute the example notebooks and save their outputs.
notebooks-execute: setup-test
	$(BIN)/python notebooks/execute.py

bench: setup-test demo
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/simulate.py
	$(BIN)/python bench/steady.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/dashboard.py --home .mawb
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/dispatch.py

lint:
	$(BIN)/ruff check mawb tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(TOOLS) .mawb artifacts
