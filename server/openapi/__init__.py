"""The OpenAPI 3.1 description of the HTTP API, built from the routes and the model (the
generated endpoints' parameters and fields are typed from the compiled dimensions)."""
