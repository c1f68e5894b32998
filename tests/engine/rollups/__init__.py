"""Rollup DDL and migrations between models."""
