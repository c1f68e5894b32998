"""What the service runs on: the model compiled against the warehouse, the runtime that plans and
runs queries, the app state between requests, the result cache, and where a query runs."""
