"""HTTP API, CLI and the warehouse connection. The only layer that performs I/O."""
