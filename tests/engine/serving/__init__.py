"""Plans, routing and the serving SQL (golden files included)."""
