# make run   - set up, load 5M demo rows, build rollups, serve on :3000 (embedded ClickHouse)
# make test  - set up, lint (ruff), type-check (mypy --strict) and run the test suite
#              (installs Debian's chromium first when missing, for the explore page's test)
# make bench - latency of the reference endpoints and a query mix, rollups vs raw table;
#              backfill speed and ingestion overhead per rollup

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ROWS   ?= 5000000
PORT   ?= 3000

.PHONY: run test bench setup clean

$(BIN)/semantic: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/semantic

run: setup
	$(BIN)/semantic demo --rows $(ROWS)
	$(BIN)/semantic apply
	$(BIN)/semantic serve --port $(PORT)

test: setup
	sh scripts/install-browser.sh
	$(BIN)/ruff check semantic engine server tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/endpoints.py --rows $(ROWS)
	$(BIN)/python bench/queries.py --rows $(ROWS)
	$(BIN)/python bench/lifecycle.py --rows $(ROWS)

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis test-artifacts
