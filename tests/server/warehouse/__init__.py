"""The warehouse client: pool, errors, outages, cost bounds, types."""
