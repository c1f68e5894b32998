"""Model + query -> plan -> SQL. Pure: builds sqlglot expressions, performs no I/O."""
