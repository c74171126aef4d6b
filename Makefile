# Two commands on a fresh machine (Python 3.11, gcc, Node 20): `make run` and `make test`.
# Each creates or refreshes .venv as needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CYPHER_LINT := tools/cypher-lint/node_modules/.installed
COMPOSE_CHECK := tools/compose-check/node_modules/.installed
UI_DEPS := web/ui/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format bench clean chromium

run: $(INSTALLED) $(UI_DEPS)
	$(BIN)/neonomaly up

test: $(INSTALLED) $(CYPHER_LINT) $(COMPOSE_CHECK) $(UI_DEPS) chromium
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(INSTALLED) $(UI_DEPS) chromium
	@for script in tests/bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==24.3.1

# Refreshed whenever a requirements file or pyproject.toml changes.
$(INSTALLED): $(BIN)/python pyproject.toml $(wildcard requirements/*.txt)
	$(BIN)/pip install --quiet -r requirements/dev.txt
	$(BIN)/pip install --quiet --ignore-requires-python -r requirements/embedded.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(CYPHER_LINT): tools/cypher-lint/package.json tools/cypher-lint/package-lock.json
	npm ci --prefix tools/cypher-lint --no-audit --no-fund --loglevel=error
	touch $@

$(COMPOSE_CHECK): tools/compose-check/package.json tools/compose-check/package-lock.json
	npm ci --prefix tools/compose-check --no-audit --no-fund --loglevel=error
	touch $@

# The dashboard's chart library (uPlot), served from node_modules as it is: no build step.
$(UI_DEPS): web/ui/package.json web/ui/package-lock.json
	npm ci --prefix web/ui --no-audit --no-fund --loglevel=error
	touch $@

# The browser tests drive Debian's Chromium (Playwright cannot download its own here). As
# root (CI) it is installed when missing; otherwise those tests skip and say why.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "chromium is not installed (and this is not root): the browser tests will skip"; \
	  fi; }

clean:
	rm -rf $(VENV) tools/*/node_modules web/ui/node_modules test-output .pytest_cache .mypy_cache .ruff_cache
