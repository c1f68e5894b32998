"""The OpenAPI document and a schemathesis run against it."""
