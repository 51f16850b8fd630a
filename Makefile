# Two entry points that work on a machine with only python3 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit bench clean

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

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/append.py
	$(BIN)/python bench/read.py
	$(BIN)/python bench/wake.py

clean:
	rm -rf $(VENV) demo-run .mypy_cache .ruff_cache .pytest_cache
