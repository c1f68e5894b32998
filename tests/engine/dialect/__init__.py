"""ClickHouse dialect knowledge: rendering, functions, types."""
