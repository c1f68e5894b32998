"""Property: quantiles served from rollups are exact (``method: exact``) or within the
documented rank error of the t-digest (``method: tdigest``, the default).

Merged t-digests are not bit-for-bit a one-pass digest (nor is one pass over raw rows
deterministic across runs), so t-digest answers are checked against the data itself: the
rollup's value must sit at the asked rank, within 2 % plus one element of the group, at
Float32 precision (the digest's centroids are Float32).
"""

from __future__ import annotations

import math
import struct
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from engine.query.request import Query
from server.warehouse.statements import Warehouse
from tests.support import EVENTS_HEAD, build, create_events, fresh_database, insert_rows, model_text

MODEL = EVENTS_HEAD + """\
    dimensions:
      region: {{}}
    measures:
      rows: {{agg: count}}
      median_amount: {{agg: median, column: amount}}
      p90_amount: {{agg: quantile, level: 0.9, column: amount}}
      p10_price: {{agg: quantile, level: 0.1, column: price}}
      p90_exact: {{agg: quantile, level: 0.9, column: amount, method: exact}}
      median_exact: {{agg: median, column: price, method: exact}}
      p90_paid: {{agg: quantile, level: 0.9, column: amount, filter: amount > 0}}
    rollups:
      daily:
        dimensions: [region]
        grain: day
        measures: [rows, median_amount, p90_amount, p10_price, p90_exact, median_exact,
                   p90_paid]
"""

TDIGEST = {"median_amount": ("amount", 0.5, False), "p90_amount": ("amount", 0.9, False),
           "p10_price": ("price", 0.1, False), "p90_paid": ("amount", 0.9, True)}
EXACT = ("p90_exact", "median_exact")
START = datetime(2024, 3, 1)

Row = tuple[datetime, str, int, float]

rows_strategy = st.lists(
    st.tuples(st.integers(0, 24 * 20).map(lambda h: START + timedelta(hours=h)),
              st.sampled_from(("eu", "us", "asia")),
              st.integers(-1000, 1000) | st.sampled_from((0, 7, -7)),
              st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
    max_size=400)


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def _rank_ok(values: list[float], value: float, level: float) -> bool:
    """Whether ``value`` lies at rank ``level`` of ``values`` within the t-digest's error
    (its centroids are Float32: values are compared at that precision)."""
    ordered = sorted(_float32(v) for v in values)
    below = sum(v < value for v in ordered) / len(ordered)
    at_or_below = sum(v <= value for v in ordered) / len(ordered)
    tolerance = 0.02 + 1 / len(ordered)
    return ordered[0] <= value <= ordered[-1] and \
        below - tolerance <= level <= at_or_below + tolerance


@given(rows=rows_strategy, before=st.integers(0, 400))
@example(rows=[(START + timedelta(minutes=i), ("eu", "us")[i % 2], (i * 7919) % 2001 - 1000,
                i / 3) for i in range(5000)], before=2500)
def test_rollup_quantiles_exact_or_within_tdigest_error(warehouse: Warehouse, rows: list[Row],
                                                        before: int) -> None:
    with fresh_database(warehouse, "q") as database:
        create_events(warehouse, database,
                      "ts DateTime, region String, amount Int64, price Float64")
        insert_rows(warehouse, f"{database}.events", rows[:before])
        _, _, runtime = build(warehouse, model_text(MODEL, db=database))
        for part in (rows[before:][:50], rows[before:][50:]):
            insert_rows(warehouse, f"{database}.events", part)
        measures = ("rows", *TDIGEST, *EXACT)
        for dimensions, grain in ((("region",), None), (("region", "ts"), "day")):
            query = Query("events", measures, dimensions, grain)
            plan = runtime.plan(query)
            assert plan.rollup is not None and plan.rollup.name == "daily"
            served = runtime.run(plan).rows
            raw = runtime.run(runtime.plan(replace(query, force_raw=True))).rows
            assert [r["rows"] for r in served] == [r["rows"] for r in raw]
            groups: dict[tuple[object, ...], list[Row]] = defaultdict(list)
            for row in rows:
                key = (row[1],) if grain is None else (row[1], row[0].date())
                groups[key].append(row)
            for got, expected in zip(served, raw, strict=True):
                for name in EXACT:  # merged quantileExact states equal one pass
                    assert got[name] == expected[name], (name, got, expected)
                key = tuple(got[d] for d in dimensions)
                members = groups[key]
                for name, (column, level, paid_only) in TDIGEST.items():
                    index = 2 if column == "amount" else 3
                    values = [float(r[index]) for r in members if not paid_only or r[2] > 0]
                    value = got[name]
                    if not values:  # no row passes the filter: nan, as raw quantiles give
                        assert value is None or math.isnan(value), (name, value)
                        continue
                    assert _rank_ok(values, value, level), (
                        f"{name} at {key}: {value} is not at rank {level} of {sorted(values)}")
