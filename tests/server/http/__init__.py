"""HTTP plumbing: answer formats and the protocol layer."""
