"""The explore page in a real headless Chromium (Debian's ``chromium``, driven by Playwright),
against a real server on the loopback answering from the embedded engine: on an events table,
and on a star schema whose joined dimensions it groups by join.

``scripts/install-browser.sh`` installs the browser (``make test`` runs it). Screenshots are
kept in ``test-artifacts/``.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from sqlglot import exp

from engine.query.security import Access
from semantic import Model, load_model_text
from semantic.joins import joined_dimensions
from server.app import create_app
from server.auth.keys import StoredKey, new_key
from server.auth.settings import AccessSettings
from server.operations.apply import apply_model
from server.runtime.compile import compile_against
from server.warehouse.statements import Warehouse
from tests.processes import Server
from tests.support import (
    EVENTS_HEAD,
    STAR_TABLES,
    create_star,
    fresh_database,
    insert_rows,
    model_text,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{description: Where the event happened.}}
    measures:
      events: {{agg: count, description: Number of events.}}
      revenue: {{agg: sum, column: amount}}
    rollups:
      totals: {{measures: [events]}}
      by_region_day: {{dimensions: [region], grain: day, measures: [events, revenue]}}
endpoints:
  /api/by-region:
    grain: day
    fields: {{region: region, day: ts, n: events}}
    order: [region, day]
"""

#: 10 days x 3 regions, a different count and revenue in each region-day
ROWS = [(f"2026-01-{1 + day:02d} {hour:02d}:00:00", region, day * 10 + hour)
        for day in range(10) for r, region in enumerate(("asia", "eu", "us"))
        for hour in range(1 + (day + r) % 4)]


@pytest.fixture(scope="module")
def model(warehouse: Warehouse) -> Iterator[Model]:
    with fresh_database(warehouse, "explore") as database:
        warehouse.command(exp.Create(
            this=exp.Schema(this=exp.to_table(f"{database}.events"), expressions=[
                exp.ColumnDef(this=exp.to_identifier(name),
                              kind=exp.DataType.build(kind, dialect="clickhouse"))
                for name, kind in (("ts", "DateTime"), ("region", "String"),
                                   ("amount", "Int64"))]),
            kind="TABLE",
            properties=exp.Properties(expressions=[
                exp.EngineProperty(this=exp.var("MergeTree")),
                exp.Order(expressions=[exp.Ordered(this=exp.column("ts"))])])))
        insert_rows(warehouse, f"{database}.events", ROWS)
        loaded = load_model_text(model_text(MODEL, db=database), "test.yaml")
        apply_model(compile_against(loaded, warehouse), warehouse)
        yield loaded


@pytest.fixture(scope="module")
def server(model: Model, warehouse: Warehouse) -> Iterator[Server]:
    with Server(create_app(model, warehouse)) as running:
        yield running


@pytest.fixture(scope="module")
def star(warehouse: Warehouse) -> Iterator[tuple[Server, Model]]:
    """The star schema of ``tests/support.py`` served: flights joined to airlines, airports,
    planes and (two hops) the planes' makers."""
    with fresh_database(warehouse, "explore_star") as database:
        model = create_star(warehouse, database)
        with Server(create_app(model, warehouse)) as running:
            yield running, model


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/install-browser.sh"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page; the test fails if the page logged any console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == []


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _wait_runs(page: Page, runs: int) -> None:
    page.wait_for_selector(f"body[data-runs='{runs}']", timeout=10_000)


def _table(page: Page) -> tuple[list[str], list[list[str]]]:
    header = page.locator("#result-table thead th").all_inner_texts()
    rows = [row.locator("td").all_inner_texts()
            for row in page.locator("#result-table tbody tr").all()]
    return header, rows


def _cells(answer: dict[str, Any]) -> list[list[str]]:
    columns = answer["meta"]["columns"]
    return [["" if row[c] is None else str(row[c]) for c in columns] for row in answer["data"]]


def test_explore_query_renders_chart_table_and_routing(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/explore?m=events,revenue&d=region&grain=day"
              "&from=2026-01-02&to=2026-01-06")
    _wait_runs(page, 1)
    expected = server.post("/v1/query", {
        "measures": ["events", "revenue"], "dimensions": ["region"], "grain": "day",
        "time_range": {"from": "2026-01-02", "to": "2026-01-06"}, "limit": 1000})
    assert len(expected["data"]) == 12  # 3 regions x 4 days
    assert page.locator("#error").is_hidden()
    # one panel per measure, one point per row in each
    assert page.locator("#chart svg[data-kind='series']").count() == 2
    assert page.locator("circle.point").count() == 2 * 12
    assert page.locator("svg[data-measure='revenue'] circle.point").count() == 12
    header, rows = _table(page)
    assert header == expected["meta"]["columns"] == ["region", "ts", "events", "revenue"]
    assert rows == _cells(expected)
    assert page.locator("#chosen-rollup").inner_text() == "by_region_day"
    chosen = page.locator("#candidates tr.chosen td").all_inner_texts()
    assert chosen[:2] == ["by_region_day", "chosen"]
    assert "missing_dimension" in page.locator("#candidates").inner_text()  # totals
    assert page.locator("#tables li").all_inner_texts() == expected["meta"]["tables"]
    assert "FROM" in page.locator("#sql").inner_text()
    assert "ms" in page.locator("#timing").inner_text()
    _shot(page, "explore-query.png")


def test_explore_form_state_lives_in_the_url(server: Server, page: Page,
                                             browser: Browser) -> None:
    page.goto(f"{server.url}/")  # redirected to the explore view
    page.wait_for_selector("body[data-ready='1']")
    assert page.url == f"{server.url}/explore"
    page.check("#measures input[value='events']")
    page.check("#dimensions input[value='region']")
    page.click("#add-filter")
    values = page.locator("#filters .filter-values")
    # offered from the data (waited for by selector: the page's policy refuses eval)
    expect(values.locator("option")).to_have_count(3)
    assert values.locator("option").all_inner_texts() == ["asia", "eu", "us"]
    values.select_option(["eu", "us"])
    page.check("input[name=range-kind][value=absolute]")
    page.fill("#from", "2026-01-03")
    page.fill("#to", "2026-01-08")
    page.click("#run")
    _wait_runs(page, 1)
    header, rows = _table(page)
    expected = server.post("/v1/query", {
        "measures": ["events"], "dimensions": ["region"], "limit": 1000,
        "filters": [{"member": "region", "op": "in", "values": ["eu", "us"]}],
        "time_range": {"from": "2026-01-03", "to": "2026-01-08"}})
    assert rows == _cells(expected)
    assert [row[0] for row in rows] == ["eu", "us"]
    assert page.locator("rect.bar").count() == 2
    shared = page.url
    assert "m=events" in shared and "from=2026-01-03" in shared

    other = browser.new_page()
    try:
        other.goto(shared)
        _wait_runs(other, 1)
        assert _table(other) == (header, rows)
        assert other.locator("rect.bar").count() == 2
        assert other.locator("#measures input[value='events']").is_checked()
        assert other.locator("#from").input_value() == "2026-01-03"
        expect(other.locator("#filters .filter-values option:checked")).to_have_count(2)
        selected = other.locator("#filters .filter-values option:checked").all_inner_texts()
        assert selected == ["eu", "us"]
        _shot(other, "explore-shared-url.png")
    finally:
        other.close()


def test_explore_draws_a_comparison_beside_each_series(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/explore?m=events&d=region&grain=day"
              "&from=2026-01-04&to=2026-01-08")
    _wait_runs(page, 1)
    assert page.locator("circle.point.compared").count() == 0
    page.select_option("#compare", "1 day")
    page.click("#run")
    _wait_runs(page, 2)
    assert "cmp=1+day" in page.url
    expected = server.post("/v1/query", {
        "measures": ["events"], "dimensions": ["region"], "grain": "day", "limit": 1000,
        "time_range": {"from": "2026-01-04", "to": "2026-01-08"},
        "compare": {"offset": "1 day"}})
    header, rows = _table(page)
    assert header == expected["meta"]["columns"] == [
        "region", "ts", "events", "events__compare", "events__change", "events__change_ratio"]
    assert rows == _cells(expected)
    # each region's series and its compared twin (the day before), one mark per row each
    assert page.locator("circle.point:not(.compared)").count() == 12
    compared = page.locator("circle.point.compared")
    assert compared.count() == 12
    shown = sorted((c.get_attribute("data-series"), c.get_attribute("data-x"),
                    float(c.get_attribute("data-y") or "nan")) for c in compared.all())
    assert shown == sorted((f"{row['region']} (compared)", row["ts"],
                            float(row["events__compare"])) for row in expected["data"])
    assert "eu (compared)" in page.locator(".legend").first.inner_text()
    _shot(page, "explore-compare.png")


def test_model_page_lists_members_and_opens_endpoints(server: Server, page: Page) -> None:
    page.goto(f"{server.url}/explore/model")
    page.wait_for_selector("body[data-ready='1']")
    text = page.locator("#model").inner_text()
    for expected in ("Number of events.", "Where the event happened.", "by_region_day",
                     "ready", "/api/by-region"):
        assert expected in text
    _shot(page, "explore-model.png")
    page.click("a.open-in-explore")
    _wait_runs(page, 1)
    endpoint = server.get("/api/by-region")
    header, rows = _table(page)
    assert header == ["region", "ts", "events"]
    assert rows == [[r["region"], r["day"], str(r["n"])] for r in endpoint]
    assert page.locator("circle.point").count() == len(endpoint)


def test_explore_with_access_control_asks_for_a_key(model: Model, warehouse: Warehouse,
                                                    browser: Browser) -> None:
    key, found, hashed = new_key()
    access = AccessSettings(keys=(StoredKey(found, hashed, frozenset({"read"}),
                                            Access.of({}, None)),))
    with Server(create_app(model, warehouse, access=access)) as guarded:
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{guarded.url}/explore?m=events&d=region")  # the page itself is public
            page.wait_for_selector("#key-box:not([hidden])")
            assert "send a credential" in page.locator("#error").inner_text()
            page.fill("#api-key", key)
            page.press("#api-key", "Enter")  # kept for the tab, the page reloads
            _wait_runs(page, 1)
            expected = guarded.post("/v1/query", {"measures": ["events"],
                                                  "dimensions": ["region"], "limit": 1000}, key)
            assert _table(page)[1] == _cells(expected)
            assert key not in page.url
        finally:
            context.close()
    # the browser reports the refused requests made before the key was given, nothing else
    assert errors and all("401" in error for error in errors)


def test_explore_cannot_be_framed_and_runs_under_its_policy(server: Server,
                                                            browser: Browser) -> None:
    """The page may hold an API key: another site's page that frames it gets nothing (the
    browser refuses, per ``frame-ancestors 'none'``), while the page itself, under its
    Content-Security-Policy, runs (the ``page`` fixture of the other tests fails on any
    console error, a policy violation included)."""
    with urllib.request.urlopen(f"{server.url}/explore", timeout=10) as response:  # noqa: S310
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"
    context = browser.new_context()
    framing = context.new_page()
    refused: list[str] = []
    framing.on("console", lambda message: refused.append(message.text))
    # a page of another origin (about:blank content) frames it
    framing.set_content(f'<iframe id="f" src="{server.url}/explore"></iframe>')
    framing.wait_for_timeout(1500)
    frame = framing.frame_locator("#f")
    assert frame.locator("body[data-ready='1']").count() == 0
    assert any("frame-ancestors" in text or "Refused to display" in text for text in refused), \
        refused
    context.close()


def _star_flights() -> list[dict[str, Any]]:
    """Each flight with its airline's name, its plane's seats and its maker's country (None
    where a join matches nothing), worked out here from the rows of the tables."""
    airlines = {carrier: name for carrier, name, *_ in STAR_TABLES["airlines"][1]}
    planes = {tailnum: (seats, maker) for tailnum, _, seats, maker, *_ in STAR_TABLES["planes"][1]}
    makers = {maker: country for maker, country, *_ in STAR_TABLES["makers"][1]}
    flights = []
    for _, carrier, _, _, tailnum, *_ in STAR_TABLES["flights"][1]:
        seats, maker = planes.get(tailnum, (None, None))
        flights.append({"airline": airlines.get(carrier), "seats": seats,
                        "country": makers.get(maker)})
    return flights


def _by_airline(flights: list[dict[str, Any]]) -> dict[str, list[str]]:
    """airline name -> [flights, seats flown] as the page shows them (unmatched left out)."""
    names = sorted({f["airline"] for f in flights if f["airline"] is not None})
    return {name: [str(sum(f["airline"] == name for f in flights)),
                   str(sum(f["seats"] or 0 for f in flights if f["airline"] == name))]
            for name in names}


def test_explore_groups_joined_dimensions_and_answers_by_them(star: tuple[Server, Model],
                                                              page: Page) -> None:
    server, model = star
    flights_source = model.source("flights")
    assert flights_source is not None
    groups: dict[str, list[str]] = {}  # join path -> its dimensions, in the model's order
    for path, dimension in joined_dimensions(model, flights_source).values():
        groups.setdefault(path.name, []).append(dimension.name)
    assert {"airline", "plane.maker"} <= set(groups)
    page.goto(f"{server.url}/explore?source=flights")
    page.wait_for_selector("body[data-ready='1']")
    # the source's own dimensions, then one group per join path holding its dimensions
    assert page.locator("#dimensions > label").all_inner_texts() == [
        f" {d.name}" for d in flights_source.dimensions]
    fieldsets = page.locator("#dimensions fieldset.join")
    assert fieldsets.locator("legend").all_inner_texts() == list(groups)
    for index, names in enumerate(groups.values()):
        assert fieldsets.nth(index).locator("label").all_inner_texts() == [f" {n}" for n in names]
    page.check("#measures input[value='flights']")
    page.check("#measures input[value='seats_flown']")
    fieldsets.nth(0).locator("input[value='airline.name']").check()
    page.fill("#order", "airline.name")
    page.click("#run")
    _wait_runs(page, 1)
    assert page.locator("#error").is_hidden()
    header, rows = _table(page)
    expected = server.post("/v1/query", {
        "source": "flights", "measures": ["flights", "seats_flown"],
        "dimensions": ["airline.name"], "order": ["airline.name"], "limit": 1000})
    assert header == expected["meta"]["columns"] == ["airline.name", "flights", "seats_flown"]
    assert rows == _cells(expected)
    flights = _star_flights()
    assert {row[0]: row[1:] for row in rows if row[0]} == _by_airline(flights)
    # the flights no airline matches: a group of their own, without a name
    assert [row[:2] for row in rows if not row[0]] == [
        ["", str(sum(f["airline"] is None for f in flights))]]
    bars = page.locator("svg[data-measure='flights'] rect.bar")
    assert [bar.get_attribute("data-y") for bar in bars.all()] == [row[1] for row in rows]
    assert "d=airline.name" in page.url
    _shot(page, "explore-joined.png")

    # a filter two joins away: its picker groups the joined dimensions the same way
    page.click("#add-filter")
    member = page.locator("#filters .filter-member")
    labels = [group.get_attribute("label") for group in member.locator("optgroup").all()]
    assert labels == list(groups)
    assert member.locator("optgroup[label='plane.maker'] option").all_inner_texts() == [
        f"plane.maker.{name}" for name in groups["plane.maker"]]
    member.select_option("plane.maker.country")
    countries = sorted({f["country"] for f in flights if f["country"] is not None})
    values = page.locator("#filters .filter-values option")
    expect(values).to_have_count(len(countries))  # from the data; null is no value to pick
    assert values.all_inner_texts() == countries
    page.locator("#filters .filter-values").select_option([countries[0]])
    page.click("#run")
    _wait_runs(page, 2)
    header, rows = _table(page)
    assert {row[0]: row[1:] for row in rows} == _by_airline(
        [f for f in flights if f["country"] == countries[0]])
    assert "plane.maker.country" in page.url


def test_model_page_shows_joins_and_joined_dimensions(star: tuple[Server, Model],
                                                      page: Page) -> None:
    server, _ = star
    page.goto(f"{server.url}/explore/model")
    page.wait_for_selector("body[data-ready='1']")
    text = page.locator("#model").inner_text()
    assert "primary key carrier" in text
    assert "airline\tairlines\tcarrier = airlines.carrier\tmany_to_one" in text
    assert "plane.maker.country\tplane.maker\t" in text
    _shot(page, "explore-model-joins.png")
