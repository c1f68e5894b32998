"""The compiled runtime: plan cache, result cache, dispatch."""
