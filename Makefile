# Two entry points that work on a machine with only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean example nats-server

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m swarmlog.demo demo-run

lint: $(STAMP)
	$(BIN)/ruff format --check swarmlog tests bench
	$(BIN)/ruff check swarmlog tests bench

typecheck: $(STAMP)
	$(BIN)/mypy swarmlog

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The JetStream tests need Debian's nats-server; install it where we may (root with apt-get),
# otherwise those tests skip and say how to install it.
nats-server:
	@command -v nats-server >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && { apt-get update -qq && apt-get install -y -qq nats-server; } >/dev/null 2>&1; } || echo "nats-server unavailable: the JetStream tests will skip (apt-get install nats-server)"

test: lint typecheck nats-server unit

bench: $(STAMP)
	$(BIN)/python bench/append.py
	$(BIN)/python bench/read.py
	$(BIN)/python bench/wake.py

clean:
	rm -rf $(VENV) demo-run .mypy_cache .ruff_cache .pytest_cache

# Regenerate the example night committed under memory/ and alerts/ (after a template change).
example: $(STAMP)
	rm -rf .example-night
	$(BIN)/python -m swarmlog --dir .example-night run --sim demo
	$(BIN)/python -m swarmlog --dir .example-night archive
	rm -rf memory/events memory/*.md alerts/ALERT-*.md
	mkdir -p memory/events alerts
	for f in .example-night/memory/events/*.ndjson; do if [ -s $$f ]; then cp $$f memory/events/; fi; done
	cp .example-night/memory/*.md memory/
	for f in .example-night/alerts/ALERT-*.md; do if [ -f $$f ]; then cp $$f alerts/; fi; done
	rm -rf .example-night
