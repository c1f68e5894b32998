# make run   - set up, load 5M demo rows, build rollups, serve on :3000 (embedded ClickHouse)
# make test  - set up, lint (ruff), type-check (mypy --strict) and run the test suite with the
#              fast hypothesis profile (what CI runs); installs Debian's chromium first when
#              missing, for the explore page's test
# make test-thorough - the same with the thorough hypothesis profile (8x the examples)
# make bench - latency of the reference endpoints and a query mix, rollups vs raw table;
#              backfill speed and ingestion overhead per rollup

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ROWS   ?= 5000000
PORT   ?= 3000

.PHONY: run test test-thorough bench setup clean

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

# One pytest worker per core, each with its own embedded engine; a test file runs whole in one
# worker (module fixtures are set up once).
PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile

test: setup
	sh scripts/install-browser.sh
	$(BIN)/ruff check semantic engine server tests bench
	$(BIN)/mypy
	$(PYTEST)

test-thorough: setup
	sh scripts/install-browser.sh
	$(BIN)/ruff check semantic engine server tests bench
	$(BIN)/mypy
	HYPOTHESIS_PROFILE=dev $(PYTEST)

bench: setup
	$(BIN)/python bench/endpoints.py --rows $(ROWS)
	$(BIN)/python bench/queries.py --rows $(ROWS)
	$(BIN)/python bench/lifecycle.py --rows $(ROWS)

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis test-artifacts
