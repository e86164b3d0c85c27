# Two entry points: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-all bytecode clean
export NO_MKDOCS_2_WARNING := 1

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(MAKE) --no-print-directory bytecode
	touch $(STAMP)

## Precompile the engine: an editable install writes no .pyc files, and where
## PYTHONDONTWRITEBYTECODE is set no run ever would, so every start would compile (~40 ms).
bytecode: $(BIN)/python
	$(BIN)/python -m compileall -q -j 0 engine

## Run the getting-started runbook, step by step.
run: $(STAMP) bytecode
	$(BIN)/runbook run runbooks/getting-started.md

# The browser tests drive Debian's chromium (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# The journal's tests start a PostgreSQL server of their own (never the system's cluster).
INITDB := /usr/lib/postgresql/15/bin/initdb

$(INITDB):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql

# The remote-target tests start their own sshd (OpenSSH's server) on a loopback port.
SSHD := /usr/sbin/sshd

$(SSHD):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openssh-server openssh-client

## Lint, format check, type check, check the project's runbooks, build the site, run the whole test suite.
test: $(STAMP) bytecode $(CHROMIUM) $(INITDB) $(SSHD)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict engine
	$(BIN)/runbook check runbooks
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest

## The quick benchmarks (a few minutes); bench-all adds the journal and site ones (~20 min).
bench: $(STAMP) bytecode
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/steps.py
	$(BIN)/python bench/output.py

bench-all: bench
	$(BIN)/python bench/journal.py
	$(BIN)/python bench/site.py

clean:
	rm -rf $(VENV) site .pytest_cache
