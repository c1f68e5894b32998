"""The query a client asks: the request type, its limits, the typed filter values and the
row-level security filters added to it, and its normalization before planning."""
