"""The compiled model: the validated model bound to column types, its SQL expressions parsed and
checked, and the probes that make ClickHouse evaluate them."""
