"""Bringing your own data: scaffolded models and the joins they suggest."""
