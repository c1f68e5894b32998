"""Time functions and comparisons through the query API: located errors, the widened range in
meta, explain's reads and windows, a comparison without a grain, answers cut from a kept
whole answer, and the model's own checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from semantic.errors import ModelError
from semantic.loader import load_model_text
from tests.support import EVENTS_HEAD, assert_error, served_events

MODEL = EVENTS_HEAD + """\
    timezone: Europe/Berlin
    dimensions:
      region: {{}}
    measures:
      n: {{agg: count}}
      users: {{agg: count_distinct, column: user_id}}
      amount: {{agg: sum, column: amount}}
    metrics:
      n_7d: {{rolling: {{measure: n, window: 7 days}}}}
      users_7d: {{rolling: {{measure: users, window: 7 days}}}}
      n_mtd: {{to_date: {{measure: n, period: month}}}}
      n_all: {{cumulative: {{measure: n}}}}
      n_lm: {{offset: {{measure: n, by: 1 month}}}}
      per_user_7d: {{sql: n_7d / users_7d}}
    rollups:
      daily: {{grain: day, dimensions: [region], measures: [n, users, amount]}}
endpoints:
  /api/daily:
    grain: day
    fields: {{day: ts, cnt: n, week: n_7d}}
"""
COLUMNS = "ts DateTime, region String, user_id UInt64, amount Int64"
START = datetime(2024, 1, 1)


def rows() -> list[tuple[object, ...]]:
    return [(START + timedelta(hours=7 * i), ["a", "b"][i % 2], i % 13, i % 5)
            for i in range(600)]


@pytest.fixture
def client(warehouse: Any, database: str) -> Any:
    with served_events(warehouse, database, COLUMNS, MODEL, rows()) as served:
        yield served


def _ask(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _both(client: Any, **body: Any) -> list[dict[str, Any]]:
    """The routed answer, checked equal to the raw table's."""
    routed = _ask(client, **body)
    raw = _ask(client, **body, force_raw=True)
    assert routed["data"] == raw["data"]
    assert routed["meta"]["rollup"] == "daily"
    return routed["data"]  # type: ignore[no-any-return]


def _count(start: datetime, end: datetime, region: str | None = None) -> int:
    return sum(1 for ts, r, _, _ in rows() if start <= ts < end and region in (None, r))


def test_examples_answer_from_rollups_and_widen_the_range(client: Any) -> None:
    body = {"measures": ["n", "n_7d", "n_mtd", "n_all", "n_lm", "per_user_7d"],
            "dimensions": ["region"], "grain": "day",
            "time_range": {"from": "2024-02-01 10:00", "to": "2024-02-09 12:00"}}
    data = _both(client, **body)
    meta = _ask(client, **body)["meta"]
    # widened to whole days of Berlin
    assert meta["time_range"] == {"from": "2024-01-31T23:00:00+00:00",
                                  "to": "2024-02-09T23:00:00+00:00"}
    assert {row["ts"] for row in data} == {f"2024-02-0{d}" for d in range(1, 10)}
    row = next(r for r in data if r["ts"] == "2024-02-05" and r["region"] == "a")
    day = datetime(2024, 2, 4, 23)  # Berlin's 2024-02-05 in UTC
    assert row["n"] == _count(day, day + timedelta(days=1), "a")
    assert row["n_7d"] == _count(day - timedelta(days=6), day + timedelta(days=1), "a")
    assert row["n_mtd"] == _count(datetime(2024, 1, 31, 23), day + timedelta(days=1), "a")
    assert row["n_all"] == _count(START - timedelta(days=1), day + timedelta(days=1), "a")
    assert row["n_lm"] == _count(day - timedelta(days=31), day - timedelta(days=30), "a")


def test_compare_adds_three_columns_per_measure(client: Any) -> None:
    data = _both(client, measures=["n", "n_7d"], grain="day",
                 time_range={"from": "2024-02-10", "to": "2024-02-12"},
                 compare={"offset": "1 week"})
    assert list(data[0]) == ["ts", "n", "n_7d", "n__compare", "n__change", "n__change_ratio",
                             "n_7d__compare", "n_7d__change", "n_7d__change_ratio"]
    by_day = {r["ts"]: r for r in _both(client, measures=["n", "n_7d"], grain="day",
                                        time_range={"from": "2024-02-03", "to": "2024-02-05"})}
    for row in data:
        before = by_day[f"2024-02-0{int(row['ts'][-2:]) - 7}"]
        assert row["n__compare"] == before["n"]
        assert row["n_7d__compare"] == before["n_7d"]
        assert row["n__change"] == row["n"] - before["n"]
        assert row["n__change_ratio"] == pytest.approx(row["n"] / before["n"] - 1)


def test_a_comparison_without_grain_reads_the_range_and_the_moved_range(client: Any) -> None:
    body = {"measures": ["n", "users"], "dimensions": ["region"],
            "time_range": {"from": "2024-03-01", "to": "2024-03-15"},
            "compare": {"offset": "previous_period"}}
    data = _both(client, **body)
    explain = client.post("/v1/explain", json=body).json()
    assert [read["purpose"] for read in explain["reads"]] == ["answer", "compare"]
    assert explain["reads"][1]["from"] == "2024-02-15T23:00:00+00:00"  # 14 days back
    assert explain["windows"][0]["by"] == "14 days"
    previous = {r["region"]: r for r in _ask(client, measures=["n", "users"],
                                             dimensions=["region"], time_range={
                                                 "from": "2024-02-16", "to": "2024-03-01"})["data"]}
    for row in data:
        assert row["n__compare"] == previous[row["region"]]["n"]
        assert row["users__compare"] == previous[row["region"]]["users"]


def test_previous_period_is_the_range_in_its_largest_unit(client: Any) -> None:
    explain = client.post("/v1/explain", json={
        "measures": ["n"], "grain": "month", "compare": {"offset": "previous_period"},
        "time_range": {"from": "2024-03-01", "to": "2024-05-01"}}).json()
    assert explain["windows"][-1]["by"] == "2 months"


def test_explain_shows_the_window_and_the_lookback(client: Any) -> None:
    explain = client.post("/v1/explain", json={
        "measures": ["users_7d"], "grain": "day",
        "time_range": {"from": "2024-02-10", "to": "2024-02-12"}}).json()
    assert explain["windows"] == [{
        "member": "users_7d", "function": "rolling", "measure": "users", "window": "7 days",
        "period": None, "by": None, "detail": "users over the 7 days ending with each bucket"}]
    (read,) = explain["reads"]
    assert read["from"] == "2024-02-03T23:00:00+00:00"  # six days before the range, in Berlin
    assert [p["rollup"] for p in read["pieces"]] == ["daily"]


def test_cut_answers_of_a_kept_whole_answer_stay_exact(client: Any) -> None:
    for start, end in (("2024-02-01", "2024-02-08"), ("2024-02-05", "2024-02-20"),
                       ("2024-01-03", "2024-01-05")):
        body = {"measures": ["n_7d", "users_7d", "n_all"], "grain": "day",
                "dimensions": ["region"], "compare": {"offset": "1 month"},
                "time_range": {"from": start, "to": end}}
        assert _ask(client, **body)["data"] == _ask(client, **body, force_raw=True)["data"]


def test_ranges_open_or_closed_at_the_start_render_their_own_statements(client: Any) -> None:
    """A cumulative count reads from the beginning either way; the answer's range differs."""
    for time_range in ({"to": "2024-01-05"}, {"from": "2024-01-03", "to": "2024-01-05"}):
        data = _both(client, measures=["n_all"], grain="day", time_range=time_range)
        assert data[0]["ts"] == time_range.get("from", "2024-01-01")


def test_fill_gives_filled_days_their_windows(client: Any) -> None:
    data = _both(client, measures=["n", "n_7d"], grain="day", fill="zero",
                 time_range={"from": "2024-06-18", "to": "2024-07-05"})
    # rows end on 2024-06-23 (600 rows, 7 hours apart): later days are filled
    tail = {r["ts"]: r for r in data}
    assert len(tail) == 17
    assert tail["2024-06-27"]["n"] == 0 and tail["2024-06-27"]["n_7d"] > 0
    assert tail["2024-07-03"]["n_7d"] == 0


def test_calendars_week_starts_and_fiscal_years(client: Any) -> None:
    weeks = _both(client, measures=["n", "n_7d"], grain="week", week_start="sunday",
                  time_range={"from": "2024-02-04", "to": "2024-03-03"})
    assert [row["ts"] for row in weeks] == ["2024-02-04", "2024-02-11", "2024-02-18",
                                            "2024-02-25"]  # Sundays
    sunday = datetime(2024, 2, 10, 23)  # Berlin's 2024-02-11 in UTC
    assert weeks[1]["n"] == _count(sunday, sunday + timedelta(days=7))
    # a fiscal year starting in October holds 2024-06-23 in the bucket 2023-10-01
    years = _both(client, measures=["n"], grain="fiscal_year", fiscal_year_start="october")
    assert [row["ts"] for row in years] == ["2023-10-01"]
    assert years[0]["n"] == len(rows())
    quarters = _both(client, measures=["n", "n_all"], grain="fiscal_quarter",
                     fiscal_year_start="november")
    assert [row["ts"] for row in quarters] == ["2023-11-01", "2024-02-01", "2024-05-01"]
    assert sum(row["n"] for row in quarters) == quarters[-1]["n_all"] == len(rows())


def test_endpoints_take_a_comparison(client: Any) -> None:
    response = client.get("/api/daily?from=2024-02-10&to=2024-02-13&compare=1%20week")
    assert response.status_code == 200, response.text
    rows = response.json()
    expected = _ask(client, measures=["n", "n_7d"], grain="day", compare={"offset": "1 week"},
                    time_range={"from": "2024-02-10", "to": "2024-02-13"})["data"]
    assert rows == [{"day": r["ts"], "cnt": r["n"], "week": r["n_7d"],
                     "cnt__compare": r["n__compare"], "cnt__change": r["n__change"],
                     "cnt__change_ratio": r["n__change_ratio"],
                     "week__compare": r["n_7d__compare"], "week__change": r["n_7d__change"],
                     "week__change_ratio": r["n_7d__change_ratio"]} for r in expected]
    assert list(client.get("/api/daily?from=2024-02-10&to=2024-02-13").json()[0]) == [
        "day", "cnt", "week"]
    csv = client.get("/api/daily?from=2024-02-10&to=2024-02-11&compare=1%20week&format=csv")
    assert csv.text.splitlines()[0].replace('"', "") == \
        "day,cnt,week,cnt__compare,cnt__change,cnt__change_ratio,week__compare,week__change," \
        "week__change_ratio"
    refused = client.get("/api/daily?compare=fortnight")
    assert_error(refused, 400, "compare.offset")
    parameters = client.get("/openapi.json").json()["paths"]["/api/daily"]["get"]["parameters"]
    assert "compare" in [p["name"] for p in parameters]


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"measures": ["n_7d"]}, "grain", "give a 'grain'"),
    ({"measures": ["n", "per_user_7d"]}, "grain", "(through 'n_7d')"),
    ({"measures": ["n_7d"], "grain": "month"}, "measures[0]", "not a whole number of months"),
    ({"measures": ["n_mtd"], "grain": "week"}, "measures[0]", "a month is not made of whole"),
    ({"measures": ["n_lm"], "grain": "week"}, "measures[0]", "use weeks"),
    ({"measures": ["n"], "grain": "day", "compare": {"offset": "fortnight"}},
     "compare.offset", "'N unit'"),
    ({"measures": ["n"], "grain": "hour", "compare": {"offset": "1 day"}},
     "compare.offset", "24 hours"),
    ({"measures": ["n"], "grain": "day", "compare": {"offset": "previous_period"}},
     "compare.offset", "give a 'time_range'"),
    ({"measures": ["n"], "compare": {"offset": "1 day"}}, "compare", "without a 'grain'"),
    ({"measures": ["n"], "compare": "1 day"}, "compare", "an object"),
    ({"measures": ["n"], "compare": {"by": "1 day"}}, "compare.by", "unknown field"),
    ({"measures": ["n"], "grain": "week", "week_start": "sundae"}, "week_start",
     "did you mean 'sunday'"),
    ({"measures": ["n"], "grain": "fiscal_year", "fiscal_year_start": 10},
     "fiscal_year_start", "must be"),
    ({"measures": ["n_mtd"], "grain": "fiscal_quarter"}, "measures[0]",
     "a month is not made of whole fiscal_quarters"),
    ({"measures": ["n"], "grain": "day", "compare": {"offset": "1 day"},
      "order": ["-m__compare"]}, "order[0]", "not returned"),
])
def test_errors_name_the_field(client: Any, body: dict[str, Any], field: str,
                               says: str) -> None:
    response = client.post("/v1/query", json=body)
    assert_error(response, 400, field)
    assert says in response.json()["error"]["message"]


def test_order_by_a_compared_column(client: Any) -> None:
    data = _both(client, measures=["n"], dimensions=["region"], grain="month",
                 time_range={"from": "2024-02-01", "to": "2024-04-01"},
                 compare={"offset": "1 month"}, order=["-n__change", "region", "ts"])
    changes = [row["n__change"] for row in data]
    assert changes == sorted(changes, reverse=True)


def test_the_model_refuses_what_cannot_be_computed() -> None:
    text = MODEL.format(db="t").replace(
        "      n_7d: {rolling: {measure: n, window: 7 days}}",
        "      n_7d: {rolling: {measure: n, window: 7 dayz}}\n"
        "      bad: {to_date: {measure: n, period: fortnight}}\n"
        "      both: {offset: {measure: n, by: 1 year}, sql: n}\n"
        "      none: {cumulative: {}}").replace(
        "measures: [n, users, amount]", "measures: [n, n_mtd]")
    with pytest.raises(ModelError) as caught:
        load_model_text(text, "m.yaml")
    said = str(caught.value)
    assert "m.yaml:16:44: error: metric 'n_7d' (rolling): window: expected 'N unit'" in said
    assert "metric 'n_mtd' (to_date) is computed from the buckets of 'n' when asked: list " \
        "'n' in the rollup" in said
    assert "period 'fortnight' is not one of week, month, quarter, year" in said
    assert "unknown key 'sql' in metric 'both'" in said
    assert "metric 'none' (cumulative) is missing required key 'measure'" in said
