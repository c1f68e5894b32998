"""The service layer: the use cases every transport calls (answer a query, explain it, describe
the model, list values, run an endpoint, ingest rows). No transport imports another."""
