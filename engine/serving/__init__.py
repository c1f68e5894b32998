"""Serving a query: plan types, the cost model, the router that picks rollups and raw edges, the
serving SQL, answers cut from a whole answer, and answers for ClickHouse to format."""
