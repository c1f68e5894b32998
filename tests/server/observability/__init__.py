"""Metrics, logs and per-answer statistics."""
