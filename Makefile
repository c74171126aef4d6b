# Two commands on a fresh machine (Python 3.11, gcc, Node 20; Java 17 and Maven for the
# Neo4j half of the tests): `make run` and `make test`.
# Each creates or refreshes .venv as needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CYPHER_LINT := tools/cypher-lint/node_modules/.installed
COMPOSE_CHECK := tools/compose-check/node_modules/.installed
UI_DEPS := web/ui/node_modules/.installed
# The Prometheus remote write protobuf classes, compiled from our .proto at build time.
PROMPB := common/agents/prompb/remote_pb2.py
PYTEST_ARGS ?=
# A real Neo4j 5.26 for the suite's Neo4j half (tools/neo4j-server), built when java and mvn
# are here; Maven keeps the downloaded jars in ~/.m2 for the next build.
NEO4J_SERVER := tools/neo4j-server/target/neo4j-test-server.jar
NEO4J_SOURCES := tools/neo4j-server/pom.xml $(wildcard tools/neo4j-server/src/main/java/*/*/*/*.java)
HAVE_JAVA_MVN := $(shell command -v java >/dev/null && command -v mvn >/dev/null && echo yes)
ifeq ($(HAVE_JAVA_MVN),yes)
TEST_NEO4J := $(NEO4J_SERVER)
endif

.PHONY: run test test-neo4j neo4j lint format bench clean chromium prometheus

run: $(INSTALLED) $(PROMPB) $(UI_DEPS)
	$(BIN)/neonomaly up

# Both engines: every graph-backed test runs on embedded FalkorDB and on Neo4j.
test: $(INSTALLED) $(PROMPB) $(CYPHER_LINT) $(COMPOSE_CHECK) $(UI_DEPS) chromium prometheus $(TEST_NEO4J)
ifneq ($(HAVE_JAVA_MVN),yes)
	@echo "make test: the Neo4j half will be skipped: java and mvn are needed to build $(NEO4J_SERVER)"
endif
	$(BIN)/pytest $(PYTEST_ARGS)

# Only the Neo4j half: the tests parametrised by engine, on Neo4j.
test-neo4j: $(INSTALLED) $(PROMPB) $(TEST_NEO4J)
	$(BIN)/pytest -m neo4j $(PYTEST_ARGS)

neo4j: $(NEO4J_SERVER)

$(NEO4J_SERVER): $(NEO4J_SOURCES)
	mvn -B -q -f tools/neo4j-server/pom.xml package
	touch $@

lint: $(INSTALLED) $(PROMPB)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(INSTALLED) $(PROMPB) $(UI_DEPS) chromium $(TEST_NEO4J)
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

$(PROMPB): common/agents/prompb/remote.proto $(INSTALLED)
	$(BIN)/python -m grpc_tools.protoc --proto_path=common/agents/prompb \
	  --python_out=common/agents/prompb --pyi_out=common/agents/prompb $<

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

# The agents' tests run Debian's Prometheus and node exporter (on 127.0.0.1, their own
# ports and config, started by the tests): installed as Chromium is; Debian's own services
# are stopped, so that nothing listens on the default ports.
prometheus:
	@command -v prometheus >/dev/null && command -v prometheus-node-exporter >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      prometheus prometheus-node-exporter; \
	    for service in prometheus prometheus-node-exporter; do \
	      service $$service stop >/dev/null 2>&1 || true; done; \
	  else \
	    echo "prometheus is not installed (and this is not root): the Prometheus tests will skip"; \
	  fi; }

clean:
	rm -f common/agents/prompb/remote_pb2.py common/agents/prompb/remote_pb2.pyi
	rm -rf $(VENV) tools/*/node_modules tools/neo4j-server/target web/ui/node_modules test-output .pytest_cache .mypy_cache .ruff_cache
