"""What describes the service's current state, read when ``/metrics`` is scraped: rollup
readiness and size, the age of the newest data (the counters and histograms are in
``server.observability.metrics``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.dialect.system import bucket_bounds
from semantic.errors import SemanticError
from server.runtime.state import State

logger = logging.getLogger(__name__)


def _instant(value: object, zone: str) -> datetime | None:
    """The newest value of a time column as a UTC instant (naive DateTimes are UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, dt_time(), ZoneInfo(zone)).astimezone(UTC)
    return None


class StateCollector(Collector):
    """Gauges read from the app's state at scrape time: whether ClickHouse answers, rollup
    readiness, rows and bytes (as of the last refresh, every 30 s) and the age of the newest
    row of every source (one ``max(time)`` query per source per scrape)."""

    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        ready = GaugeMetricFamily("semantic_rollup_ready", "1 when the rollup is built and "
                                  "served, else 0", labels=["source", "rollup", "table"])
        rows = GaugeMetricFamily("semantic_rollup_rows", "Rows of a ready rollup table",
                                 labels=["source", "rollup"])
        size = GaugeMetricFamily("semantic_rollup_bytes", "Uncompressed bytes of a ready "
                                 "rollup table", labels=["source", "rollup"])
        age = GaugeMetricFamily("semantic_source_newest_data_age_seconds", "Seconds since the "
                                "newest time value of each source", labels=["source"])
        lookups = CounterMetricFamily("semantic_result_cache_lookups", "Result cache lookups, "
                                      "by result (hit, miss)", labels=["result"])
        cuts = CounterMetricFamily("semantic_result_cache_cut_answers", "Misses answered by "
                                   "cutting their time range from the kept answer to the "
                                   "whole range of the same query")
        evictions = CounterMetricFamily("semantic_result_cache_evictions", "Answers dropped "
                                        "from the result cache to stay within its bound")
        held = GaugeMetricFamily("semantic_result_cache_bytes", "Bytes of encoded answers the "
                                 "result cache holds")
        bound = GaugeMetricFamily("semantic_result_cache_max_bytes", "The result cache's "
                                  "bound in bytes (0: off)")
        entries = GaugeMetricFamily("semantic_result_cache_entries", "Answers the result "
                                    "cache holds")
        cache = self.state.cache.stats()
        lookups.add_metric(["hit"], cache["hits"])
        lookups.add_metric(["miss"], cache["misses"])
        cuts.add_metric([], cache["cuts"])
        evictions.add_metric([], cache["evictions"])
        held.add_metric([], cache["bytes"])
        bound.add_metric([], cache["max_bytes"])
        entries.add_metric([], cache["entries"])
        up = GaugeMetricFamily("semantic_warehouse_up", "1 while ClickHouse answers, 0 since a "
                               "statement could not reach it")
        runtime = self.state.started
        if runtime is not None:
            for name, compiled in runtime.compiled.sources.items():
                for rollup in compiled.rollups:
                    stats = runtime.ready.get(rollup.qualified_table)
                    ready.add_metric([name, rollup.name, rollup.qualified_table],
                                     0 if stats is None else 1)
                    if stats is not None:
                        rows.add_metric([name, rollup.name], stats.rows)
                        size.add_metric([name, rollup.name], stats.bytes)
                column = compiled.source.time_column
                if column is None:
                    continue
                try:
                    _, newest, count = runtime.warehouse.query(
                        bucket_bounds(compiled.source.table, column)).rows[0]
                except SemanticError as exc:
                    logger.debug("newest data of %s unknown: %s", name, exc.message)
                    continue
                instant = _instant(newest, compiled.timezone) if count else None
                if instant is not None:
                    age.add_metric([name], time.time() - instant.timestamp())
        # after the age queries, which tell whether ClickHouse answers now
        health = self.state.warehouse.health
        if health.up is not None:
            up.add_metric([], 1 if health.up else 0)
        yield from (up, ready, rows, size, age, lookups, cuts, evictions, held, bound, entries)
