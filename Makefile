# make run   - set up, load 5M demo rows, build rollups, serve on :3000 (embedded ClickHouse)
# make test  - set up, lint (ruff), type-check (mypy --strict) and run the test suite with the
#              fast hypothesis profile (what CI runs); installs Debian's chromium first when
#              missing, for the explore page's test, and the Cube client (npm ci; needs Node)
#              for the Cube API's test
# make test-thorough - the same with the thorough hypothesis profile (8x the examples)
# make test-superset - Apache Superset (in its own venv, .venv-superset) against the SQL
#              interface: register the server as a database, create a dataset, run a chart's
#              data request and compare it with /v1/query (what CI runs after make test)
# make bench - side by side through HTTP (wrk): our server vs hand-written MVs vs the raw
#              table, at 5M and 50M rows; writes docs/benchmarks.md. Quicker:
#              make bench BENCH_ROWS=5000000 BENCH_DURATION=1

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ROWS   ?= 5000000
PORT   ?= 3000
BENCH_ROWS     ?= 5000000,50000000
BENCH_DURATION ?= 5

.PHONY: run test test-thorough test-superset bench setup clean

# uv (installed into the venv first, so only Python is needed) downloads and installs in
# parallel: about twice as fast as pip for a fresh venv. Plain pip when uv cannot be had.
# Bytecode is compiled at install time, as pip does: where PYTHONDONTWRITEBYTECODE is set,
# every `semantic` process the tests start would otherwise compile its imports again.
$(BIN)/semantic: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	if $(BIN)/python -m pip install --quiet uv; then \
		$(BIN)/uv pip install --quiet --system-certs --compile-bytecode \
			--python $(BIN)/python -e '.[test]'; \
	else \
		$(BIN)/python -m pip install --quiet -e '.[test]'; \
	fi
	touch $@

setup: $(BIN)/semantic

run: setup
	$(BIN)/semantic demo --rows $(ROWS)
	$(BIN)/semantic apply
	$(BIN)/semantic serve --port $(PORT)

# One pytest worker per core, each with its own embedded engine; a test file runs whole in one
# worker (module fixtures are set up once), in the order tests/conftest.py gives (the longest
# files first; xdist would otherwise put the files with the fewest tests, the long property
# runs, last).
PYTEST := $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

test: setup
	sh scripts/install-browser.sh
	sh scripts/install-psql.sh
	sh scripts/install-node-deps.sh
	$(BIN)/ruff check semantic engine server tests bench
	@# mypy runs beside pytest (the suite waits on servers and subprocesses often enough to
	@# leave it room); its report is printed after the tests; either failing fails the target
	$(BIN)/mypy > $(VENV)/mypy.log 2>&1 & mypy=$$!; \
	$(PYTEST); tests=$$?; \
	wait $$mypy; typed=$$?; cat $(VENV)/mypy.log; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

test-thorough: setup
	sh scripts/install-browser.sh
	sh scripts/install-psql.sh
	sh scripts/install-node-deps.sh
	$(BIN)/ruff check semantic engine server tests bench
	$(BIN)/mypy
	HYPOTHESIS_PROFILE=dev $(PYTEST)

test-superset: setup
	sh scripts/install-superset.sh
	.venv-superset/bin/python tests/superset/check.py

bench: setup
	sh scripts/install-wrk.sh
	$(BIN)/python bench/compare.py --rows $(BENCH_ROWS) --duration $(BENCH_DURATION) \
		--output docs/benchmarks.md

clean:
	rm -rf $(VENV) .venv-superset .data .pytest_cache .hypothesis test-artifacts tests/cube_client/node_modules
