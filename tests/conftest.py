"""Shared fixtures: one embedded ClickHouse engine per test session, one database per test.

chDB allows one engine per process, so every test that touches the database uses the session
``warehouse`` and isolates itself by database name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from engine.render import render
from server.warehouse import Warehouse
from sqlglot import exp

settings.register_profile(
    "ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile(
    "dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*.sql from the current engine output")


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    path = tmp_path_factory.mktemp("chdb")
    wh = Warehouse(f"chdb://{path}", f"embedded chDB at {path}", pool_size=4)
    yield wh
    wh.close()


@pytest.fixture
def database(warehouse: Warehouse) -> Iterator[str]:
    """A fresh, uniquely named database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    warehouse.command(exp.Create(this=exp.to_identifier(name), kind="DATABASE", exists=True))
    yield name
    warehouse.command(exp.Drop(tables=[exp.to_table(name)], kind="DATABASE", exists=True))


def sql(expression: exp.Expression) -> str:
    return render(expression)
