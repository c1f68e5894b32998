"""Applying models: rollup lifecycle and compaction."""
