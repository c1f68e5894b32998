"""The query request: fields, normalization, security filters."""
