"""The HTTP query API and generated endpoints: shapes, errors, hostile input."""
