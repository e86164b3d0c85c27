# Two entry points: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-all clean
export NO_MKDOCS_2_WARNING := 1

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the getting-started runbook, step by step.
run: $(STAMP)
	$(BIN)/runbook run runbooks/getting-started.md

# The browser tests drive Debian's chromium (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# The remote-target tests start their own sshd (OpenSSH's server) on a loopback port.
SSHD := /usr/sbin/sshd

$(SSHD):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq openssh-server openssh-client

## Lint, format check, check the project's runbooks, build the site, run the whole test suite.
test: $(STAMP) $(CHROMIUM) $(SSHD)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/runbook check runbooks
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest

## The quick benchmarks (a few minutes); bench-all adds the journal and site ones (~20 min).
bench: $(STAMP)
	$(BIN)/python bench/parse.py
	$(BIN)/python bench/steps.py
	$(BIN)/python bench/output.py

bench-all: bench
	$(BIN)/python bench/journal.py
	$(BIN)/python bench/site.py

clean:
	rm -rf $(VENV) site .pytest_cache
