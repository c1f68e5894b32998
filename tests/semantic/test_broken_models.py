"""The broken-model corpus: every file in ``broken/`` (checks that need no warehouse) and
``broken_warehouse/`` (checks against the demo ``analytics.events`` table) starts with the
issues ``semantic validate`` must report, one ``# expect: LINE:COL: error: MESSAGE [code]`` line
each, in order. Add a file to add a case.

The warehouse files run against a 2,000-row copy of the reference data (seed 1) kept in its own
database, so other tests may fill ``analytics.events`` as they like: ``analytics.`` in a file
is read as that database, and its name is written back as ``analytics.`` in the messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic import load_model_text
from semantic.errors import ModelError
from server.operations.validation import validate_model
from server.warehouse.statements import Warehouse
from tests.support import CORPUS_DATABASE

HERE = Path(__file__).parent
EXPECT = "# expect: "
BROKEN = sorted((HERE / "broken").glob("*.yaml"))
BROKEN_WAREHOUSE = sorted((HERE / "broken_warehouse").glob("*.yaml"))


def expected(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith(EXPECT):
            break
        lines.append(line.removeprefix(EXPECT))
    assert lines, f"{path} starts with no '{EXPECT}LINE:COL: error: MESSAGE [code]' line"
    return lines


def reported(path: Path, warehouse: Warehouse | None) -> list[str]:
    """What validation reports, rendered without the file name."""
    text = path.read_text(encoding="utf-8")
    if warehouse is not None:
        text = text.replace("analytics.", f"{CORPUS_DATABASE}.")
    try:
        model = load_model_text(text, path.name)
        validate_model(model, warehouse)
        issues = model.warnings
    except ModelError as exc:
        issues = exc.issues
    return [issue.render().removeprefix(f"{path.name}:").replace(f"{CORPUS_DATABASE}.",
                                                                 "analytics.")
            for issue in issues]


def test_broken_corpus_covers_both_kinds() -> None:
    assert len(BROKEN) >= 20 and len(BROKEN_WAREHOUSE) >= 10


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_model_is_reported_without_warehouse(path: Path) -> None:
    assert reported(path, None) == expected(path)


@pytest.mark.parametrize("path", BROKEN_WAREHOUSE, ids=lambda p: p.stem)
def test_broken_model_is_reported_against_warehouse(path: Path, demo_events: Warehouse) -> None:
    assert reported(path, demo_events) == expected(path)


@pytest.mark.parametrize("path", BROKEN_WAREHOUSE, ids=lambda p: p.stem)
def test_broken_warehouse_model_passes_checks_without_warehouse(path: Path) -> None:
    """These need the warehouse to be found: without it validation passes (and says what it
    did not check), which is why those checks must run wherever a warehouse is reachable."""
    assert not [line for line in reported(path, None) if ": error: " in line]
