"""Access control: keys, JWTs, scopes, row-level security over HTTP."""
