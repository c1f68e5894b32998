"""The model loader: structure checks, semantic rules and their located, compiler-style issues.

Every error case writes its YAML inline and asserts the exact rendered issue lines, so a change
of message, code or location shows up here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.model.expressions import check_expressions
from semantic import Model, ModelError, load_model, load_model_text

REPO = Path(__file__).resolve().parents[2]

EVENTS_COLUMNS = {
    "events": {"ts": "DateTime", "region": "String", "user_id": "UInt64", "amount": "Float64"},
}


def load(text: str) -> Model:
    return load_model_text(textwrap.dedent(text), "test.yaml")


def issues(text: str) -> list[str]:
    """Load ``text`` expecting failure; return every rendered issue line, in reported order."""
    with pytest.raises(ModelError) as info:
        load(text)
    return [issue.render() for issue in info.value.issues]


def expression_issues(text: str, columns: dict[str, dict[str, str] | None]) -> list[str]:
    model = load(text)
    return [issue.render() for issue in check_expressions(model, columns)]


# A valid model


def test_load_model_text_builds_a_valid_model() -> None:
    model = load("""\
        version: 1
        sources:
          events:
            table: analytics.events
            time: ts
            dimensions:
              region:
              country:
                column: country_code
              tier: upper(plan)
            measures:
              n:
                agg: count
              revenue:
                agg: sum
                column: amount
                description: Gross revenue.
            rollups:
              daily:
                dimensions: [region]
                grain: day
                measures: [n, revenue]
        endpoints:
          /api/daily:
            grain: day
            fields:
              day: ts
              region: region
              total: revenue
            order: [day, total desc]
            filters:
              region: [eu, us]
            limit: 10
          /api/total:
            returns: object
            fields:
              total: n
        """)

    assert model.file == "test.yaml"
    assert model.rollup_database == "semantic"
    (events,) = model.sources
    assert (events.name, events.table, events.time_column) == ("events", "analytics.events", "ts")
    assert (events.database, events.table_name) == ("analytics", "events")
    region, country, tier = events.dimensions
    assert (region.column, region.sql) == ("region", None)
    assert (country.column, country.sql) == ("country_code", None)
    assert (tier.column, tier.sql) == (None, "upper(plan)")
    n, revenue = events.measures
    assert (n.agg, n.column, n.sql) == ("count", None, None)
    assert (revenue.agg, revenue.column, revenue.description) == ("sum", "amount", "Gross revenue.")
    (daily,) = events.rollups
    assert daily.grain == "day"
    assert [ref.name for ref in daily.dimensions] == ["region"]
    assert [ref.name for ref in daily.measures] == ["n", "revenue"]

    daily_endpoint, total_endpoint = model.endpoints
    assert daily_endpoint.path == "/api/daily"
    assert daily_endpoint.source.name == "events"
    assert (daily_endpoint.returns, daily_endpoint.grain) == ("list", "day")
    assert daily_endpoint.limit == 10
    assert [(f.name, f.member.name) for f in daily_endpoint.fields] == [
        ("day", "ts"), ("region", "region"), ("total", "revenue"),
    ]
    assert [(o.name.name, o.descending) for o in daily_endpoint.order] == [
        ("day", False), ("total", True),
    ]
    (region_filter,) = daily_endpoint.filters
    assert (region_filter.dimension.name, region_filter.op, region_filter.values) == (
        "region", "in", ("eu", "us"),
    )
    assert (total_endpoint.returns, total_endpoint.limit) == ("object", None)


def test_load_model_text_records_node_locations() -> None:
    model = load("""\
        sources:
          events:
            table: analytics.events
            time: ts
            dimensions:
              region:
            measures:
              n:
                agg: count
        """)

    (events,) = model.sources
    assert str(events.time_location) == "test.yaml:4:11"
    assert events.dimensions[0].location.path == ("sources", "events", "dimensions", "region")
    assert str(events.dimensions[0].location) == "test.yaml:6:7"
    assert str(events.measures[0].location) == "test.yaml:9:9"


def test_load_model_reads_the_shipped_metrics_yaml() -> None:
    model = load_model(REPO / "metrics.yaml")

    assert model.sources
    assert model.endpoints


# YAML structure


def test_load_model_text_locates_yaml_syntax_error() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
           time: ts
        """) == [
        "test.yaml:4:4: error: YAML syntax: expected <block end>, but found '<block mapping start>'"
        "; check this line's indentation against the lines above it [yaml]",
    ]


def test_load_model_text_rejects_a_document_that_is_not_a_mapping() -> None:
    assert issues("- events\n") == [
        "test.yaml:1:1: error: the model file must be a mapping, got a list [type]",
    ]


def test_load_model_text_rejects_duplicate_key_at_second_key() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            time: ts
            time: created_at
        """) == [
        "test.yaml:5:5: error: duplicate key 'time' (first defined at line 4); remove one of them"
        " [duplicate-key]",
    ]


def test_load_model_text_suggests_known_key_for_unknown_key() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            mesures:
              n:
                agg: count
        """) == [
        "test.yaml:4:5: error: unknown key 'mesures' in source 'events'; did you mean 'measures'?;"
        " allowed keys: table, local_table, time, timezone, week_start, fiscal_year_start,"
        " description, primary_key, joins, dimensions, measures, metrics, rollups, security"
        " [unknown-key]",
    ]


def test_load_model_text_requires_sources() -> None:
    assert issues("version: 1\n") == [
        "test.yaml:1:1: error: the model file is missing required key 'sources' [missing-key]",
    ]


def test_load_model_text_requires_source_table() -> None:
    assert issues("""\
        sources:
          events:
            time: ts
            measures:
              n:
                agg: count
        """) == [
        "test.yaml:3:5: error: source 'events' is missing required key 'table' [missing-key]",
    ]


def test_load_model_text_rejects_empty_source_table() -> None:
    # `table:` with no value is as good as missing: the source must not vanish silently.
    assert issues("""\
        sources:
          events:
            table:
            measures:
              n:
                agg: count
        """) == [
        "test.yaml:3:5: error: source 'events' is missing required key 'table' [missing-key]",
    ]


def test_load_model_text_requires_measure_agg() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              revenue:
                column: amount
        """) == [
        "test.yaml:6:9: error: measure 'revenue' is missing required key 'agg' [missing-key]",
    ]


def test_load_model_text_rejects_empty_measure_agg() -> None:
    # `agg:` with no value is as good as missing: the measure must not vanish silently.
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              revenue:
                agg:
                column: amount
        """) == [
        "test.yaml:6:9: error: measure 'revenue' is missing required key 'agg' [missing-key]",
    ]


def test_load_model_text_requires_rollup_measures() -> None:
    # One problem, one issue: the missing key is not also reported as an empty rollup.
    assert issues("""\
        sources:
          events:
            table: analytics.events
            time: ts
            measures:
              n:
                agg: count
            rollups:
              daily:
                grain: day
        """) == [
        "test.yaml:10:9: error: rollup 'daily' is missing required key 'measures' [missing-key]",
    ]


def test_load_model_text_requires_endpoint_fields() -> None:
    # One problem, one issue: the missing key is not also reported as an empty endpoint.
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              n:
                agg: count
        endpoints:
          /api/total:
            returns: object
        """) == [
        "test.yaml:9:5: error: endpoint '/api/total' is missing required key 'fields'"
        " [missing-key]",
    ]


def test_load_model_text_rejects_non_integer_limit() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              n:
                agg: count
        endpoints:
          /api/total:
            fields:
              total: n
            limit: "x"
        """) == [
        "test.yaml:11:12: error: limit must be an integer, got string 'x' [type]",
    ]


def test_load_model_text_rejects_limit_below_one() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              n:
                agg: count
        endpoints:
          /api/total:
            fields:
              total: n
            limit: 0
        """) == [
        "test.yaml:11:12: error: limit must be at least 1 [invalid-limit]",
    ]


def test_load_model_text_rejects_dimensions_given_as_list() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            dimensions:
              - region
              - country
        """) == [
        "test.yaml:5:7: error: dimension must be a mapping, got a list [type]",
    ]


def test_load_model_text_rejects_unsupported_version() -> None:
    assert issues("""\
        version: 2
        sources:
          events:
            table: analytics.events
        """) == [
        "test.yaml:1:10: error: version 2 is not supported; this release reads version 1"
        " [unsupported-version]",
    ]


def test_load_model_text_accepts_merge_key_overrides() -> None:
    # YAML merge keys let an explicit key override a merged one; that is not a duplicate key.
    model = load("""\
        sources:
          events:
            table: analytics.events
            measures:
              revenue: &revenue
                agg: sum
                column: amount
              net_revenue:
                <<: *revenue
                column: net_amount
        """)

    revenue, net_revenue = model.sources[0].measures
    assert (revenue.agg, revenue.column) == ("sum", "amount")
    assert (net_revenue.agg, net_revenue.column) == ("sum", "net_amount")


# Measures and dimensions


def test_load_model_text_suggests_aggregation_for_unknown_agg() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              n:
                agg: cnt
        """) == [
        "test.yaml:6:14: error: aggregation 'cnt' is not one of count, sum, min, max, avg,"
        " count_distinct, count_distinct_approx, quantile, median; did you mean 'count'?"
        " [unknown-agg]",
    ]


def test_load_model_text_rejects_measure_with_column_and_sql() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              revenue:
                agg: sum
                column: amount
                sql: amount * 2
        """) == [
        "test.yaml:8:9: error: measure 'revenue' has both 'column' and 'sql'; keep one"
        " [conflicting-keys]",
    ]


def test_load_model_text_rejects_dimension_with_column_and_sql() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            dimensions:
              region:
                column: region_code
                sql: lower(region_code)
        """) == [
        "test.yaml:7:9: error: dimension 'region' has both 'column' and 'sql'; keep one"
        " [conflicting-keys]",
    ]


def test_load_model_text_requires_column_or_sql_for_non_count_measure() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              revenue:
                agg: sum
        """) == [
        "test.yaml:6:9: error: measure 'revenue' (sum) needs a 'column' or 'sql' to aggregate"
        " [missing-key]",
    ]


# Names


def test_load_model_text_rejects_table_without_database() -> None:
    assert issues("""\
        sources:
          events:
            table: events
        """) == [
        "test.yaml:3:12: error: table 'events' must be written database.table [invalid-table]",
    ]


def test_load_model_text_rejects_invalid_identifiers() -> None:
    rule = "must be an identifier (letters, digits and _, not starting with a digit) [invalid-name]"
    assert issues("""\
        rollup_database: 1rollups
        sources:
          web-events:
            table: analytics.web_events
          events:
            table: analytics.events
            time: event ts
            dimensions:
              1region:
              user.id:
            measures:
              total-events:
                agg: count
        """) == [
        f"test.yaml:1:18: error: rollup_database name '1rollups' {rule}",
        f"test.yaml:3:3: error: source name 'web-events' {rule}",
        f"test.yaml:7:11: error: time column name 'event ts' {rule}",
        f"test.yaml:9:7: error: dimension name '1region' {rule}",
        f"test.yaml:10:7: error: dimension name 'user.id' {rule}",
        f"test.yaml:12:7: error: measure name 'total-events' {rule}",
    ]


def test_load_model_text_rejects_empty_time_column() -> None:
    # An empty string is not a column name; it must not be read as "no time column".
    assert issues("""\
        sources:
          events:
            table: analytics.events
            time: ''
        """) == [
        "test.yaml:4:11: error: time column name '' must be an identifier (letters, digits and _,"
        " not starting with a digit) [invalid-name]",
    ]


def test_load_model_text_rejects_member_names_shared_by_dimension_and_measure() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            dimensions:
              revenue:
            measures:
              revenue:
                agg: sum
                column: amount
        """) == [
        "test.yaml:8:9: error: measure 'revenue' has the same name as dimension 'revenue' of"
        " source 'events'; rename one [duplicate-name]",
    ]


def test_load_model_text_rejects_dimension_named_like_the_time_column() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            time: ts
            dimensions:
              ts:
        """) == [
        "test.yaml:6:7: error: dimension 'ts' has the same name as the time column of source"
        " 'events'; rename one [duplicate-name]",
    ]


# Rollups

ROLLUP_SOURCE = """\
    sources:
      events:
        table: analytics.events
        time: ts
        dimensions:
          region:
          user_id:
        measures:
          n:
            agg: count
          revenue:
            agg: sum
            column: amount
        rollups:
"""


def test_load_model_text_rollup_unknown_measure_suggests_name() -> None:
    assert issues(ROLLUP_SOURCE + """\
          daily:
            grain: day
            measures: [n, revenu]
    """) == [
        "test.yaml:17:23: error: measure 'revenu' is not defined in source 'events';"
        " did you mean 'revenue'? [unknown-measure]",
    ]


def test_load_model_text_rollup_unknown_dimension_lists_defined() -> None:
    assert issues(ROLLUP_SOURCE + """\
          by_country:
            dimensions: [country]
            measures: [n]
    """) == [
        "test.yaml:16:22: error: dimension 'country' is not defined in source 'events'"
        " (defined: region, user_id) [unknown-dimension]",
    ]


def test_load_model_text_rollup_rejects_time_column_as_dimension() -> None:
    assert issues(ROLLUP_SOURCE + """\
          by_ts:
            dimensions: [ts]
            measures: [n]
    """) == [
        "test.yaml:16:22: error: the time column 'ts' is not a rollup dimension; set the rollup's"
        " 'grain' instead [time-as-dimension]",
    ]


def test_load_model_text_rollup_grain_needs_time_column() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            measures:
              n:
                agg: count
            rollups:
              daily:
                grain: day
                measures: [n]
        """) == [
        "test.yaml:9:9: error: rollup 'daily' has a grain but source 'events' declares no 'time'"
        " column [no-time-column]",
    ]


def test_load_model_text_rollup_suggests_grain_for_unknown_grain() -> None:
    assert issues(ROLLUP_SOURCE + """\
          daily:
            grain: dya
            measures: [n]
    """) == [
        "test.yaml:16:16: error: grain 'dya' is not one of minute, hour, day, week, month,"
        " quarter, year; did you mean 'day'? [unknown-grain]",
    ]


def test_load_model_text_rollup_rejects_duplicate_references() -> None:
    assert issues(ROLLUP_SOURCE + """\
          by_region:
            dimensions: [region, region]
            measures: [n, revenue, n]
    """) == [
        "test.yaml:16:30: error: 'region' is listed twice in rollup 'by_region'"
        " [duplicate-reference]",
        "test.yaml:17:32: error: 'n' is listed twice in rollup 'by_region' [duplicate-reference]",
    ]


def test_load_model_text_rollup_rejects_empty_measures() -> None:
    assert issues(ROLLUP_SOURCE + """\
          daily:
            grain: day
            measures: []
    """) == [
        "test.yaml:17:19: error: rollup 'daily' lists no measures [empty-rollup]",
    ]


# Endpoints

ENDPOINT_SOURCE = """\
    sources:
      events:
        table: analytics.events
        time: ts
        dimensions:
          region:
          user_id:
        measures:
          n:
            agg: count
          revenue:
            agg: sum
            column: amount
    endpoints:
"""


def test_load_model_text_endpoint_unknown_source_suggests_name() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/total:
        source: event
        fields:
          total: n
    """) == [
        "test.yaml:16:13: error: source 'event' is not defined in the model;"
        " did you mean 'events'? [unknown-source]",
    ]


def test_load_model_text_endpoint_needs_source_when_several_exist() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
          users:
            table: analytics.users
        endpoints:
          /api/total:
            fields:
              total: n
        """) == [
        "test.yaml:8:5: error: endpoint '/api/total' is missing required key 'source'"
        " [missing-key]",
    ]


def test_load_model_text_endpoint_unknown_member_suggests_name() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/total:
        fields:
          total: revenu
    """) == [
        "test.yaml:17:14: error: member 'revenu' is not defined in source 'events';"
        " did you mean 'revenue'? [unknown-member]",
    ]


def test_load_model_text_endpoint_time_field_needs_grain() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/daily:
        fields:
          day: ts
          total: n
    """) == [
        "test.yaml:17:12: error: field 'day' shows the time column 'ts'; set the endpoint's"
        " 'grain' (e.g. grain: day) [missing-grain]",
    ]


def test_load_model_text_endpoint_grain_needs_time_field() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/daily:
        grain: day
        fields:
          total: n
    """) == [
        "test.yaml:16:5: error: endpoint '/api/daily' sets grain 'day' but no field shows the"
        " time column 'ts' [unused-grain]",
    ]


def test_load_model_text_object_endpoint_rejects_dimension_field() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/total:
        returns: object
        fields:
          region: region
          total: n
    """) == [
        "test.yaml:18:15: error: field 'region' is a dimension, but endpoint '/api/total' returns"
        " one object; use 'returns: list' or remove the field [object-with-dimension]",
    ]


def test_load_model_text_object_endpoint_rejects_time_field() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/total:
        returns: object
        grain: day
        fields:
          day: ts
          total: n
    """) == [
        "test.yaml:16:5: error: endpoint '/api/total' returns one object but groups by time;"
        " use 'returns: list' [object-with-dimension]",
    ]


def test_load_model_text_endpoint_order_unknown_field_suggests_name() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/regions:
        fields:
          region: region
          total: n
        order: [totl desc]
    """) == [
        "test.yaml:19:13: error: field 'totl' is not defined in endpoint '/api/regions';"
        " did you mean 'total'? [unknown-field]",
    ]


def test_load_model_text_endpoint_rejects_malformed_order_item() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/regions:
        fields:
          region: region
        order: [region descending]
    """) == [
        "test.yaml:18:13: error: order item 'region descending' must be 'field', 'field asc' or"
        " 'field desc' [invalid-order]",
    ]


@pytest.mark.parametrize("path", ["/v1/x", "/v1", "/healthz", "/schema/openapi.json", "/docs",
                                  "/openapi.json"])
def test_load_model_text_endpoint_rejects_reserved_path(path: str) -> None:
    assert issues(ENDPOINT_SOURCE + f"""\
      {path}:
        fields:
          total: n
    """) == [
        f"test.yaml:16:5: error: endpoint path '{path}' is reserved (paths under /v1, /healthz,"
        " /readyz, /schema, /openapi.json, /docs belong to the server) [reserved-path]",
    ]


def test_load_model_text_endpoint_reserved_prefix_is_a_whole_segment() -> None:
    # '/v1x' and '/schemas' are not under '/v1' or '/schema'; the server does not own them.
    model = load(ENDPOINT_SOURCE + """\
      /v1x:
        fields:
          total: n
      /schemas:
        fields:
          total: n
      /healthzone:
        fields:
          total: n
    """)

    assert [endpoint.path for endpoint in model.endpoints] == ["/v1x", "/schemas", "/healthzone"]


@pytest.mark.parametrize("path", ["api/total", "/api/total now"])
def test_load_model_text_endpoint_rejects_invalid_path(path: str) -> None:
    assert issues(ENDPOINT_SOURCE + f"""\
      {path}:
        fields:
          total: n
    """) == [
        f"test.yaml:16:5: error: endpoint path '{path}' must start with '/' and contain no spaces"
        " [invalid-path]",
    ]


def test_load_model_text_endpoint_path_issue_keeps_its_key_path() -> None:
    with pytest.raises(ModelError) as info:
        load(ENDPOINT_SOURCE + """\
      /v1/x:
        fields:
          total: n
    """)

    (issue,) = info.value.issues
    assert issue.code == "reserved-path"
    assert issue.location.path == ("endpoints", "/v1/x")


def test_load_model_text_endpoint_filter_unknown_dimension() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/total:
        fields:
          total: n
        filters:
          country: fr
    """) == [
        "test.yaml:19:7: error: dimension 'country' is not defined in source 'events'"
        " (defined: region, user_id) [unknown-dimension]",
    ]


def test_load_model_text_endpoint_rejects_empty_filter_values() -> None:
    assert issues(ENDPOINT_SOURCE + """\
      /api/total:
        fields:
          total: n
        filters:
          region: []
    """) == [
        "test.yaml:19:7: error: filter on 'region' must be a value or a list of values [type]",
    ]


# Reporting


def test_load_model_text_reports_every_issue_sorted_by_line() -> None:
    assert issues("""\
        sources:
          events:
            table: analytics.events
            dimensions:
              revenue:
            measures:
              revenue:
                agg: sum
                column: amount
              n:
                agg: cnt
            rollups:
              daily:
                grain: day
                measures: [n]
        endpoints:
          /api/total:
            fields:
              total: revenu
        endpionts: {}
        """) == [
        "test.yaml:8:9: error: measure 'revenue' has the same name as dimension 'revenue' of"
        " source 'events'; rename one [duplicate-name]",
        "test.yaml:11:14: error: aggregation 'cnt' is not one of count, sum, min, max, avg,"
        " count_distinct, count_distinct_approx, quantile, median; did you mean 'count'?"
        " [unknown-agg]",
        "test.yaml:14:9: error: rollup 'daily' has a grain but source 'events' declares no"
        " 'time' column [no-time-column]",
        "test.yaml:15:20: error: measure 'n' is not defined in source 'events'"
        " (defined: revenue) [unknown-measure]",
        "test.yaml:19:14: error: member 'revenu' is not defined in source 'events';"
        " did you mean 'revenue'? [unknown-member]",
        "test.yaml:20:1: error: unknown key 'endpionts' in the model file; did you mean"
        " 'endpoints'?; allowed keys: version, rollup_database, cluster, sources, endpoints"
        " [unknown-key]",
    ]


def test_load_model_error_message_lists_every_rendered_issue() -> None:
    with pytest.raises(ModelError) as info:
        load("""\
            sources:
              events:
                table: events
            endpionts: {}
            """)

    assert str(info.value) == "\n".join(issue.render() for issue in info.value.issues)
    assert [issue.code for issue in info.value.issues] == ["invalid-table", "unknown-key"]


def test_load_model_missing_file_is_an_io_issue(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(ModelError) as info:
        load_model(missing)

    assert [issue.render() for issue in info.value.issues] == [
        f"{missing}:1:1: error: cannot read the model file: No such file or directory [io]",
    ]


def test_load_model_uses_the_file_name_in_locations(tmp_path: Path) -> None:
    path = tmp_path / "metrics.yaml"
    path.write_text("sources:\n  events:\n    table: events\n", encoding="utf-8")

    with pytest.raises(ModelError) as info:
        load_model(path)

    assert [issue.render() for issue in info.value.issues] == [
        f"{path}:3:12: error: table 'events' must be written database.table [invalid-table]",
    ]


# SQL expressions (engine.model.expressions.check_expressions, pure: no database)

EXPRESSION_SOURCE = """\
    sources:
      events:
        table: analytics.events
        time: ts
        dimensions:
          region:
        measures:
          revenue:
            agg: sum
"""


def test_check_expressions_accepts_known_columns() -> None:
    assert expression_issues(EXPRESSION_SOURCE + """\
            sql: if(amount > 0, amount, 0)
    """, EVENTS_COLUMNS) == []


def test_check_expressions_rejects_unparseable_sql() -> None:
    assert expression_issues(EXPRESSION_SOURCE + """\
            sql: sum(amount
    """, {}) == [
        "test.yaml:10:14: error: measure 'revenue': cannot parse SQL 'sum(amount': Expecting )"
        " [invalid-sql]",
    ]


def test_check_expressions_rejects_several_statements() -> None:
    model = load(EXPRESSION_SOURCE + """\
            sql: amount; DROP TABLE analytics.events
    """)

    found = check_expressions(model, {})
    assert [(str(issue.location), issue.code) for issue in found] == [
        ("test.yaml:10:14", "invalid-sql"),
    ]


def test_check_expressions_rejects_aggregate_in_dimension_sql() -> None:
    assert expression_issues("""\
        sources:
          events:
            table: analytics.events
            dimensions:
              biggest: max(amount)
        """, {}) == [
        "test.yaml:5:16: error: dimension 'biggest': 'max(amount)' contains an aggregate"
        " function; write the row-level expression and set 'agg' instead [invalid-sql]",
    ]


def test_check_expressions_rejects_subquery() -> None:
    assert expression_issues("""\
        sources:
          events:
            table: analytics.events
            dimensions:
              first_region: (SELECT 1)
        """, {}) == [
        "test.yaml:5:21: error: dimension 'first_region': subqueries are not allowed in a model"
        " expression [invalid-sql]",
    ]


def test_check_expressions_unknown_sql_column_suggests_name() -> None:
    assert expression_issues(EXPRESSION_SOURCE + """\
            sql: amonut * 2
    """, EVENTS_COLUMNS) == [
        "test.yaml:10:14: error: measure 'revenue': column 'amonut' does not exist in the source"
        " table; did you mean 'amount'? [unknown-column]",
    ]


def test_check_expressions_unknown_column_suggests_name() -> None:
    assert expression_issues(EXPRESSION_SOURCE + """\
            column: amonut
    """, EVENTS_COLUMNS) == [
        "test.yaml:10:17: error: measure 'revenue': column 'amonut' does not exist in"
        " analytics.events; did you mean 'amount'? [unknown-column]",
    ]


def test_check_expressions_skips_columns_of_unknown_sources() -> None:
    assert expression_issues(EXPRESSION_SOURCE + """\
            column: amonut
    """, {"events": None}) == []


def test_check_expressions_rejects_string_time_column() -> None:
    columns = {"events": {**EVENTS_COLUMNS["events"], "ts": "String"}}

    assert expression_issues(EXPRESSION_SOURCE + """\
            column: amount
    """, columns) == [
        "test.yaml:4:11: error: time column 'ts' has type String; it must be a Date or DateTime"
        " [invalid-time]",
    ]


@pytest.mark.parametrize(
    "time_type", ["Date", "Date32", "DateTime('UTC')", "DateTime64(3)", "Nullable(DateTime)"],
)
def test_check_expressions_accepts_date_and_datetime_time_columns(time_type: str) -> None:
    columns = {"events": {**EVENTS_COLUMNS["events"], "ts": time_type}}

    assert expression_issues(EXPRESSION_SOURCE + """\
            column: amount
    """, columns) == []
