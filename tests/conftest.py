"""Shared fixtures: one embedded ClickHouse engine per test session, one database per test.

chDB allows one engine per process, so every test that touches the database uses the session
``warehouse`` and isolates itself by database name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from server.warehouse.statements import Warehouse
from tests.support import CORPUS_DATABASE, fresh_database

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
# The fast profile by default (what `make test` and CI run); `make test-thorough` runs "dev".
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Servers started by the tests (`semantic serve` in a process) would all take the SQL
# interface's default port: it is off unless a test turns it on (--sql-port).
os.environ["SEMANTIC_SQL_PORT"] = "0"


#: The test files that take longest (CLI and server processes, properties that run hundreds of
#: queries), longest first. They are collected first, so that with ``--dist loadfile
#: --no-loadscope-reorder`` (``make test``) the workers start on them and the many short files
#: fill in at the end, instead of one long file running alone while the other worker idles.
#: Files not listed keep their order after these.
LONGEST_FIRST = (
    "tests/server/service/test_properties_bulk.py",
    "tests/server/cli/test_serve_process.py",
    "tests/server/cli/test_cli.py",
    "tests/server/service/test_properties.py",
    "tests/server/cli/test_cli_server.py",
    "tests/server/mcp/test_mcp.py",
    "tests/server/operations/test_lifecycle.py",
    "tests/server/cli/test_cli_byod.py",
    "tests/server/service/test_ingest.py",
    "tests/server/explore/test_explore_browser.py",
    "tests/server/cli/test_cli_dev.py",
    "tests/server/openapi/test_openapi.py",
    "tests/server/service/test_quantiles.py",
    "tests/server/http/test_formats.py",
    "tests/server/service/test_scenario.py",
    "tests/server/service/test_security_properties.py",
    "tests/server/api/test_hostile_values.py",
    "tests/server/warehouse/test_cost_bounds.py",
    "tests/server/api/test_query_fuzz.py",
    "tests/server/warehouse/test_outage.py",
    "tests/server/observability/test_observability.py",
    "tests/server/runtime/test_cut_answers.py",
    "tests/server/auth/test_auth.py",
    "tests/server/cli/test_auth_cli.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*.sql from the current engine output")


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    path = tmp_path_factory.mktemp("chdb")
    wh = Warehouse(f"chdb://{path}", f"embedded chDB at {path}", pool_size=4)
    yield wh
    wh.close()


@pytest.fixture(scope="session")
def demo_events(warehouse: Warehouse) -> Warehouse:
    """The session warehouse with a small copy of the reference data (2,000 rows, seed 1) in
    ``broken_corpus.events``, apart from the tests that fill ``analytics.events`` their way."""
    from server.operations.apply import load_demo, row_count

    if not row_count(warehouse, f"{CORPUS_DATABASE}.events"):
        load_demo(warehouse, 2000, 1, f"{CORPUS_DATABASE}.events")
    return warehouse


@pytest.fixture
def database(warehouse: Warehouse) -> Iterator[str]:
    """A fresh, uniquely named database, dropped after the test."""
    with fresh_database(warehouse) as name:
        yield name
