"""ClickHouse knowledge: functions, aggregations and their State/Merge forms, types, grains, the
queries over ``system`` tables, and rendering expressions as ClickHouse SQL text."""
