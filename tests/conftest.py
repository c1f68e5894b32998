"""Shared fixtures: one embedded ClickHouse engine per test session, one database per test.

chDB allows one engine per process, so every test that touches the database uses the session
``warehouse`` and isolates itself by database name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from server.warehouse import Warehouse
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
    from server.operations import load_demo, row_count

    if not row_count(warehouse, f"{CORPUS_DATABASE}.events"):
        load_demo(warehouse, 2000, 1, f"{CORPUS_DATABASE}.events")
    return warehouse


@pytest.fixture
def database(warehouse: Warehouse) -> Iterator[str]:
    """A fresh, uniquely named database, dropped after the test."""
    with fresh_database(warehouse) as name:
        yield name
